"""The faulting instruction of any bug check, found where ``!analyze`` finds it.

Best first: ``FAULTING_IP`` (the debugger's own answer), the bug check parameter that holds the address
(``triage.toml``: 0xA Arg4, 0x1E/0x7E Arg2, 0x3B Arg2, 0x50 Arg3, ...), the ``rip``/``eip``/``pc`` of the
``.cxr`` context or ``.trap`` frame, the exception record's ``ExceptionAddress``. Each answer says where it
came from, so that the report can show it as evidence.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from hvci.knowledge import triage
from hvci.logs.correlate import CrashGroup
from parsers.faultsite import site_in_text
from parsers.records import BugCheckRecord, Span

#: ``!analyze`` fields that hold each kind of fault site.
_FIELDS = {
    "FAULTING_IP": ("FAULTING_IP",),
    "registers": ("CONTEXT", "TRAP_FRAME", "LAST_CONTROL_TRANSFER_CONTEXT"),
    "ExceptionAddress": ("EXCEPTION_RECORD",),
}
_SAYS = {
    "FAULTING_IP": "FAULTING_IP",
    "registers": "the instruction pointer of the printed context/trap frame",
    "ExceptionAddress": "the exception record's ExceptionAddress",
}


class FaultAddress(msgspec.Struct, frozen=True):
    address: int | None  # None: only the symbol was printed ("With faulting ip: ScpVBus+b174")
    reason: str
    span: Span | None
    symbol: str | None = None  # as printed beside it (``UniFairy+0xb141d``, ``IntelHaxm!ept_free+1b``)


def _sites(group: CrashGroup, source: str) -> Iterator[FaultAddress]:
    """The fault sites of one kind: standalone records, then the ``!analyze`` fields."""
    for record in group.fault_sites:
        if record.source == source:
            yield FaultAddress(record.address, _SAYS[source], record.span, record.symbol)
    analyze = group.analyze
    if analyze is None:
        return
    for key in _FIELDS[source]:
        value = analyze.field(key)
        found = site_in_text(source, value) if value else None
        if found is not None:
            yield FaultAddress(found[0], f"{_SAYS[source]} ({key})", analyze.span, found[1])


def _from_argument(bc: BugCheckRecord | None) -> FaultAddress | None:
    if bc is None:
        return None
    entry = triage.load().fault_argument(bc.code, tuple(bc.args))
    if entry is None or entry.argument - 1 in bc.missing:
        return None
    address = bc.args[entry.argument - 1]
    if address == 0:
        return None
    reason = f"Arg{entry.argument} of bug check {bc.code:#x}: {entry.what}"
    return FaultAddress(address, reason, bc.span)


def _with_address(source: str, group: CrashGroup) -> FaultAddress | None:
    return next((site for site in _sites(group, source) if site.address is not None), None)


def fault_address(group: CrashGroup, bc: BugCheckRecord | None) -> FaultAddress | None:
    """The faulting instruction's address, best source first, or ``None`` when the input shows none."""
    first = _with_address("FAULTING_IP", group)
    if first is not None:
        return first
    argument = _from_argument(bc)
    if argument is not None:
        return argument
    return _with_address("registers", group) or _with_address("ExceptionAddress", group)


def fault_symbol(group: CrashGroup) -> str | None:
    """The symbol printed beside any fault site (``adgnetworktdidrv+5715``), for naming the driver when the
    address itself cannot be placed in a module."""
    for source in ("FAULTING_IP", "registers", "ExceptionAddress"):
        for site in _sites(group, source):
            if site.symbol:
                return site.symbol
    return None
