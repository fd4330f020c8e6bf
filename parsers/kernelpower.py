"""Kernel-Power event 41 (the system rebooted without cleanly shutting down), which records the bug check.

Event Viewer's details view prints ``BugcheckCode 80`` then ``BugcheckParameter1 0xffffd00045e7c000`` ...
(one per line, tab or space separated); the XML view ``<Data Name="BugcheckCode">80</Data>``; PowerShell's
``Format-List`` ``BugcheckCode : 80``. ``BugcheckCode`` is DECIMAL (80 is 0x50); the parameters are hex
with ``0x``. A code of 0 means the power was lost without a bug check: no record.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from parsers.base import Line, LineCursor
from parsers.deferred import deferred_compile
from parsers.records import BugCheckRecord, Record, Span

MAX_LINES = 16
_FIELD = deferred_compile(
    r"Bugcheck(?P<what>Code|Parameter(?P<n>[1-4]))[\"']?\s*(?:>|:|=|\s)\s*(?P<value>0x[0-9a-fA-F]+|\d+)",
    re.IGNORECASE,
)


def bugcheck_from_data(event_id: int, data: dict[str, str], span: Span) -> BugCheckRecord | None:
    """The bug check of a Kernel-Power 41 event read from its XML ``<Data>`` (by ``parsers.events``)."""
    text = " ".join(f'{key}">{value}' for key, value in data.items() if key.startswith("Bugcheck"))
    if event_id != 41 or not text:
        return None
    return _record(text, span)


def _record(text: str, span: Span) -> BugCheckRecord | None:
    code: int | None = None
    args: dict[int, int] = {}
    for field in _FIELD.finditer(text):
        value = field["value"]
        number = int(value, 16) if value.lower().startswith("0x") else int(value)
        if field["what"].lower() == "code":
            code = number
        else:
            args[int(field["n"])] = number
    if not code:
        return None
    count = max(args, default=0)
    return BugCheckRecord(
        span,
        "kernel-power-41",
        code,
        tuple(args.get(n, 0) for n in range(1, count + 1)),
        missing=tuple(n - 1 for n in range(1, count + 1) if n not in args),
    )


class KernelPowerParser:
    name = "kernelpower"
    trigger = r"^[\s>*]*(?:BugcheckCode|<Data Name=.BugcheckCode)"

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        """The code line and the parameter lines after it (one event; a second code line is the next)."""
        texts = [first.text]
        last = first.number
        for _ in range(MAX_LINES):
            line = cursor.next()
            if line is None:
                break
            found = [f["what"].lower() for f in _FIELD.finditer(line.text)]
            if not found or "code" in found:
                cursor.push_back(line)
                break
            texts.append(line.text)
            last = line.number
        record = _record(" ".join(texts), Span(cursor.path, first.number, last))
        if record is not None:
            yield record


PARSER = KernelPowerParser()
