"""The verdict on one call: is the memory the API returns or maps executable, given its deciding argument?

Architecture-neutral: the interpreter hands over the argument values at the call through
:class:`Arguments`, and the knowledge base's decoders judge them. Three outcomes are kept apart on purpose:
``executable`` (a finding), ``safe`` (a pass) and ``unknown`` (never called clean, never called bad); APIs
without a deciding argument are ``banned``.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from hvci.details import CallVerdict
from hvci.images.callsites.results import BANNED, EXECUTABLE, SAFE, UNKNOWN, CallSite
from hvci.images.callsites.values import Val, known_bits
from hvci.knowledge import decode, kb
from hvci.knowledge.decode import DECODERS

#: Argument kinds whose C type is 32 bits wide (a register write may leave garbage above them): the
#: width of their constants.toml table.
NARROW_KINDS = frozenset(k for k in DECODERS if kb.load().constants[k.replace("-", "_")].width <= 32)

#: By-value parameter types that take two 4-byte stack words in an x86 stdcall call.
_WIDE_TYPES = frozenset(
    {
        "PHYSICAL_ADDRESS",
        "LARGE_INTEGER",
        "ULARGE_INTEGER",
        "ULONG64",
        "ULONGLONG",
        "LONGLONG",
        "LONG64",
        "DWORD64",
        "UINT64",
        "INT64",
        "POOL_FLAGS",
        "__int64",
    }
)


class Arguments(Protocol):
    """The argument values at one call, as the interpreter of the image's architecture sees them."""

    def value(self, api: kb.AffectedApi, param: int | None = None) -> Val:
        """The prototype's parameter ``param`` (by default the deciding one) at the call."""
        ...

    def where(self, index: int) -> str:
        """How a reason names the argument at ``index`` (counting implicit ones): ``argument 2 (rdx)``."""
        ...


class Judgement(NamedTuple):
    verdict: CallVerdict
    reason: str
    values: tuple[int, ...] = ()
    decoded: tuple[str, ...] = ()
    replacement: int | None = None


def x86_stack_word(api: kb.AffectedApi, index: int | None = None) -> int:
    """The stack word (from the stack pointer at the call) of an argument (by default the deciding one) in
    an x86 call: 64-bit by-value parameters before it (``PHYSICAL_ADDRESS`` in ``MmMapIoSpaceEx``) take two
    words each."""
    index = (api.argument_index or 0) if index is None else index
    params = [p.strip() for p in api.prototype.strip().strip("()").split(",")] if api.prototype else []
    words = api.implicit_args
    for param in params[:index]:
        tokens = param.replace("*", " * ").split()
        wide = "*" not in tokens and any(t in _WIDE_TYPES for t in tokens)
        words += 2 if wide else 1
    return words + max(0, index - len(params))


def judge(api: kb.AffectedApi, args: Arguments) -> Judgement:
    """Decide one call to ``api`` from its arguments: a guard argument that makes it safe (``safe_when``),
    else the deciding argument's possible values through the decoder of its kind."""
    index = api.binary_argument_index
    if index is None or api.argument_kind not in DECODERS:
        return Judgement(BANNED, api.note or "no argument decides whether the memory is executable")
    if api.safe_when is not None:
        guard = api.safe_when
        condition = args.value(api, guard.argument_index)
        partial = condition.kind == "unknown" and condition.low_bits >= guard.bits
        known = condition.kind == "const" or partial
        low = (1 << guard.bits) - 1
        if known and condition.consts and {v & low for v in condition.consts} == {guard.value}:
            return Judgement(SAFE, f"{args.where(guard.argument_index + api.implicit_args)}: {guard.reason}")
    value = args.value(api)
    where = args.where(index)
    if value.kind == "global" and value.ops:
        settled = by_known_bits(api, value, where)
        if settled is not None:
            return settled
    if value.kind != "const":
        return Judgement(UNKNOWN, f"{where}: {value.reason or f'the argument is {value.kind}, not a number'}")
    return by_values(api, value.consts, where)


def width(api: kb.AffectedApi) -> int:
    return 32 if api.argument_kind in NARROW_KINDS else 64


def by_known_bits(api: kb.AffectedApi, value: Val, where: str) -> Judgement | None:
    """A value loaded from a global, then combined with constants: the bits those fix may decide alone
    (``global | 0x40000010`` has MdlMappingNoExecute set whatever the global holds)."""
    mask, bits = known_bits(value.ops, width(api))
    executable = decode.executable_by_known_bits(api.argument_kind, mask, bits)
    if executable is None:
        return None
    decoder = DECODERS[api.argument_kind]
    shown = f"bits 0x{mask:x} known as 0x{bits:x} ({decoder(bits).name})"
    reason = f"{where}: {value.reason}; whatever the global holds, {shown}"
    # the value shown is the known part: the bits the verdict rests on
    if executable:
        return Judgement(EXECUTABLE, f"{reason}: executable", (bits,), (decoder(bits).name,))
    return Judgement(SAFE, f"{reason}: not executable", (bits,), (decoder(bits).name,))


def by_values(api: kb.AffectedApi, consts: frozenset[int], where: str) -> Judgement:
    """Decide from the argument's possible constant values."""
    mask = (1 << width(api)) - 1
    values = tuple(sorted({v & mask for v in consts}))
    decoder = DECODERS[api.argument_kind]
    decoded = [decoder(v) for v in values]
    names = tuple(d.name for d in decoded)
    shown = ", ".join(f"0x{v:x} ({n})" for v, n in zip(values, names, strict=True))
    if any(d.executable for d in decoded):
        some = "" if all(d.executable for d in decoded) else " on some paths"
        replacement = next(
            (
                decode.safe_replacement(api.argument_kind, v)
                for v, d in zip(values, decoded, strict=True)
                if d.executable
            ),
            None,
        )
        return Judgement(EXECUTABLE, f"{where} is {shown}: executable{some}", values, names, replacement)
    if all(d.executable is False for d in decoded):
        return Judgement(SAFE, f"{where} is {shown}: not executable", values, names)
    return Judgement(UNKNOWN, f"{where} is {shown}: whether that is executable is not known", values, names)


def call_site(
    address: int, instruction: str, how: str, dll: str, api: kb.AffectedApi, verdict: Judgement
) -> CallSite:
    """The call site at ``address`` with its verdict."""
    return CallSite(
        address,
        api.name,
        dll,
        api.category,
        how,
        instruction,
        verdict.verdict,
        api.argument_index,
        api.argument_kind,
        verdict.values,
        verdict.decoded,
        verdict.reason,
        verdict.replacement,
    )
