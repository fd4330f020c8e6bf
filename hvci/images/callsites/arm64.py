"""ARM64 call sites (Windows on ARM ships memory integrity on by default): the same verdicts as on x64, from a
simpler dataflow.

Arguments are in x0-x7; values are tracked from ``mov``/``movz``/``movn``/``movk``/``orr`` immediates and
register moves, ``adrp`` + ``add``/``ldr`` addresses, and ``ldr`` of an IAT slot (the API's address). A
call is ``blr xN`` (or ``br xN``, a tail call) through a register holding an API, or ``bl``/``b`` to an
import thunk (``adrp x16; ldr x16, [x16, #slot]; br x16``). Values are known only within one basic block:
at every block start all registers are unknown, so a value that reaches a call from another block is
``unknown`` (never guessed); in compiled code the arguments of a call are almost always set in its block.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import capstone
import msgspec
from capstone import arm64 as ca

from hvci.images.callsites.image import Image, Region, Target
from hvci.images.callsites.results import CallSite
from hvci.images.callsites.values import MASK64, State, Val, const, unknown
from hvci.images.callsites.verdict import call_site, judge
from hvci.knowledge import kb

#: The registers of the AAPCS64 argument list, and those a call may change (x0-x18, x30).
ARGUMENTS = 8
CLOBBERED = tuple(range(19)) + (30,)
_BRANCHES = frozenset({"b", "bl", "br", "blr", "ret", "cbz", "cbnz", "tbz", "tbnz", "brk", "udf"})


def _number(name: str) -> int | None:
    """``x5``/``w5`` -> 5; other registers (sp, xzr, vector...) -> None."""
    if name[:1] in ("x", "w") and name[1:].isdigit():
        return int(name[1:])
    return None


class Arm64Insn(NamedTuple):
    """An instruction as the interpreter reads it: its address and texts copied out of capstone once (each
    read of a ``CsInsn`` attribute is a ctypes read, the mnemonic decoded again, and each instruction is read
    several times); its operands and written registers come from ``raw`` when asked for."""

    address: int
    mnemonic: str
    op_str: str
    raw: capstone.CsInsn

    @property
    def operands(self) -> list[Any]:
        return self.raw.operands  # type: ignore[no-any-return]


#: Register names by capstone id, asked of capstone once each (a ctypes call)
_REGISTER_NAMES: dict[int, str | None] = {}


class Arm64Arguments(msgspec.Struct, frozen=True):
    state: State

    def value(self, api: kb.AffectedApi, param: int | None = None) -> Val:
        index = (api.binary_argument_index or 0) if param is None else param + api.implicit_args
        if index >= ARGUMENTS:
            return unknown(
                f"argument {index + 1} is passed on the stack, which the ARM64 analysis does not follow"
            )
        return self.state.regs.get(f"x{index}", unknown(f"x{index} is not set in the call's basic block"))

    def where(self, index: int) -> str:
        return f"argument {index + 1} (x{index})" if index < ARGUMENTS else f"argument {index + 1} (stack)"


class Arm64Interpreter:
    def __init__(self, image: Image) -> None:
        self.image = image
        self.md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
        self.md.detail = True
        self.md.skipdata = True
        self.instructions = 0
        self.code_bytes = 0
        self.thunks: dict[int, Target] = {}

    def decode(self, region: Region) -> list[Arm64Insn]:
        data, _ = self.image.code(region)
        self.code_bytes += len(data)
        insns = [Arm64Insn(i.address, i.mnemonic, i.op_str, i) for i in self.md.disasm(data, region.start)]
        self.instructions += len(insns)
        return insns

    def find_thunks(self, insns: list[Arm64Insn]) -> None:
        """``adrp x16, page; ldr x16, [x16, #off]; br x16`` on an IAT slot: an import thunk."""
        for first, second, third in zip(insns, insns[1:], insns[2:], strict=False):
            if (first.mnemonic, second.mnemonic, third.mnemonic) != ("adrp", "ldr", "br"):
                continue
            state = State({}, {})
            for insn in (first, second):
                self._step(insn, state)
            value = state.regs.get(_reg_of(third, 0) or "")
            if value is not None and value.kind == "fn" and isinstance(value.ref, str):
                self.thunks[first.address] = Target(
                    value.ref, None, f"call thunk 0x{first.address:x} -> [IAT]"
                )

    def sites(self, insns: list[Arm64Insn]) -> Iterator[CallSite]:
        state = State({}, {})
        starts = {
            op.imm
            for i in insns
            if i.mnemonic in _BRANCHES
            for op in i.operands
            if op.type == ca.ARM64_OP_IMM
        }
        thunk_body = False
        for insn in insns:
            if insn.address in starts or thunk_body:
                state = State({}, {})
            thunk_body = False
            if insn.address in self.thunks:
                thunk_body = True  # the thunk's own branch is not a call site: the calls to it are
                continue
            target = self._call_target(insn, state)
            if target is not None:
                api = self.image.kb.affected_api(target.api)
                if api is not None and insn.address not in self.thunks:
                    yield self._site(insn, state, target, api)
            if insn.mnemonic in _BRANCHES or insn.mnemonic.startswith("b."):
                state = State({}, {})
                continue
            self._step(insn, state)

    def _call_target(self, insn: Arm64Insn, state: State) -> Target | None:
        m = insn.mnemonic
        if m in ("bl", "b") and insn.operands and insn.operands[0].type == ca.ARM64_OP_IMM:
            reached = self.thunks.get(insn.operands[0].imm)
            if reached is None:
                return None
            how = reached.how if m == "bl" else f"tail jump: {reached.how}"
            return Target(reached.api, reached.dll, how)
        if m in ("blr", "br"):
            name = _reg_of(insn, 0)
            value = state.regs.get(name or "")
            if value is not None and value.kind == "fn" and isinstance(value.ref, str):
                how = f"{'call' if m == 'blr' else 'tail jump'} {name} holding {value.ref} ({value.reason})"
                return Target(value.ref, None, how)
        return None

    def _site(self, insn: Arm64Insn, state: State, target: Target, api: kb.AffectedApi) -> CallSite:
        dll = target.dll or self.image.imported.get(api.name, (api.module, 0))[0]
        text = f"{insn.mnemonic} {insn.op_str}"
        return call_site(insn.address, text, target.how, dll, api, judge(api, Arm64Arguments(state)))

    def _step(self, insn: Arm64Insn, state: State) -> None:
        """One instruction: a modelled one sets its destination, any other makes what it writes unknown."""
        dest = _reg_of(insn, 0)
        value = self._modelled(insn, state, dest)
        if dest is not None and value is not None:
            if dest.startswith("w") and value.kind == "const":
                value = Val("const", frozenset(v & 0xFFFFFFFF for v in value.consts))
            state.regs["x" + dest[1:]] = value
            return
        reason = f"set by `{insn.mnemonic} {insn.op_str}` at 0x{insn.address:x}"
        try:
            _, written = insn.raw.regs_access()
        except capstone.CsError:
            written = []
        for reg in written:
            number = _number(_name(insn, reg) or "")
            if number is not None:
                state.regs[f"x{number}"] = unknown(reason)

    def _modelled(self, insn: Arm64Insn, state: State, dest: str | None) -> Val | None:
        """The value an instruction we model writes into ``dest``; None for any other instruction."""
        m, ops = insn.mnemonic, insn.operands
        if m in ("mov", "movz", "movn") and len(ops) == 2:
            value = self._operand(insn, 1, state)
            if m == "movn" and value.kind == "const":
                return Val("const", frozenset(~v & MASK64 for v in value.consts))
            return value
        if m == "movk" and len(ops) == 2 and dest is not None:
            return self._movk(insn, state, dest)
        if m == "orr" and len(ops) == 3 and _reg_of(insn, 1) in ("xzr", "wzr"):
            return self._operand(insn, 2, state)
        if m == "adrp" and len(ops) == 2:
            return Val("addr", ref=ops[1].imm)  # decoded at RVAs: the page is an RVA
        if m == "add" and len(ops) == 3 and ops[2].type == ca.ARM64_OP_IMM:
            page = state.regs.get("x" + str(_number(_reg_of(insn, 1) or "")))
            if page is not None and page.kind == "addr" and isinstance(page.ref, int):
                return Val("addr", ref=page.ref + (ops[2].imm << ops[2].shift.value))
            return None
        if m == "ldr" and len(ops) == 2 and ops[1].type == ca.ARM64_OP_MEM:
            return self._load(insn, state)
        return None

    def _movk(self, insn: Arm64Insn, state: State, dest: str) -> Val | None:
        """``movk``: 16 bits put into a known value at the shift given."""
        old = state.regs.get("x" + dest[1:])
        operand = insn.operands[1]
        if old is None or old.kind != "const" or len(old.consts) != 1:
            return None
        (before,) = old.consts
        shift = operand.shift.value
        return const((before & ~(0xFFFF << shift)) | (operand.imm << shift))

    def _operand(self, insn: Arm64Insn, index: int, state: State) -> Val:
        op = insn.operands[index]
        if op.type == ca.ARM64_OP_IMM:
            return const(op.imm << op.shift.value if op.shift.value else op.imm)
        name = _reg_of(insn, index)
        if name in ("xzr", "wzr"):
            return const(0)
        number = _number(name or "")
        if number is None:
            return unknown(f"register {name}")
        value = state.regs.get(f"x{number}", unknown(f"x{number} is not set in this basic block"))
        if name is not None and name.startswith("w") and value.kind == "const":
            return Val("const", frozenset(v & 0xFFFFFFFF for v in value.consts))
        return value

    def _load(self, insn: Arm64Insn, state: State) -> Val:
        mem = insn.operands[1].mem
        base = state.regs.get("x" + str(_number(_name(insn, mem.base) or "")))
        if base is None or base.kind != "addr" or not isinstance(base.ref, int) or mem.index:
            return unknown(f"loaded from memory by `{insn.mnemonic} {insn.op_str}` at 0x{insn.address:x}")
        rva = base.ref + mem.disp
        target = self.image.slot_target(rva)
        if target is not None:
            return Val("fn", ref=target.api, reason=f"{target.how} slot at RVA 0x{rva:x}")
        return unknown(f"loaded at run time from the global at RVA 0x{rva:x}")


def _name(insn: Arm64Insn, reg: int) -> str | None:
    if not reg:
        return None
    if reg not in _REGISTER_NAMES:
        _REGISTER_NAMES[reg] = insn.raw.reg_name(reg)
    return _REGISTER_NAMES[reg]


def _reg_of(insn: Arm64Insn, index: int) -> str | None:
    if index >= len(insn.operands) or insn.operands[index].type != ca.ARM64_OP_REG:
        return None
    return _name(insn, insn.operands[index].reg)


def analyse_arm64(image: Image, found: list[Region]) -> tuple[list[CallSite], int, int]:
    """Every call to an affected API in an ARM64 image: the sites, and the instructions and bytes decoded."""
    interpreter = Arm64Interpreter(image)
    decoded = [interpreter.decode(region) for region in found]
    for insns in decoded:
        interpreter.find_thunks(insns)
    sites = {site.rva: site for insns in decoded for site in interpreter.sites(insns)}
    return [sites[rva] for rva in sorted(sites)], interpreter.instructions, interpreter.code_bytes
