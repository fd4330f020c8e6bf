"""The x86/x64 dataflow of the call-site analysis: a small forward constant propagation over one function.

Each function is decoded in detail, cut into basic blocks and run to a fixpoint over :class:`State` (registers
by family and stack slots); values that still change after a few rounds (loops) become unknown. Calls are left
to a subclass (:class:`hvci.images.callsites.calls.CallInterpreter`), which judges them.
"""

from __future__ import annotations

import heapq
from itertools import islice

import capstone

from hvci.images.callsites.image import Image, Region, Store, Target
from hvci.images.callsites.results import CallSite
from hvci.images.callsites.values import (
    BINARY,
    GLOBAL_OPS,
    MAX_OPS,
    MAX_VALUES,
    UNARY,
    GlobalOp,
    State,
    Val,
    const,
    consts,
    derived,
    fold,
    merge,
    sign_extend,
    unknown,
)
from hvci.images.callsites.x86 import (
    ARG_NAMES_64,
    ARG_REGS_64,
    FAMILIES_32,
    FAMILIES_64,
    OP_IMM,
    OP_MEM,
    OP_REG,
    REG_INFO,
    REG_NAMES,
    REG_RIP,
    Decoder,
    Insn,
    Listed,
    Op,
    successors,
)
from hvci.images.callsites.x86 import (
    blocks as basic_blocks,
)
from hvci.knowledge import kmdf

MAX_INSNS_PER_FUNCTION = 40_000
_COMMUTATIVE = frozenset({"and", "or", "xor", "add"})
MAX_DETAILED_INSNS = 2_000_000
MAX_FIXPOINT_ROUNDS = 8
#: Values read where nothing was written before (made once: a value is immutable, and a default made
#: for every read cost as much as the read)
_FROM_CALLER = unknown("a value the function received from its caller")
_POPPED = unknown("a value popped from the stack")
_UNSET = unknown("")
#: What :data:`REG_INFO` gives for a register of no family we track
_NO_FAMILY = (None, 0, 0)
_MOVES = frozenset({"mov", "movabs", "movzx", "movsx", "movsxd"})
_NO_EFFECT = frozenset({"cmp", "test", "bt", "nop"})

#: What :meth:`X86Dataflow._step` does with an instruction (its :attr:`Insn.plan`, from :func:`plan`)
(
    _SKIP,
    _CALL,
    _JUMP,
    _BRANCH,
    _PUSH,
    _POP,
    _SP_SHIFT,
    _SP_RESET,
    _MOVE,
    _LEA,
    _ZERO,
    _BINARY,
    _UNARY,
    _CMOV,
    _CLOBBER,
) = range(15)


def plan(mnemonic: str, ops: tuple[Op, ...], data: bool, jump: bool) -> int:
    """What the interpreter does with an instruction: everything its text fixes (the mnemonic, the operands'
    kinds, a stack pointer destination), decided once per distinct text. What a run decides (whether a jump's
    target is a thunk) is left to the run."""
    if data:  # skipdata: bytes that do not decode
        return _SKIP
    if mnemonic == "call" or (mnemonic == "jmp" and ops and ops[0].type != OP_IMM):
        return _CALL
    if mnemonic == "jmp":
        return _JUMP if ops else _SKIP
    if jump and ops and ops[0].type == OP_IMM:
        return _BRANCH  # a conditional tail call when it reaches a thunk, else nothing
    if mnemonic == "push" and ops:
        return _PUSH
    if mnemonic == "pop" and ops:
        return _POP
    if len(ops) == 2 and ops[0].type == OP_REG and REG_INFO.get(ops[0].reg, _NO_FAMILY)[0] == "sp":
        return _SP_SHIFT if mnemonic in ("sub", "add") and ops[1].type == OP_IMM else _SP_RESET
    if mnemonic in _MOVES and len(ops) == 2:
        return _MOVE
    if mnemonic == "lea" and len(ops) == 2:
        return _LEA
    same_register = len(ops) == 2 and ops[0].type == ops[1].type == OP_REG and ops[0].reg == ops[1].reg
    if mnemonic == "xor" and same_register:
        return _ZERO
    if mnemonic in BINARY and len(ops) == 2:
        return _BINARY
    if mnemonic in UNARY and len(ops) == 1:
        return _UNARY
    if mnemonic.startswith("cmov") and len(ops) == 2:
        return _CMOV
    if mnemonic in _NO_EFFECT or jump:
        return _SKIP
    return _CLOBBER


