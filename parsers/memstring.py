"""``dS`` / ``du`` / ``da`` output: strings the debugger read from memory.

For the image-compliance subcodes of 0xC4 (0x2003-0x2006) ``!analyze`` prints only pointers: Arg2 is the
image name (a UNICODE_STRING) and Arg4 the section name (an ANSI string). In a crash dump without the
verifier banner, the names exist only where the user dereferenced them:

    0: kd> dS ffffe50a3d9c2a58
    ffffe50a`3d9c2b20  "tvdisp.sys"
    0: kd> da ffffb88c1e2f76a0
    ffffb88c`1e2f76a0  ".text"

Long strings continue on further ``address  "text"`` lines, which are joined.
"""

from __future__ import annotations

from collections.abc import Iterator

from parsers.base import Line, LineCursor
from parsers.deferred import deferred_compile
from parsers.records import Diagnostic, MemoryStringRecord, Record, Span

_COMMAND = deferred_compile(
    r"^[\s0-9:]*kd> (?P<command>dS|du|da) +(?:0x)?(?P<address>[0-9a-fA-F`]{1,17})\s*$"
)
_STRING = deferred_compile(r'^\s*(?P<address>[0-9a-fA-F`]{8,17})\s+"(?P<text>.*)"?\s*$')
#: A string printed on more lines than this is cut.
MAX_LINES = 64
MAX_LINE = 4096


class MemoryStringParser:
    """Reads one ``dS``/``du``/``da`` command and the string it printed."""

    name = "memstring"
    trigger = r"^[\s0-9:]*kd> (?:dS|du|da) +(?:0x)?[0-9a-fA-F`]+\s*$"

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        command = _COMMAND.match(first.text)
        if command is None:
            return
        parts: list[str] = []
        last = first.number
        for _ in range(MAX_LINES):
            line = cursor.next()
            if line is None:
                break
            printed = _STRING.match(line.text) if len(line.text) <= MAX_LINE else None
            if printed is None:
                cursor.push_back(line)
                break
            parts.append(printed.group("text").removesuffix('"'))
            last = line.number
        span = Span(cursor.path, first.number, last)
        if not parts:
            message = f"{command.group('command')}: no string printed (unreadable memory?)"
            yield Diagnostic(span, message, "info")
            return
        address = int(command.group("address").replace("`", ""), 16)
        yield MemoryStringRecord(span, command.group("command"), address, "".join(parts))


PARSER = MemoryStringParser()
