"""The prefilter's line-start test done with string operations, for what is too short to pay for a compile.

:class:`parsers.prefilter.Prefilter` finds lines that begin, after junk, with one of ~130 anchors by one
compiled search per chunk type (``\\n`` + possessive junk + an alternation of the anchors, ~2,900
characters). ``re`` compiles it in 5-7 ms, as str and again as bytes: for one pasted ``!analyze -v`` output
both were needed (the bytes search for the chunk, the str one for a line a parser gave back), ~12 ms of a
command whose interpreter and click take ~90 ms. Here the same condition is tested without a pattern:

- a line matches when, after its longest run of junk characters (``lstrip``, as the possessive junk
  class stops), it starts with an anchor looked up by its first character; an anchor right at the line
  start (a line of stars) must begin the line;
- a case-insensitive anchor has its first character in either case, as the search's groups by first
  character have it, and the rest compared ignoring case: ASCII text by ``lower()``, anything else by a
  small pattern of that anchor alone, so that str case folding (``K``, ``ſ``) is exactly ``re``'s;
- in a bytes chunk, the lines are found from the anchors' texts (``find``, on an ASCII-lowered copy for the
  case-insensitive ones, as bytes patterns fold ASCII only) and each place is checked to follow only junk.

Both give the lines the compiled searches give (property tests compare them); the prefilter uses them for
single lines and short chunks, and compiles its searches only for long chunks, where they are faster.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from parsers.prefilter import Anchor


@functools.cache
def _folded(text: str) -> re.Pattern[str]:
    """``text`` ignoring case as ``re`` folds str (for a non-ASCII part of a line; rare)."""
    return re.compile(re.escape(text), re.IGNORECASE)


def _same_folded(part: str, text: str) -> bool:
    if len(part) != len(text):
        return False
    if part.isascii() and text.isascii():
        return part.lower() == text.lower()
    return _folded(text).fullmatch(part) is not None


class LineStarts:
    """The lines that begin with a line-start anchor (after junk, or right at the start)."""

    def __init__(self, anchors: Sequence[Anchor], junk_text: str, junk_bytes: bytes) -> None:
        """``junk_text`` and ``junk_bytes`` hold exactly the characters and bytes of the prefilter's junk
        classes (``JUNK_STR``, ``JUNK_BYTES``)."""
        self._junk_text = junk_text
        self._junk_bytes = junk_bytes
        #: text right at the line start, and whether it ignores case
        self._direct = [(a.text, a.ignore_case) for a in anchors if not a.after_junk]
        #: first character after the junk -> the rest of each anchor beginning with it, ignoring case or not
        self._heads: dict[str, list[tuple[str, bool]]] = {}
        #: bytes searched for in a chunk: (text, on the lowered copy, after junk)
        needles: set[tuple[bytes, bool, bool]] = set()
        for anchor in anchors:
            text, folded = anchor.text, anchor.ignore_case
            if not anchor.after_junk:
                raw = text.encode("utf-8", "replace")
                needles.add((raw.lower() if folded else raw, folded, False))
                continue
            for head in {text[0].lower(), text[0].upper()} if folded else {text[0]}:
                self._heads.setdefault(head, []).append((text[1:], folded))
                raw = (head + text[1:]).encode("utf-8", "replace")
                needles.add((raw.lower() if folded else raw, folded, True))
        self._needles = sorted(needles)

    def matches(self, line: str) -> bool:
        """Whether ``line`` (one decoded line, without its newline) begins with an anchor."""
        for text, folded in self._direct:
            if _same_folded(line[: len(text)], text) if folded else line.startswith(text):
                return True
        at = len(line) - len(line.lstrip(self._junk_text))
        for rest, folded in self._heads.get(line[at : at + 1], ()):
            if (
                _same_folded(line[at + 1 : at + 1 + len(rest)], rest)
                if folded
                else line.startswith(rest, at + 1)
            ):
                return True
        return False

    def in_text(self, data: str) -> list[int]:
        """The starts of the lines of ``data`` (a chunk with its ``\\n`` sentinel) that begin with anchors."""
        found = []
        start = 1
        for line in data[1:].split("\n"):
            if self.matches(line):
                found.append(start)
            start += len(line) + 1
        return found

    def in_bytes(self, data: bytes) -> list[int]:
        """The same for a bytes chunk, from the places of the anchors' texts."""
        found: set[int] = set()
        lowered = b""
        junk = self._junk_bytes
        for needle, folded, after_junk in self._needles:
            if folded and not lowered:
                lowered = data.lower()
            haystack = lowered if folded else data
            at = haystack.find(needle)
            while at >= 0:
                start = data.rfind(b"\n", 0, at) + 1
                # after junk: what precedes it is junk and its first byte is not (the junk stops there)
                if start == at if not after_junk else len(data[start : at + 1].lstrip(junk)) == 1:
                    found.add(start)
                at = haystack.find(needle, at + 1)
        return sorted(found)