class X86Dataflow:
    """Runs functions of one image; counts what it decoded, and notes when a cap cut the work short."""

    def __init__(self, image: Image) -> None:
        self.image = image
        self.bits = image.bits
        self.decoder = Decoder(self.bits, plan)
        self.detailed = 0
        self.code_bytes = 0
        self.capped = False
        self.stack_escapes = False
        #: the cheap pass's listings of whole functions, by (start, end): decoded once for both passes
        self.listings: dict[tuple[int, int], list[Listed]] = {}
        #: calls in the current function that ask for the Windows version: (API, address)
        self.version_calls: list[tuple[str, int]] = []

    def _call(self, insn: Insn, st: State, sites: list[CallSite], tail: bool) -> None:
        """A call or tail jump: judged by the subclass, which also applies its effect on the state."""
        raise NotImplementedError

    def analyse(self, region: Region) -> list[CallSite]:
        data, capped = self.image.code(region)
        self.capped |= capped
        # at least one instruction, as many as the caps leave; reaching a cap counts as capped
        room = max(1, min(MAX_INSNS_PER_FUNCTION, MAX_DETAILED_INSNS - self.detailed))
        listed = self.listings.get((region.start, region.end))
        insns = list(islice(self.decoder.decode(data, region.start, listed), room))
        if len(insns) == room:
            self.capped = True
        self.detailed += len(insns)
        self.version_calls = []
        self.code_bytes += len(data)
        if not insns:
            return []
        # Does the function hand out stack addresses (lea reg,[rsp+X])? Then writes through pointers and
        # calls may change stack variables, and they are forgotten at each such write.
        self.stack_escapes = any(
            i.mnemonic == "lea" and len(i.ops) == 2 and self._is_stack(i, i.ops[1]) for i in insns
        )
        blocks = basic_blocks(insns, region)
        by_start = {b[0].address: b for b in blocks}
        order = [b[0].address for b in blocks]
        entry_state = self._entry_state()
        states: dict[int, State] = {}
        visits: dict[int, int] = {}
        # blocks waiting to be (re)run, taken in address order: close to reverse post-order for compiled
        # code, so most blocks see all their predecessors first
        work: list[int] = []
        queued: set[int] = set()

        def reach(start: int, state: State) -> None:
            old = states.get(start)
            new = state if old is None else old.join(state)
            if new is not old and new != old:
                states[start] = new
                if start not in queued:
                    queued.add(start)
                    heapq.heappush(work, start)

        # Worklist from the entry; then each block still unreached starts afresh: in .pdata/PDB functions
        # it is reached indirectly (a switch), in the gaps between them (leaf stubs, x86) a function starts.
        # Sites are collected on every run of a block; the last run of a block whose input state and the
        # image's facts (routine pointers in globals, names) have not changed since is the final one.
        ran: dict[int, tuple[State, int]] = {}
        found: dict[int, list[CallSite]] = {}

        def run(start: int) -> tuple[State, list[int]]:
            sites: list[CallSite] = []
            ran[start] = (states[start], self.image.facts)
            out, succs = self._run_block(by_start[start], states[start], sites)
            found[start] = sites
            return out, succs

        seeds = iter(order)
        reach(order[0], entry_state)
        while True:
            while work:
                start = heapq.heappop(work)
                queued.discard(start)
                visits[start] = visits.get(start, 0) + 1
                if visits[start] > MAX_FIXPOINT_ROUNDS:
                    continue
                if visits[start] == MAX_FIXPOINT_ROUNDS:  # still changing: a loop; give up its values
                    states[start] = self._orphan_state("a value that changes in a loop")
                out, succs = run(start)
                for succ in succs:
                    if succ in by_start:
                        reach(succ, out)
            seed = next((b for b in seeds if b not in states), None)
            if seed is None:
                break
            reach(seed, entry_state.copy() if region.source == "gap" else self._orphan_state())
        for start in order:
            last = ran.get(start)
            if last is None or last[0] is not states[start] or last[1] != self.image.facts:
                run(start)
        return [site for start in order for site in found[start]]

    def _entry_state(self) -> State:
        regs: dict[str, Val] = {}
        families = FAMILIES_64 if self.bits == 64 else FAMILIES_32
        for family in families:
            regs[family] = _FROM_CALLER
        if self.bits == 64:
            for family, name in zip(ARG_REGS_64, ARG_NAMES_64, strict=True):
                regs[family] = unknown(f"a parameter of the enclosing function ({name} on entry)")
        return State(regs, {})

    def _orphan_state(
        self, reason: str = "code reached only by an indirect jump or from outside the function"
    ) -> State:
        families = FAMILIES_64 if self.bits == 64 else FAMILIES_32
        return State({f: unknown(reason) for f in families}, {})

    def _run_block(self, block: list[Insn], state: State, sites: list[CallSite]) -> tuple[State, list[int]]:
        st = state.copy()
        step = self._step
        for insn in block:
            step(insn, st, sites)
        return st, successors(block[-1])

    # --- one instruction ------------------------------------------------------------------------------

    def _step(self, insn: Insn, st: State, sites: list[CallSite]) -> None:
        kind = insn.plan
        if kind == _MOVE:
            ops = insn.ops
            value = self._read(insn, ops[1], st)
            if value.kind == "const" and insn.mnemonic in ("movsx", "movsxd"):
                width = ops[1].size * 8
                value = consts(frozenset(sign_extend(v, width) & ((1 << 64) - 1) for v in value.consts))
            self._write(insn, ops[0], value, st)
        elif kind == _SKIP:
            return
        elif kind == _LEA:
            self._write(insn, insn.ops[0], self._address(insn, insn.ops[1], st), st)
        elif kind == _CALL:
            self._call(insn, st, sites, tail=insn.mnemonic == "jmp")
        elif kind == _JUMP:
            if insn.ops[0].imm in self.image.thunks:
                self._call(insn, st, sites, tail=True)
        elif kind == _BRANCH:
            if insn.ops[0].imm in self.image.thunks:  # a conditional tail call; the fall-through goes on
                self._call(insn, st.copy(), sites, tail=True)
        elif kind == _ZERO:
            self._write(insn, insn.ops[0], const(0), st)
        elif kind == _BINARY:
            self._write(insn, insn.ops[0], self._binary(insn, st), st)
        elif kind == _PUSH:
            value = self._read(insn, insn.ops[0], st)
            st.shift(self.bits // 8)
            st.slots[0] = value
        elif kind == _POP:
            value = st.slots.get(0, _POPPED)
            st.shift(-(self.bits // 8))
            if insn.ops[0].type == OP_REG:
                self._write(insn, insn.ops[0], value, st)
        elif kind == _SP_SHIFT:
            imm = insn.ops[1].imm
            st.shift(imm if insn.mnemonic == "sub" else -imm)
        elif kind == _SP_RESET:
            st.slots.clear()  # the stack pointer moved by an amount we do not track
        elif kind == _UNARY:
            m, op = insn.mnemonic, insn.ops[0]
            value = self._read(insn, op, st)
            if value.kind == "const":
                value = fold(value.consts, frozenset({0}), UNARY[m], op.size * 8)
            elif value.kind != "unknown":
                value = unknown(f"computed by `{m} {insn.op_str}` at 0x{insn.address:x}")
            self._write(insn, op, value, st)
        elif kind == _CMOV:
            ops = insn.ops
            self._write(insn, ops[0], merge(self._read(insn, ops[0], st), self._read(insn, ops[1], st)), st)
        else:
            self._clobber(insn, st)

    def _binary(self, insn: Insn, st: State) -> Val:
        """``add``, ``or``, ``shl``...: folded when both sides are known; on a value loaded from a global, the
        operation is kept with it (decided later from the global's stores or the bits it fixes)."""
        m, ops = insn.mnemonic, insn.ops
        left, right = self._read(insn, ops[0], st), self._read(insn, ops[1], st)
        if m == "and" and right.kind == "const" and right.consts == {0}:
            return const(0)
        if left.kind == "const" and right.kind == "const" and len(left.consts) * len(right.consts) <= 64:
            return fold(left.consts, right.consts, BINARY[m], ops[0].size * 8)
        if m in _COMMUTATIVE and right.kind == "global" and left.kind == "const":
            left, right = right, left  # `mov eax, 0x40000010; or eax, [global]`: the global with `| const`
        if left.kind == "global" and m in GLOBAL_OPS and len(left.ops) < MAX_OPS and _operand(m, right):
            return Val(
                "global",
                ref=left.ref,
                reason=derived(left, right, insn.step),
                ops=(*left.ops, *_operand(m, right)),
                size=left.size,
            )
        return unknown(derived(left, right, insn.step))

    def _clobber(self, insn: Insn, st: State) -> None:
        """An instruction we do not model: whatever it writes becomes unknown."""
        reason = f"set by `{insn.mnemonic} {insn.op_str}` at 0x{insn.address:x}"
        written, detailed = self.decoder.written(insn)
        for reg in written:
            info = REG_INFO.get(reg)
            if info is None:
                continue
            if info[0] == "sp":
                st.slots.clear()
            st.regs[info[0]] = unknown(reason)
        for op in detailed:
            if op.type != OP_MEM or not op.access & capstone.CS_AC_WRITE:
                continue
            target = self._mem_target(insn, op)
            if self._is_stack(insn, op):
                st.store(op.disp, op.size, unknown(reason), lambda: reason)
            elif target is not None:
                self._store(insn, target, op.size, unknown(reason))
            elif self.stack_escapes:
                st.forget_stack()

    # --- operands ---------------------------------------------------------------------------------------

    def _is_stack(self, insn: Insn, op: Op) -> bool:
        if op.base == 0 or op.index_reg != 0:
            return False
        info = REG_INFO.get(op.base)
        return info is not None and info[0] == "sp"

    def _mem_target(self, insn: Insn, op: Op) -> int | None:
        """The image RVA a memory operand names (rip-relative in x64, absolute in x86), or None."""
        if op.index_reg != 0:
            return None
        disp: int = op.disp
        if op.base == REG_RIP:
            return int(insn.address + insn.size + disp)
        if op.base == 0 and self.bits == 32:
            return (disp - self.image.pe.image_base) & 0xFFFFFFFF
        return None

    def _store(self, insn: Insn, rva: int, size: int, value: Val) -> None:
        """Remember a write into the image's data (the last run of the instruction wins: the fixpoint's)."""
        check = next(((api, a) for api, a in self.version_calls if a < insn.address), None)
        self.image.stores[insn.address] = Store(rva, size, value, insn.address, check)

    def _read(self, insn: Insn, op: Op, st: State) -> Val:
        width = op.size * 8
        if op.type == OP_IMM:
            imm = op.imm & ((1 << width) - 1) if width else op.imm
            if self.bits == 32 and 0 <= imm - self.image.pe.image_base < self.image.pe.size_of_image:
                data = imm - self.image.pe.image_base
                self.image.address_taken.setdefault(data, set()).add(insn.address)
                return Val("addr", ref=data, consts=frozenset({imm}))
            return const(imm)
        if op.type == OP_REG:
            info = REG_INFO.get(op.reg)
            if info is None:
                return unknown(f"register {REG_NAMES.get(op.reg, '?')}")
            family, bits, shift = info
            value = st.regs.get(family, _FROM_CALLER)
            if value.kind == "const" and (bits < 64 or shift):
                mask = (1 << bits) - 1
                return consts(frozenset((v >> shift) & mask for v in value.consts))
            return value
        if op.type == OP_MEM:
            if self._is_stack(insn, op):
                slot = st.slots.get(op.disp)
                if slot is None:
                    return unknown(
                        f"a stack variable [{REG_NAMES.get(op.base, '?')}+0x{op.disp:x}] not "
                        "written in the visible code"
                    )
                if slot.kind == "const" and width < 64:
                    return consts(frozenset(v & ((1 << width) - 1) for v in slot.consts))
                if slot.low_bits and width <= slot.low_bits:  # the field below a store into its slot
                    return consts(frozenset(v & ((1 << width) - 1) for v in slot.consts))
                return slot
            framework = self._wdf_function(op, st)
            if framework is not None:
                return framework
            rva = self._mem_target(insn, op)
            if rva is not None:
                target = self.image.slot_target(rva)
                if target is not None:
                    return Val("fn", ref=target.api, reason=f"{target.how} slot at RVA 0x{rva:x}")
                return self.image.global_value(rva, op.size)
            return unknown(f"loaded from memory `{insn.op_str.split(',')[-1].strip()}` at 0x{insn.address:x}")
        return unknown("an operand we do not model")

    def _wdf_function(self, op: Op, st: State) -> Val | None:
        """``[reg + 8 * N]`` with reg holding the KMDF WdfFunctions table: the framework method N."""
        table = self.image.wdf
        info = REG_INFO.get(op.base)
        if table is None or info is None or op.index_reg or op.disp % (self.bits // 8):
            return None
        base = st.regs.get(info[0])
        if base is None or base.kind != "global" or base.ref != table.rva or base.ops:
            return None
        index = op.disp // (self.bits // 8)
        name = kmdf.load().by_index.get(index)
        if name is None or index >= table.count or self.image.kb.affected_api(name) is None:
            return None
        return Val("fn", ref=name, reason=f"WdfFunctions[{index}] of KMDF {table.version}")

    def _address(self, insn: Insn, op: Op, st: State) -> Val:
        """``lea``: an image address, a stack address, or base + index * scale + disp when all are known."""
        rva = self._mem_target(insn, op)
        if rva is not None:
            self.image.address_taken.setdefault(rva, set()).add(insn.address)
            return Val("addr", ref=rva)
        if self._is_stack(insn, op):
            return Val("stack", ref=op.disp)
        total: frozenset[int] = frozenset({op.disp})
        for reg, scale in ((op.base, 1), (op.index_reg, op.scale)):
            if reg == 0:
                continue
            info = REG_INFO.get(reg)
            value = st.regs.get(info[0]) if info else None
            if value is None or value.kind != "const" or len(total) * len(value.consts) > MAX_VALUES:
                return unknown(f"an address computed by `lea {insn.op_str}` at 0x{insn.address:x}")
            total = frozenset(t + v * scale for t in total for v in value.consts)
        return consts(frozenset(t & ((1 << 64) - 1) for t in total))

    def _write(self, insn: Insn, op: Op, value: Val, st: State) -> None:
        if op.type == OP_REG:
            info = REG_INFO.get(op.reg)
            if info is None:
                return
            family, bits, shift = info
            if family == "sp":
                st.slots.clear()
            if bits >= 32:  # a 32-bit write zero-extends to 64 bits
                if value.kind == "const":
                    value = consts(frozenset(v & ((1 << bits) - 1) for v in value.consts))
                st.regs[family] = value
                return
            old = st.regs.get(family, _UNSET)
            if (
                old.kind == "const"
                and value.kind == "const"
                and len(old.consts) * len(value.consts) <= MAX_VALUES
            ):
                mask = ((1 << bits) - 1) << shift
                st.regs[family] = Val(
                    "const",
                    frozenset((o & ~mask) | ((v << shift) & mask) for o in old.consts for v in value.consts),
                )
            else:
                reason = _partly(insn)
                low = value.kind == "const" and shift == 0 and len(value.consts) <= MAX_VALUES
                st.regs[family] = (
                    Val("unknown", frozenset(v & ((1 << bits) - 1) for v in value.consts), None, reason, bits)
                    if low
                    else unknown(reason)
                )
            return
        if op.type == OP_MEM:
            if self._is_stack(insn, op):
                if value.kind == "const" and op.size < 8:
                    value = consts(frozenset(v & ((1 << (op.size * 8)) - 1) for v in value.consts))
                st.store(op.disp, op.size, value, lambda: _partly(insn))
                return
            rva = self._mem_target(insn, op)
            if rva is None and self.stack_escapes:
                st.forget_stack()  # a write through a pointer may land in a stack variable
            if rva is not None:
                self._store(insn, rva, op.size, value)
            if rva is not None and value.kind == "fn" and isinstance(value.ref, str):
                api = self.image.kb.affected_api(value.ref)
                if api is not None:
                    self.image.facts += 1
                    self.image.global_fns[rva] = Target(
                        value.ref, None, f"call through the pointer stored at RVA 0x{rva:x}"
                    )


def _partly(insn: Insn) -> str:
    return f"partly written by `{insn.mnemonic} {insn.op_str}` at 0x{insn.address:x}"


def _operand(name: str, right: Val) -> tuple[GlobalOp, ...]:
    """The operation on a global with ``right`` as its operand (a constant or another global), if kept."""
    if right.kind == "const" and len(right.consts) == 1:
        return ((name, next(iter(right.consts)), 0),)
    if right.kind == "global" and not right.ops and isinstance(right.ref, int) and right.size:
        return ((name, right.ref, right.size),)
    return ()
