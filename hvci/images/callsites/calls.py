"""Calls in the x86/x64 dataflow: what a call reaches (IAT slot, thunk, routine pointer), the effect of a call
on the state, routine lookups by name, and the call sites judged by :mod:`hvci.images.callsites.verdict`."""

from __future__ import annotations

import msgspec

from hvci.images.callsites.dataflow import X86Dataflow
from hvci.images.callsites.image import INIT_UNICODE, ROUTINE_LOOKUP, Image, Target
from hvci.images.callsites.results import UNKNOWN, CallSite
from hvci.images.callsites.values import State, Val, unknown
from hvci.images.callsites.verdict import call_site, judge, x86_stack_word
from hvci.images.callsites.x86 import (
    ARG_NAMES_64,
    ARG_REGS_64,
    OP_IMM,
    OP_MEM,
    VOLATILE_32,
    VOLATILE_64,
    Insn,
)
from hvci.knowledge import kb


class Pending(msgspec.Struct, frozen=True):
    """A call site whose deciding argument is loaded from a global: decided from the global's stores."""

    api: kb.AffectedApi
    value: Val
    where: str


class X86Arguments(msgspec.Struct, frozen=True):
    """Arguments at an x86/x64 call: rcx, rdx, r8, r9 then the stack (x64), or stack words (x86 stdcall).
    A tail jump leaves the return address at the stack pointer, one word below the arguments."""

    state: State
    bits: int
    tail: bool

    def slot(self, index: int) -> Val:
        """The argument at position ``index`` of the compiled call (a register or a stack word)."""
        word = self.bits // 8
        if self.bits == 64 and index < 4:
            value = self.state.regs.get(ARG_REGS_64[index])
            return unknown("an argument register not set here") if value is None else value
        offset = (0x20 + 8 * (index - 4)) if self.bits == 64 else word * index
        if self.tail:
            offset += word
        value = self.state.slots.get(offset)
        if value is None:
            return unknown(f"the stack argument at [sp+0x{offset:x}] is not written in the visible code")
        return value

    def value(self, api: kb.AffectedApi, param: int | None = None) -> Val:
        if self.bits == 32:
            return self.slot(x86_stack_word(api, param))
        index = api.binary_argument_index if param is None else param + api.implicit_args
        return self.slot(index or 0)

    def where(self, index: int) -> str:
        if self.bits == 64 and index < 4:
            return f"argument {index + 1} ({ARG_NAMES_64[index]})"
        return f"argument {index + 1} (stack)"


class CallInterpreter(X86Dataflow):
    """The dataflow with calls: sites of affected APIs are collected, routine lookups followed. Sites whose
    argument comes from a global wait in ``pending`` until every store to that global is known."""

    def __init__(self, image: Image) -> None:
        super().__init__(image)
        self.pending: dict[int, Pending] = {}

    def _call_target(self, insn: Insn, st: State) -> Target | None:
        op = insn.ops[0] if insn.ops else None
        if op is None:
            return None
        if op.type == OP_IMM:
            return self.image.thunks.get(op.imm)
        if op.type == OP_MEM:
            rva = self._mem_target(insn, op)
            if rva is not None:
                if rva in self.image.version_slots:
                    self.version_calls.append((self.image.version_slots[rva], insn.address))
                if rva == self.image.guard_dispatch and self.bits == 64:
                    return self._guarded(st.regs.get("a"))
                return self.image.slot_target(rva)
        value = self._read(insn, op, st)
        if value.kind == "fn" and isinstance(value.ref, str):
            return Target(value.ref, None, f"call {insn.op_str} holding {value.ref} ({value.reason})")
        return None

    def _guarded(self, target: Val | None) -> Target | None:
        """A /guard:cf dispatch call: it reaches what rax holds."""
        if target is None or target.kind != "fn" or not isinstance(target.ref, str):
            return None
        return Target(
            target.ref,
            None,
            f"CFG dispatch (__guard_dispatch_icall_fptr), rax holding {target.ref} ({target.reason})",
        )

    def _call(self, insn: Insn, st: State, sites: list[CallSite], tail: bool) -> None:
        target = self._call_target(insn, st)
        result = unknown(f"the return value of the call at 0x{insn.address:x}")
        args = X86Arguments(st, self.bits, tail)
        if target is not None:
            if target.api == INIT_UNICODE:
                self._init_unicode(args)
            elif target.api == ROUTINE_LOOKUP:
                name = self._routine_name(args)
                if name is not None and self.image.kb.affected_api(name) is not None:
                    result = Val(
                        "fn", ref=name, reason=f'MmGetSystemRoutineAddress("{name}") at 0x{insn.address:x}'
                    )
            else:
                api = self.image.kb.affected_api(target.api)
                # an import thunk's own jump is not a call site: the calls to the thunk are
                if api is not None and insn.address not in self.image.thunks:
                    sites.append(self._site(insn, args, target, api))
        clobbered = unknown(f"clobbered by the call at 0x{insn.address:x}")
        for family in VOLATILE_64 if self.bits == 64 else VOLATILE_32:
            st.regs[family] = clobbered
        st.regs["a"] = result
        # the callee may write any stack variable whose address it was given, and pops stdcall arguments
        st.forget_stack()

    def _init_unicode(self, args: X86Arguments) -> None:
        dest, source = args.slot(0), args.slot(1)
        if source.kind != "addr" or not isinstance(source.ref, int):
            return
        name = self.image.read_wide_string(source.ref)
        if name is None:
            return
        if dest.kind == "stack" and isinstance(dest.ref, int):
            args.state.slots[dest.ref] = Val("ustr", ref=name)
        elif dest.kind == "addr" and isinstance(dest.ref, int):
            self.image.facts += 1
            self.image.global_ustr[dest.ref] = name

    def _routine_name(self, args: X86Arguments) -> str | None:
        arg = args.slot(0)
        if arg.kind == "stack" and isinstance(arg.ref, int):
            slot = args.state.slots.get(arg.ref)
            return (
                slot.ref if slot is not None and slot.kind == "ustr" and isinstance(slot.ref, str) else None
            )
        if arg.kind == "addr" and isinstance(arg.ref, int):
            return self.image.read_unicode_string(arg.ref)
        return None

    def _site(self, insn: Insn, args: X86Arguments, target: Target, api: kb.AffectedApi) -> CallSite:
        how = target.how
        if how == "[IAT]":
            how = ("tail jump " if args.tail else "call ") + "[IAT]"
        elif args.tail and not how.startswith("tail"):
            how = f"tail jump: {how}"
        verdict = judge(api, args)
        value = args.value(api)
        self.pending.pop(insn.address, None)  # an earlier run of the block, with another state
        if verdict.verdict == UNKNOWN and value.kind == "global" and api.binary_argument_index is not None:
            self.pending[insn.address] = Pending(api, value, args.where(api.binary_argument_index))
        return call_site(insn.address, insn.text, how, target.dll or api.module, api, verdict)
