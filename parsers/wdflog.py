"""KMDF's in-flight recorder as ``!wdfkd.wdflogdump <driver>`` prints it.

Each entry is ``57: FxIoQueue::Vf_VerifyForwardRequest - Cannot forward a request to a different
WDFDEVICE 0x00007CF5A1B7A308``: a number, the framework's class and method, the message. ``Vf_`` methods
are KMDF's own verifier reporting a driver's misuse of the framework. The driver is the command's argument,
on the prompt or in the prose just above the entries (the look-behind). Triggers name the framework
classes, so that they stay in the shared line-start search.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from parsers.base import Line, LineCursor, read_block
from parsers.records import Record, Span, WdfLogRecord

MAX_ENTRIES = 4096
_CLASSES = (
    "FxIoQueue",
    "FxRequest",
    "FxDevice",
    "FxPkgPnp",
    "FxPkgIo",
    "FxPkgFdo",
    "FxPkgPdo",
    "FxDriver",
    "FxIoTarget",
    "FxInterrupt",
    "FxDmaEnabler",
    "FxUsbDevice",
    "FxUsbPipe",
    "FxObject",
    "FxWorkItem",
    "FxTimer",
    "FxDpc",
    "FxPowerIdleMachine",
    "FxSelfManagedIoMachine",
    "FxWmiIrpHandler",
    "FxVerifier",
)
_ENTRY = re.compile(r"^[\s>*]*(?P<n>\d+):\s+(?P<where>Fx\w+::[\w~]+)\s+-\s+(?P<message>.*?)\s*$")
_COMMAND = re.compile(r"!(?:wdfkd\.)?wdflogdump\s+(?P<driver>[\w.$-]+)", re.IGNORECASE)


class WdfLogParser:
    name = "wdflog"
    trigger = r"^[\s>*0-9:]*(?:" + "|".join(_CLASSES) + r")::|^[\s>*0-9:]*kd> !(?:wdfkd\.)?wdflogdump "

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        command = _COMMAND.search(first.text)
        if command is not None:  # the prompt: the entries follow the recorder's own header lines
            driver: str | None = command["driver"]
            first = self._first_entry(first, cursor) or first
        else:
            driver = self._driver(cursor)
        entry = _ENTRY.match(first.text)
        if entry is None:
            return
        entries = [f"{entry['where']} - {entry['message']}"]

        def take(line: Line, _after_blank: bool) -> bool:
            found = _ENTRY.match(line.text)
            if found is None or len(entries) >= MAX_ENTRIES:
                return False
            entries.append(f"{found['where']} - {found['message']}")
            return True

        end = read_block(cursor, first, take, limit=MAX_ENTRIES)
        yield WdfLogRecord(Span(cursor.path, first.number, end.last_line), driver, tuple(entries))

    @staticmethod
    def _first_entry(prompt: Line, cursor: LineCursor) -> Line | None:
        """Skip the recorder's header (search path, TMF file, "There are N log entries", start marker)."""
        skipped: list[Line] = []
        for _ in range(16):
            line = cursor.next()
            if line is None:
                break
            if _ENTRY.match(line.text):
                return line
            skipped.append(line)
        for line in reversed(skipped):
            cursor.push_back(line)
        return None

    @staticmethod
    def _driver(cursor: LineCursor) -> str | None:
        lookbehind = getattr(cursor, "lookbehind", None)
        for line in reversed(lookbehind(12) if lookbehind is not None else []):
            found = _COMMAND.search(line.text)
            if found is not None:
                return found["driver"].strip("`'\"")
        return None


PARSER = WdfLogParser()
