"""Timestamp prefixes that capture tools put in front of every line of a debugger log.

Lab harnesses, serial-console loggers (Tera Term's timestamp option, ``ts``) and CI runners prefix
each line with the time it arrived: ``[2026-11-23 02:10:59.222] *** Fatal System Error ...``.
Every format's trigger is anchored at the start of a line, so such a prefix hides the whole log. The
prefix is recognised once, from the first lines of the input, and then removed from every line before the
parsers see it (line numbers do not change, so spans still point at the file as it is).
"""

from __future__ import annotations

import re

import msgspec

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_FRACTION = r"(?:[.,][0-9]{1,9})?"
_ZONE = r"(?: ?(?:Z|[+-][0-9]{2}:?[0-9]{2}))?"
_DATE_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{1,2}:[0-9]{2}:[0-9]{2}" + _FRACTION + _ZONE

#: Known prefixes, most specific first. Each matches at the start of a line and includes the separator.
PREFIXES: tuple[tuple[str, str], ...] = (
    ("[date time]", r"\[" + _DATE_TIME + r"\] ?"),
    ("date time", _DATE_TIME + r"(?: \||:)? "),
    (
        "[weekday month day time year]",
        rf"\[{_DAY} {_MONTH} [ 0-9][0-9] [0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}" + _FRACTION + r" [0-9]{4}\] ?",
    ),
    ("[time]", r"\[[0-9]{2}:[0-9]{2}:[0-9]{2}" + _FRACTION + r"\] ?"),
)

#: Lines looked at, and the share of non-empty ones that must carry the same prefix.
SAMPLE_LINES = 200
MIN_SHARE = 0.6
MIN_LINES = 3


class LinePrefix(msgspec.Struct, frozen=True):
    """A recognised prefix: its name and compiled patterns that remove it after every newline."""

    name: str
    example: str
    after_newline_str: re.Pattern[str]
    after_newline_bytes: re.Pattern[bytes]

    def strip(self, data: str | bytes) -> str | bytes:
        """``data`` (a chunk that starts with a newline) without the prefix of any of its lines."""
        if isinstance(data, str):
            return self.after_newline_str.sub("\n", data)
        return self.after_newline_bytes.sub(b"\n", data)


def _first_characters(pattern: str) -> str | None:
    """The characters a line must begin with for ``pattern`` to match it (``None``: not known here). Every
    prefix begins with a bracket or with digits; a line that cannot match spares the compile (~0.25 ms a
    pattern, for an input without a prefix)."""
    if pattern.startswith(r"\["):
        return "["
    if pattern.startswith("[0-9]"):
        return "0123456789"
    return None


def detect(head: str) -> LinePrefix | None:
    """The prefix most of the first lines of ``head`` share, or ``None`` when there is none."""
    lines = [line for line in head.split("\n", SAMPLE_LINES)[:SAMPLE_LINES] if line.strip()]
    if len(lines) < MIN_LINES:
        return None
    firsts = [line.lstrip("\ufeff")[:1] for line in lines]
    needed = max(MIN_LINES, MIN_SHARE * len(lines))  # lines that must match
    for name, pattern in PREFIXES:
        starts = _first_characters(pattern)
        if starts is not None and sum(first in starts for first in firsts) < needed:
            continue  # too few lines can match: a log without timestamps compiles none of the patterns
        compiled = re.compile(pattern)
        matches = [match.group(0) for line in lines if (match := compiled.match(line.lstrip("\ufeff")))]
        if len(matches) >= MIN_LINES and len(matches) >= MIN_SHARE * len(lines):
            return LinePrefix(
                name,
                matches[0],
                re.compile(r"\n\ufeff?" + pattern),
                re.compile(rb"\n(?:\xef\xbb\xbf)?" + pattern.encode("ascii")),
            )
    return None
