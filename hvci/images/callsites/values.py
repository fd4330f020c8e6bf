"""Abstract values of the call-site dataflow: what a register or stack slot may hold at a point of a function.

A value is a small set of constants, the address of an API or of image data, a stack address, a
``UNICODE_STRING`` naming a routine, or ``unknown`` with the reason (where the value came from), so that an
undecided verdict always says why. Architecture-neutral: the x86 interpreter (and any other) builds on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import msgspec

#: An operation on a value loaded from a global: (mnemonic, operand, operand size if it is a global else 0).
GlobalOp = tuple[str, int, int]

#: More possible constants than this and a value is unknown (computed in a loop, a table...).
MAX_VALUES = 8
#: Operations kept on a value loaded from a global before it becomes plainly unknown.
MAX_OPS = 6
MASK64 = (1 << 64) - 1


class Val(NamedTuple):
    """An abstract value: ``const`` (a small set of possible ints), ``unknown`` (with the reason), ``fn``
    (the address of API ``ref``), ``addr`` (address of image data at RVA ``ref``), ``stack`` (address of
    the stack slot ``ref`` bytes above the stack pointer) or ``ustr`` (a UNICODE_STRING naming ``ref``).

    An ``unknown`` register whose low ``low_bits`` bits were then set (``mov dl, 1``) keeps them in
    ``consts``: enough for a narrow parameter such as a ``KPROCESSOR_MODE``.

    ``global`` is a value loaded from the image's global at RVA ``ref`` (``size`` bytes) with the operations
    ``ops`` applied since, e.g. ``(("or", 0x10, 0),)``: unknown here, but decided later from every store to
    that global, or at once by the bits the operations fix (``global | 0x40000000``). An operation's third
    item is 0 for a constant operand, else the operand is another global (RVA, size).

    A named tuple rather than a frozen dataclass: the interpreter makes and compares values at every
    instruction, and a tuple is built and compared in C, a frozen dataclass in Python."""

    kind: str
    consts: frozenset[int] = frozenset()
    ref: int | str | None = None
    reason: str = ""
    low_bits: int = 0
    ops: tuple[GlobalOp, ...] = ()
    size: int = 0


_EMPTY: frozenset[int] = frozenset()
#: ``Val``'s own constructor is a Python function (keyword defaults); the values made at every instruction
#: are built by tuple's C constructor with all seven fields instead
_make = tuple.__new__


def const(value: int, mask: int = MASK64) -> Val:
    return _make(Val, ("const", frozenset({value & mask}), None, "", 0, (), 0))


def unknown(reason: str) -> Val:
    return _make(Val, ("unknown", _EMPTY, None, reason, 0, (), 0))


def consts(values: frozenset[int]) -> Val:
    """A ``const`` value of the possible ``values``."""
    return _make(Val, ("const", values, None, "", 0, (), 0))


def merge(a: Val, b: Val) -> Val:
    if a is b or a == b:
        return a
    if a.kind == "unknown":
        return unknown(a.reason) if a.low_bits else a  # known low bits hold on one path only
    if b.kind == "unknown":
        return unknown(b.reason) if b.low_bits else b
    if a.kind == "const" and b.kind == "const":
        values = a.consts | b.consts
        if len(values) > MAX_VALUES:
            return unknown(f"more than {MAX_VALUES} possible values (computed in a loop?)")
        return consts(values)
    return unknown("differs between the paths that reach the call")


class State(msgspec.Struct):
    """Registers (by family: ``a``, ``c``, ``r8``...) and stack slots keyed by offset above the stack
    pointer."""

    regs: dict[str, Val]
    slots: dict[int, Val]

    def copy(self) -> State:
        return State(dict(self.regs), dict(self.slots))

    def join(self, other: State) -> State:
        """Per register and slot, the merge of both; identical values (the common case) are kept as is, and
        so is this state when nothing in it changes."""
        regs, slots = _join(self.regs, other.regs), _join(self.slots, other.slots)
        if regs is self.regs and slots is self.slots:
            return self
        return State(regs, slots)

    def shift(self, delta: int) -> None:
        """The stack pointer moved down by ``delta`` bytes: slots are now that much further above it."""
        self.slots = {offset + delta: v for offset, v in self.slots.items() if offset + delta >= 0}

    def store(self, offset: int, size: int, value: Val, partly: Callable[[], str]) -> None:
        """``size`` bytes at ``offset`` now hold ``value``. A slot that begins inside them (a structure's
        fields built on the stack, then covered by one 16-byte ``movups`` or an 8-byte ``mov``) or below them
        and may run into them (a slot holds at most 8 bytes; a narrow one was kept masked to its width) now
        holds its bytes as they are in memory: its own where the store did not reach, the store's where it
        did. What can no longer be known of it is unknown, with ``partly()`` (naming the store) as the reason;
        its known low bytes are kept (``low_bits``), so a field below the store is read as before."""
        end = offset + size
        for key in [k for k in self.slots if offset - 8 < k < end and k != offset]:
            self.slots[key] = _overlapped(self.slots[key], key, offset, size, value, partly())
        self.slots[offset] = value

    def forget_stack(self) -> None:
        """Stack variables are no longer known, except the UNICODE_STRINGs a routine lookup reads."""
        self.slots = {k: v for k, v in self.slots.items() if v.kind == "ustr"}


def _low(bits: int) -> int:
    return (1 << bits) - 1 if bits < 64 else MASK64


def _known_low(values: frozenset[int], bits: int, reason: str) -> Val:
    """Unknown, but for its low ``bits`` bits, which are one of ``values``."""
    return _make(Val, ("unknown", values, None, reason, bits, (), 0))


def _overlapped(old: Val, key: int, offset: int, size: int, new: Val, partly: str) -> Val:
    """What the slot at ``key`` holds after ``size`` bytes at ``offset`` were set to ``new``; the slot
    begins below the store (its low bytes stay) or inside it (its low bytes are the store's)."""
    if old.kind == "global" and key + old.size <= offset:
        return old  # a value loaded from a narrower global ends before the store
    if key < offset:
        kept = (offset - key) * 8  # the slot's own low bits
        if old.kind == "const" and new.kind == "const":
            reach = _low(min(64, kept + size * 8)) & ~_low(kept)
            values = frozenset((o & ~reach) | ((n << kept) & reach) for o in old.consts for n in new.consts)
            return consts(values) if len(values) <= MAX_VALUES else unknown(partly)
        if old.kind == "const" or (old.kind == "unknown" and old.low_bits):
            bits = min(kept, old.low_bits) if old.kind == "unknown" else kept
            return _known_low(frozenset(v & _low(bits) for v in old.consts), bits, partly)
        return old if old.kind == "unknown" else unknown(partly)
    covered = (offset + size - key) * 8  # the slot's low bits the store set
    shift = (key - offset) * 8
    if new.kind != "const":
        return unknown(partly)
    if covered >= 64:
        return consts(frozenset((n >> shift) & MASK64 for n in new.consts))
    if old.kind == "const":
        values = frozenset(
            (o & ~_low(covered)) | ((n >> shift) & _low(covered)) for o in old.consts for n in new.consts
        )
        return consts(values) if len(values) <= MAX_VALUES else unknown(partly)
    return _known_low(frozenset((n >> shift) & _low(covered) for n in new.consts), covered, partly)


def _join(a: dict[Any, Val], b: dict[Any, Val]) -> dict[Any, Val]:
    if a == b:  # the common case, compared in C; states are never changed in place, so ``a`` can serve
        return a
    out = {}
    for key, value in a.items():
        theirs = b.get(key)
        if theirs is None:
            continue
        out[key] = value if value is theirs else merge(value, theirs)
    return out


#: Two-operand integer operations the interpreters fold when both sides are known.
BINARY: Mapping[str, Callable[[int, int], int]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "and": lambda a, b: a & b,
    "or": lambda a, b: a | b,
    "xor": lambda a, b: a ^ b,
    "shl": lambda a, b: a << (b & 63),
    "sal": lambda a, b: a << (b & 63),
    "shr": lambda a, b: a >> (b & 63),
    "bts": lambda a, b: a | (1 << (b & 63)),
    "btr": lambda a, b: a & ~(1 << (b & 63)),
    "btc": lambda a, b: a ^ (1 << (b & 63)),
}
UNARY: Mapping[str, Callable[[int, int], int]] = {
    "inc": lambda a, _: a + 1,
    "dec": lambda a, _: a - 1,
    "not": lambda a, _: ~a,
    "neg": lambda a, _: -a,
}


def fold(left: frozenset[int], right: frozenset[int], op: Callable[[int, int], int], width: int) -> Val:
    mask = (1 << width) - 1 if width else MASK64
    return consts(frozenset(op(a & mask, b & mask) & mask for a in left for b in right))


def derived(left: Val, right: Val, step: str) -> str:
    """Why a value computed from an unknown one is unknown: where the unknown came from, then the operation
    (``loaded from the global at RVA 0x12130, then `or eax, 0x10```), so the reader sees both halves.
    ``step`` names the operation and where it is (```or eax, 0x10` at 0x1400``)."""
    base = left if left.kind in ("unknown", "global") else right
    if base.kind in ("unknown", "global") and base.reason:
        origin, _, before = base.reason.partition(", then ")
        if step in before:
            return base.reason
        return f"{origin}, then {'operations ending with ' if before else ''}{step}"
    return f"computed by {step}"


def sign_extend(value: int, width: int) -> int:
    if width and value & (1 << (width - 1)):
        return value - (1 << width)
    return value


#: Operations whose effect on a global's value is replayed when the global's values are known.
GLOBAL_OPS = frozenset({"and", "or", "xor", "shl", "sal", "shr", "bts", "btr", "btc", "add", "sub"})


def apply_ops(value: int, ops: tuple[GlobalOp, ...], other: Mapping[int, int]) -> int:
    """A global's value after the operations recorded on it (``Val.ops``), as a 64-bit number; ``other``
    gives the value of each other global an operation reads."""
    for name, operand, size in ops:
        value = BINARY[name](value, other[operand] if size else operand) & MASK64
    return value


def operand_globals(ops: tuple[GlobalOp, ...]) -> list[tuple[int, int]]:
    """The other globals (RVA, size) the operations read."""
    return sorted({(operand, size) for _, operand, size in ops if size})


def known_bits(ops: tuple[GlobalOp, ...], width: int) -> tuple[int, int]:
    """Which bits of ``unknown op ops`` are known whatever the globals held, and their values: ``| c`` sets
    the bits of ``c``, ``& c`` clears the others, shifts move known bits and bring in zeros; an operand that
    is itself a global keeps only the known bits it cannot change. Returns ``(mask, value)`` in ``width``
    bits."""
    full = (1 << width) - 1
    mask = value = 0
    for name, c, size in ops:
        if size:  # or: known ones stay; and: known zeros stay; anything else: nothing is known
            mask = mask & value if name == "or" else mask & ~value if name == "and" else 0
            value &= mask
        elif name == "or" or name == "bts":
            bits = c if name == "or" else 1 << (c & 63)
            mask, value = mask | bits, value | bits
        elif name == "and" or name == "btr":
            keep = c if name == "and" else ~(1 << (c & 63))
            mask, value = mask | (~keep & full), value & keep
        elif name == "xor" or name == "btc":
            value ^= (c if name == "xor" else 1 << (c & 63)) & mask
        elif name in ("shl", "sal"):
            n = c & 63
            mask, value = ((mask << n) | ((1 << n) - 1)) & full, (value << n) & full
        elif name == "shr":
            n = c & 63
            mask, value = (mask >> n) | (full & ~(full >> n)), value >> n
        else:  # add, sub: carries reach unknown bits
            mask = value = 0
    return mask & full, value & mask & full
