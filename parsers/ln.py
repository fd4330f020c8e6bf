"""``ln`` (list nearest symbols): how the debugger itself resolved an address.

::

    kd> ln 0x9a3bf6ac
    d:\\coding\\wdmdrivers\\mydriver\\handleioctl.c(50)+0x15
    (9a3bf660)   MyDriver!DeviceControlDispatch+0x4c   |  (9a3bf6d0)   MyDriver!DeviceControlDispatch
    Exact matches:
        MyDriver!DeviceControlDispatch (...)

The block starts at the ``kd> ln`` prompt: a bare ``(addr) sym | (addr) sym`` line has no literal text a
fast scan could look for, and the collector script always records the prompt.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from parsers.base import Line, LineCursor
from parsers.deferred import deferred_compile
from parsers.records import Record, Span, SymbolLineRecord

_NEAREST = deferred_compile(
    r"^[\s>]*\((?P<start>[0-9a-fA-F`]+)\)\s+(?P<symbol>\S.*?)\s+\|\s+\((?P<next>[0-9a-fA-F`]+)\)\s+(?P<nextsym>.*?)\s*$"
)
_SYMBOL = deferred_compile(r"^(?P<module>[^!\s]+)!(?P<function>.+?)(?:\+0x(?P<offset>[0-9a-fA-F`]+))?$")
_MODULE_OFFSET = deferred_compile(r"^(?P<module>[^+\s!]+)(?:\+0x(?P<offset>[0-9a-fA-F`]+))?$")
_SOURCE = deferred_compile(r"^[\s>]*(?P<file>\S.*?)\((?P<line>\d+)\)(?:\+0x[0-9a-fA-F]+)?\s*$")
_PROMPT = deferred_compile(r"kd> ")
_SKIPPABLE = deferred_compile(r"^\s*(?:Browse module|Set bu breakpoint|\*\*\* |WARNING:|$)")
_EXACT = deferred_compile(r"^\s*Exact matches:")
_MAX_LINES = 12


def _hex(text: str | None) -> int | None:
    return int(text.replace("`", ""), 16) if text else None


class LnParser:
    name = "ln"
    trigger = r"^[\s>*]*[0-9: ]*kd> ln\b"

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        source_file: str | None = None
        source_line: int | None = None
        for _ in range(_MAX_LINES):
            line = cursor.next()
            if line is None:
                return
            nearest = _NEAREST.match(line.text)
            if nearest is not None:
                last = self._exact_matches(cursor, line.number)
                yield self._record(first, last, nearest, source_file, source_line, cursor.path)
                return
            source = _SOURCE.match(line.text)
            if source is not None and not _PROMPT.search(line.text):
                source_file, source_line = source["file"], int(source["line"])
                continue
            if _SKIPPABLE.match(line.text) and not _PROMPT.search(line.text):
                continue
            cursor.push_back(line)
            return

    @staticmethod
    def _exact_matches(cursor: LineCursor, last: int) -> int:
        """Consume the ``Exact matches:`` list that current WinDbg prints after the answer."""
        following = cursor.peek()
        if following is None or not _EXACT.match(following.text):
            return last
        last = following.number
        cursor.next()
        while (line := cursor.next()) is not None:
            if not line.text.startswith((" ", "\t")) or not line.text.strip():
                cursor.push_back(line)
                break
            last = line.number
        return last

    @staticmethod
    def _record(
        first: Line, last: int, nearest: re.Match[str], source_file: str | None, source_line: int | None,
        path: str,
    ) -> SymbolLineRecord:
        start = _hex(nearest["start"])
        symbol = nearest["symbol"]
        module = function = None
        offset: int | None = None
        match = _SYMBOL.match(symbol)
        if match is not None:
            module, function, offset = match["module"], match["function"], _hex(match["offset"])
        else:
            bare = _MODULE_OFFSET.match(symbol)
            if bare is not None:
                module, offset = bare["module"], _hex(bare["offset"])
        address = start + (offset or 0) if start is not None else None
        return SymbolLineRecord(Span(path, first.number, last), address, module, function, offset,
                                source_file, source_line)


PARSER = LnParser()
