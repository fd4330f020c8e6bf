"""x86 and x64 instruction decoding for the call-site analysis: registers by family, instructions copied out
of capstone once, and basic blocks.

capstone's operand attributes are slow ctypes reads, so each instruction is copied into plain tuples
(:class:`Insn`, :class:`Op`) before the dataflow looks at it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

import capstone
from capstone import x86 as cx86

from hvci.images.callsites.image import Region

OP_REG = cx86.X86_OP_REG
OP_IMM = cx86.X86_OP_IMM
OP_MEM = cx86.X86_OP_MEM
REG_RIP = cx86.X86_REG_RIP

FAMILIES_64 = ("a", "b", "c", "d", "si", "di", "bp", "sp", *(f"r{n}" for n in range(8, 16)))
FAMILIES_32 = ("a", "b", "c", "d", "si", "di", "bp", "sp")
ARG_REGS_64 = ("c", "d", "r8", "r9")
ARG_NAMES_64 = ("rcx", "rdx", "r8", "r9")
VOLATILE_64 = ("a", "c", "d", "r8", "r9", "r10", "r11")
VOLATILE_32 = ("a", "c", "d")

#: A memory operand in capstone's text: ``[rip + 0x1234]`` (x64) or ``[0x401000]`` (x86 absolute).
MEM_RE = re.compile(r"\[(?:rip ([+-]) )?(0x[0-9a-f]+|\d+)\]")
BARRIERS = frozenset({"ret", "retf", "int3", "ud2", "hlt", "iretq", "iretd"})
#: Where a function in a gap (code no .pdata/PDB range covers) ends: the next one starts after these.
CHUNK_ENDS = frozenset({"ret", "retf", "int3"})
#: What may precede a ``jmp [slot]`` import stub (nop padding aside): nothing falls through into it.
STUB_AFTER = BARRIERS | {"jmp"}


def _register_table() -> dict[str, tuple[str, int, int]]:
    """Register name -> (family, width in bits, bit shift): ``ah`` -> (``a``, 8, 8)."""
    table: dict[str, tuple[str, int, int]] = {}
    for x in "abcd":
        table.update(
            {
                f"r{x}x": (x, 64, 0),
                f"e{x}x": (x, 32, 0),
                f"{x}x": (x, 16, 0),
                f"{x}l": (x, 8, 0),
                f"{x}h": (x, 8, 8),
            }
        )
    for x in ("si", "di", "bp", "sp"):
        table.update({f"r{x}": (x, 64, 0), f"e{x}": (x, 32, 0), x: (x, 16, 0), f"{x}l": (x, 8, 0)})
    for n in range(8, 16):
        table.update(
            {
                f"r{n}": (f"r{n}", 64, 0),
                f"r{n}d": (f"r{n}", 32, 0),
                f"r{n}w": (f"r{n}", 16, 0),
                f"r{n}b": (f"r{n}", 8, 0),
            }
        )
    return table


REGISTERS = _register_table()


def _register_ids() -> tuple[dict[int, tuple[str, int, int]], dict[int, str]]:
    """capstone register id -> (family, width, shift) and -> name, built once."""
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    names = {i: md.reg_name(i) for i in range(1, cx86.X86_REG_ENDING)}
    return {i: REGISTERS[n] for i, n in names.items() if n in REGISTERS}, {
        i: n for i, n in names.items() if n
    }


REG_INFO, REG_NAMES = _register_ids()


class _Decoders(threading.local):
    def __init__(self) -> None:
        self.made: dict[tuple[int, bool], capstone.Cs] = {}


_DECODERS = _Decoders()


def disassembler(bits: int, *, detail: bool) -> capstone.Cs:
    """A capstone decoder for 32- or 64-bit code that keeps undecodable bytes as data (skipdata). One per
    kind and thread, made on first use: opening one costs more than decoding a small driver's functions,
    and a capstone handle must not decode in two threads at once."""
    made = _DECODERS.made
    md = made.get((bits, detail))
    if md is None:
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64 if bits == 64 else capstone.CS_MODE_32)
        md.detail = detail
        md.skipdata = True
        made[(bits, detail)] = md
    return md


#: One instruction as capstone's lite mode lists it: address, size, mnemonic, operand text.
Listed = tuple[int, int, str, str]

_SIZES = {
    "byte": 1,
    "word": 2,
    "dword": 4,
    "qword": 8,
    "tbyte": 10,
    "xmmword": 16,
    "ymmword": 32,
    "zmmword": 64,
}
_MEMORY = re.compile(r"(?:(\w+) ptr )?(?:[a-z]s:)?\[([^\]]*)\]")
#: The signed terms of a memory operand's address (``rax + rcx*8 - 0x10``).
_TERMS = re.compile(r"([+-]?)\s*([^+\s-][^+-]*?)\s*(?=[+-]|$)")
_IMMEDIATE = re.compile(r"-?(?:0x[0-9a-f]+|[0-9]+)")
_REG_IDS = {name: reg for reg, name in REG_NAMES.items()}
#: :class:`Op`'s own constructor is a Python function: operands are built by tuple's C core, all fields given
_make = tuple.__new__


def _parse_memory(match: re.Match[str], default_size: int) -> Op | None:
    size = _SIZES.get(match[1], 0) if match[1] else default_size
    base = index = disp = 0
    scale = 1
    for sign, term in _TERMS.findall(match[2]):
        if "*" in term:
            name, _, factor = term.partition("*")
            index, scale = _REG_IDS.get(name, -1), int(factor)
        elif term in _REG_IDS:
            if base:
                index = _REG_IDS[term]
            else:
                base = _REG_IDS[term]
        else:
            disp += -int(term, 0) if sign == "-" else int(term, 0)
    if index < 0:
        return None
    return _make(Op, (OP_MEM, size, 0, 0, base, index, scale, disp, 0))


#: The condition codes of ``setcc`` (and ``jcc``, ``cmovcc``) as capstone names them.
_CONDITIONS = ("o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g")

#: Shifts and rotates by one, whose count capstone lists as an operand it does not print.
_IMPLICIT_COUNT = frozenset({"shl", "sal", "shr", "sar", "rol", "ror", "rcl", "rcr"})


def parse_operands(mnemonic: str, op_str: str, bits: int) -> tuple[Op, ...] | None:
    """capstone's Intel-syntax operand text as :class:`Op` tuples (without ``access``), or None when the text
    has a form this parser does not know (the caller then asks capstone for the details)."""
    if not op_str:
        return ()
    if mnemonic in _IMPLICIT_COUNT and ", " not in op_str:
        return None
    out: list[Op] = []
    for text in op_str.split(", "):
        reg = _REG_IDS.get(text)  # the commonest operand, and never a memory one: looked up first
        memory = None if reg is not None or "[" not in text else _MEMORY.fullmatch(text)
        if reg is not None:
            info = REG_INFO.get(reg)
            op: Op | None = _make(Op, (OP_REG, info[1] // 8 if info else 0, reg, 0, 0, 0, 1, 0, 0))
        elif memory is not None:
            op = _parse_memory(memory, out[0].size if out else bits // 8)
        elif _IMMEDIATE.fullmatch(text):
            op = _make(Op, (OP_IMM, out[0].size if out else bits // 8, 0, int(text, 0), 0, 0, 1, 0, 0))
        else:
            return None
        if op is None:
            return None
        out.append(op)
    return tuple(out)


#: What an instruction does in an interpreter, fixed by its text (:meth:`Decoder.decode`'s ``plan``).
Plan = Callable[[str, "tuple[Op, ...]", bool, bool], int]

_PARSED: dict[tuple[int, Plan | None], dict[tuple[str, str], tuple[bool, bool, tuple[Op, ...], int]]] = {}
_DETAILS: dict[int, dict[tuple[str, str], tuple[tuple[int, ...], tuple[Op, ...]]]] = {}


class Decoder:
    """Instructions with their operands, fast: capstone's lite mode lists them and their operand text is
    parsed here (capstone's detail mode costs a slow ctypes read per field). The text, with ``[rip + 0x...]``
    displacements and absolute jump targets, fixes the operands, so each distinct text is parsed once. Which
    registers an instruction writes (only asked for instructions the interpreter does not model) comes from
    capstone's details, also once per text."""

    #: Distinct instruction texts kept; past it the tables start afresh (hostile code can vary without end).
    MAX_CACHED = 200_000

    def __init__(self, bits: int, plan: Plan | None = None) -> None:
        """``plan(mnemonic, operands, data, jump)``: what the interpreter does with an instruction, kept in
        :attr:`Insn.plan` (0 without one): decided once per distinct text rather than at every run."""
        self.bits = bits
        self.lite = disassembler(bits, detail=False)
        self.md = disassembler(bits, detail=True)
        self.plan = plan
        # shared by every image of the same width: common texts (``mov rcx, rbx``) recur across drivers
        self.parsed = _PARSED.setdefault((bits, plan), {})
        self.details = _DETAILS.setdefault(bits, {})

    def decode(self, data: bytes, start: int, listed: Iterable[Listed] | None = None) -> Iterator[Insn]:
        """The instructions of ``data`` (code at RVA ``start``); ``listed``: capstone's lite listing of the
        same bytes when the cheap pass made it (not decoded again)."""
        parsed = self.parsed
        make = tuple.__new__  # Insn's own constructor is a Python function: this is its C core
        if listed is None:
            listed = self.lite.disasm_lite(data, start)
        for address, size, mnemonic, op_str in listed:
            key = (mnemonic, op_str)
            known = parsed.get(key)
            offset = address - start
            code = data[offset : offset + size]
            if known is None:
                if len(parsed) >= self.MAX_CACHED:
                    parsed.clear()
                data_bytes = mnemonic == ".byte"  # bytes that do not decode have no operands to read
                ops = () if data_bytes else parse_operands(mnemonic, op_str, self.bits)
                if ops is None:
                    ops = self._detail(key, code, address)[1]
                jump = not data_bytes and is_jump(mnemonic)
                plan = self.plan(mnemonic, ops, data_bytes, jump) if self.plan is not None else 0
                known = parsed[key] = (data_bytes, jump, ops, plan)
            data_bytes, jump, ops, plan = known
            yield make(Insn, (address, size, mnemonic, op_str, data_bytes, jump, ops, code, plan))

    def written(self, insn: Insn) -> tuple[tuple[int, ...], tuple[Op, ...]]:
        """The registers ``insn`` writes and its operands with ``access``: capstone's details, or for the
        instructions that write their first operand only, that operand (:func:`first_written`)."""
        return first_written(insn.mnemonic, insn.ops) or self._detail(
            (insn.mnemonic, insn.op_str), insn.code, insn.address
        )

    def _detail(
        self, key: tuple[str, str], code: bytes, address: int
    ) -> tuple[tuple[int, ...], tuple[Op, ...]]:
        known = self.details.get(key)
        if known is None:
            if len(self.details) >= self.MAX_CACHED:
                self.details.clear()
            raw = next(self.md.disasm(code, address), None)
            if raw is None or raw.id == 0:
                known = ((), ())
            else:
                try:
                    _, written = raw.regs_access()
                except capstone.CsError:
                    written = []
                known = (tuple(written), _operands(raw))
            self.details[key] = known
        return known


#: Instructions whose one effect the interpreter sees is a write to their first operand (the flags aside),
#: by their number of operands: conditional sets, add and subtract with carry, multiplies with an explicit
#: destination, shifts and rotates by an explicit count, bit scans and counts. What they write
#: is read from their operands, not from capstone's details (a slow read for each new instruction text,
#: tens of them in a driver): a test holds both equal on every such instruction of the drivers we have.
WRITES_FIRST: dict[str, frozenset[int]] = {
    **dict.fromkeys(("adc", "sbb", "bsf", "bsr", "popcnt", "lzcnt", "tzcnt"), frozenset({2})),
    **dict.fromkeys(("shl", "sal", "shr", "sar", "rol", "ror", "rcl", "rcr"), frozenset({2})),
    "imul": frozenset({2, 3}),
    **{f"set{cc}": frozenset({1}) for cc in _CONDITIONS},
}


def first_written(mnemonic: str, ops: tuple[Op, ...]) -> tuple[tuple[int, ...], tuple[Op, ...]] | None:
    """For an instruction of :data:`WRITES_FIRST` between registers and constants: the register it writes
    and its operands; None for any other."""
    counts = WRITES_FIRST.get(mnemonic)
    if counts is None or len(ops) not in counts:
        return None
    if ops[0].type != OP_REG or any(op.type == OP_MEM for op in ops):
        return None  # a memory destination is left to capstone's details (and :func:`_operands`)
    return (ops[0].reg,), ops


#: Instructions whose first operand is their destination by the x86 encoding: the mov family (SSE and AVX
#: moves, ``movs``, ``movnti``, ``movbe``), ``stos``, conditional sets, extracts to memory (by mnemonic
#: prefix), and shifts and rotates. capstone 5 marks that operand read-only for some of them when it is memory
#: (`movups xmmword ptr [rbp - 0x19], xmm1`, `movq qword ptr [rsp + 0x20], xmm0`, `rcl byte ptr [rsi + 1],
#: 0`), which would hide the store from the dataflow; a test checks the prefixes against capstone's names.
MEMORY_DESTINATION_PREFIXES = (
    "mov", "vmov", "stos", "set", "pextr", "vpextr", "extractps", "vextract", "vmaskmov", "vpmaskmov",
    "vcvtps2ph",
)  # fmt: skip
MEMORY_DESTINATION = frozenset({"shl", "sal", "shr", "sar", "rol", "ror", "rcl", "rcr", "shld", "shrd"})


def writes_first_operand(mnemonic: str) -> bool:
    """Whether ``mnemonic``'s first operand, when it is memory, is written (:data:`MEMORY_DESTINATION`)."""
    return mnemonic in MEMORY_DESTINATION or mnemonic.startswith(MEMORY_DESTINATION_PREFIXES)


def _operands(raw: capstone.CsInsn) -> tuple[Op, ...]:
    ops = _capstone_operands(raw)
    if ops and ops[0].type == OP_MEM and writes_first_operand(raw.mnemonic):
        ops = (ops[0]._replace(access=ops[0].access | capstone.CS_AC_WRITE), *ops[1:])
    return ops


def _capstone_operands(raw: capstone.CsInsn) -> tuple[Op, ...]:
    return tuple(
        Op(
            o.type,
            o.size,
            o.reg if o.type == OP_REG else 0,
            o.imm if o.type == OP_IMM else 0,
            o.mem.base if o.type == OP_MEM else 0,
            o.mem.index if o.type == OP_MEM else 0,
            o.mem.scale if o.type == OP_MEM else 1,
            o.mem.disp if o.type == OP_MEM else 0,
            o.access,
        )
        for o in raw.operands
    )


class Op(NamedTuple):
    """An x86 operand, copied out of capstone once (its attributes are slow ctypes reads)."""

    type: int
    size: int
    reg: int
    imm: int
    base: int
    index_reg: int
    scale: int
    disp: int
    access: int


class Insn(NamedTuple):
    """An instruction with what the interpreter reads; ``code`` (its bytes) for capstone's details when an
    unmodelled instruction's written registers are needed."""

    address: int
    size: int
    mnemonic: str
    op_str: str
    data: bool  # undecodable bytes kept by skipdata
    jump: bool
    ops: tuple[Op, ...]
    code: bytes
    plan: int = 0  # what the interpreter does with it (:class:`Decoder`)

    @property
    def text(self) -> str:
        return f"{self.mnemonic} {self.op_str}"

    @property
    def step(self) -> str:
        """The instruction and where it is, as reasons quote it: ```or eax, 0x10` at 0x1400``."""
        return f"`{self.mnemonic} {self.op_str}` at 0x{self.address:x}"


def is_jump(mnemonic: str) -> bool:
    """Jumps (``jmp``, ``jcc``, ``jecxz``, ``loop*``), from the mnemonic: cheaper than capstone's groups."""
    return mnemonic.startswith(("j", "loop"))


def successors(insn: Insn) -> list[int]:
    m = insn.mnemonic
    after = insn.address + insn.size
    if insn.data:  # undecodable bytes (skipdata): nothing sensible follows
        return []
    if m in BARRIERS or m.startswith("ret"):
        return []
    if m == "jmp":
        op = insn.ops[0] if insn.ops else None
        return [op.imm] if op is not None and op.type == OP_IMM else []
    if insn.jump:
        op = insn.ops[0] if insn.ops else None
        targets = [after]
        if op is not None and op.type == OP_IMM:
            targets.append(op.imm)
        return targets
    return [after]


def blocks(insns: list[Insn], region: Region) -> list[list[Insn]]:
    """Split a function into basic blocks at jump targets and after branches and barriers."""
    leaders = {insns[0].address}
    for insn in insns:
        m = insn.mnemonic
        if insn.data:
            leaders.add(insn.address + insn.size)
            continue
        if m == "jmp" or m in BARRIERS or m.startswith("ret") or insn.jump:
            leaders.add(insn.address + insn.size)
            if insn.ops and insn.ops[0].type == OP_IMM:
                target = insn.ops[0].imm
                if region.start <= target < region.end:
                    leaders.add(target)
    out: list[list[Insn]] = []
    for insn in insns:
        if insn.address in leaders or not out:
            out.append([insn])
        else:
            out[-1].append(insn)
    return out
