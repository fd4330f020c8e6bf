"""The System log's record of a crash: event 1001 (BugCheck / WER-SystemErrorReporting).

``The computer has rebooted from a bugcheck.  The bugcheck was: 0x000000be (0xfffff8050e2bd004,
0x89000008a8820121, 0xffff8006f7b17450, 0x000000000000000b). A dump was saved in: C:\\Windows\\MEMORY.DMP.``

Event Viewer wraps it where it likes, forum posts quote it in backticks or ``>`` quotes and split it over
lines (even inside a number); the parser joins up to :data:`MAX_LINES` lines until the parameter list
closes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from parsers.base import Line, LineCursor
from parsers.deferred import deferred_compile
from parsers.records import BugCheckRecord, Record, Span

MAX_LINES = 8
_QUOTE = deferred_compile(r"^(?:[ \t]*>)+[ \t]?|^[\s*`\"'-]+")
_HEX = r"(?:0x)?[0-9a-fA-F`]+"
_EVENT = deferred_compile(
    rf"bugcheck was\s*:?\s*(?P<code>{_HEX})\s*\(\s*(?P<args>{_HEX}(?:\s*,\s*{_HEX}){{0,3}})\s*\)",
    re.IGNORECASE,
)
_CLOSED = deferred_compile(r"bugcheck was.*\)", re.IGNORECASE | re.DOTALL)


def _hex(text: str) -> int:
    return int(text.replace("`", "").removeprefix("0x").removeprefix("0X"), 16)


def _width_bits(texts: list[str]) -> int | None:
    digits = {len(t.replace("`", "").lower().removeprefix("0x")) for t in texts}
    return 32 if digits == {8} else 64 if digits == {16} else None


class RebootedParser:
    name = "rebooted"
    #: one floating anchor (the message is often quoted mid-sentence), one line-start anchor for a message
    #: wrapped before "bugcheck was"
    trigger = r"^[\s>*]*The computer has rebooted from a|[Bb]ugcheck was"

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        parts = [_QUOTE.sub("", first.text).strip()]
        taken: list[Line] = []
        while not _CLOSED.search(" ".join(parts)) and len(taken) < MAX_LINES:
            line = cursor.next()
            if line is None:
                break
            taken.append(line)
            parts.append(_QUOTE.sub("", line.text).strip())
        last = taken[-1].number if taken else first.number
        record = bugcheck_in(parts, Span(cursor.path, first.number, last))
        if record is None:
            for line in reversed(taken):
                cursor.push_back(line)
            return
        yield record


def bugcheck_in(parts: list[str], span: Span) -> BugCheckRecord | None:
    """The bug check an event 1001 message (its lines in ``parts``) names, or None. Also used by the
    events parser: an exported event 1001 is that bug check."""
    match = _EVENT.search(" ".join(parts)) or _EVENT.search("".join(parts))  # "" for a wrapped number
    if match is None:
        return None
    texts = re.split(r"\s*,\s*", match["args"])
    return BugCheckRecord(
        span,
        "system-event-1001",
        _hex(match["code"]),
        tuple(_hex(t) for t in texts),
        pointer_bits=_width_bits(texts),
    )


PARSER = RebootedParser()
