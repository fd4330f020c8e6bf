"""Driver images the prose right before a crash's output names (a helper of the crash parsers).

People introduce a paste with the driver they suspect: "After running Driver Verifier the IntelHaxm.sys is
reported as the driver who crashes the system. Here is the stack:", "BDOS caused by cng.sys". The stack and
``!analyze`` parsers look at the few lines before their block (the dispatcher's look-behind) and report the
one image named there (first, so that records stay in input order; the correlator hands it to the crash
that opens next), so that a crash whose output names no driver can still say who the user suspects.
"""

from __future__ import annotations

import re

from parsers.base import Line, LineCursor
from parsers.records import MentionRecord, Span

LOOK_BEHIND = 6
_IMAGE = re.compile(r"(?<![\w\\/.-])(?P<image>[A-Za-z][\w-]{1,63}\.sys)\b", re.IGNORECASE)
_QUOTE = re.compile(r"^(?:[ \t]*>)+[ \t]?")


def mention_before(cursor: LineCursor, before: int | None = None) -> MentionRecord | None:
    """The single driver image named in the lines just before the block (before line ``before`` when the
    block's real start is above its trigger line), or ``None`` when none or several different ones are."""
    lookbehind = getattr(cursor, "lookbehind", None)
    if lookbehind is None:
        return None
    lines = [line for line in lookbehind(LOOK_BEHIND + 12) if before is None or line.number < before]
    found: dict[str, Line] = {}
    for line in lines[-LOOK_BEHIND:]:
        for match in _IMAGE.finditer(_QUOTE.sub("", line.text)):
            found.setdefault(match["image"].lower(), line)
    if len(found) != 1:
        return None
    (image, line), = found.items()
    name = _IMAGE.search(line.text)
    assert name is not None
    return MentionRecord(Span(cursor.path, line.number, line.number), name["image"], line.text.strip())
