"""The block-parser protocol: how a format module reads its block of lines from a shared stream.

A log is a sequence of blocks (a verifier banner, a fatal-error line, an ``!analyze -v`` report, a ``k``
listing, an ``lm`` table ...) buried in unrelated debugger noise. The dispatcher (``parsers.stream``) looks
for each registered parser's ``trigger`` with a cheap scan; when one matches a line, that parser's ``parse``
gets the line plus a cursor and pulls as many following lines as belong to its block, pushing back the first
line that does not. Adding a format is one module with a ``BlockParser`` plus one line in
``parsers.registry``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

import msgspec

from parsers.records import Record


class Line(msgspec.Struct, frozen=True):
    """One input line: its 1-based number and its text without the line terminator."""

    number: int
    text: str


class LineCursor:
    """Sequential access to lines with one-line look-ahead and push-back.

    Parsers use only ``next``, ``peek`` and ``push_back``; the dispatcher may subclass it to skip quickly
    over lines that cannot start a block.
    """

    def __init__(self, lines: Iterable[Line], path: str = "<input>") -> None:
        self.path = path
        self._lines: Iterator[Line] = iter(lines)
        self._pushed: list[Line] = []

    def next(self) -> Line | None:
        """The next line, or ``None`` at the end of input."""
        if self._pushed:
            return self._pushed.pop()
        return next(self._lines, None)

    def peek(self) -> Line | None:
        """The next line without consuming it."""
        line = self.next()
        if line is not None:
            self._pushed.append(line)
        return line

    def push_back(self, line: Line) -> None:
        """Return a line that does not belong to the current block, so that the dispatcher sees it again."""
        self._pushed.append(line)

    @classmethod
    def from_text(cls, text: str, path: str = "<input>", first_line: int = 1) -> LineCursor:
        """A cursor over a string, for pasted text and tests."""
        return cls((Line(first_line + i, t) for i, t in enumerate(text.splitlines())), path)


class BlockEnd(msgspec.Struct, frozen=True):
    """How :func:`read_block` ended: the block's last line and whether the line limit cut it."""

    last_line: int
    cut: bool


def read_block(
    cursor: LineCursor,
    first: Line,
    take: Callable[[Line, bool], bool],
    *,
    limit: int,
    on_blank: Callable[[], None] | None = None,
) -> BlockEnd:
    """Feed the lines after ``first`` to ``take(line, after_blank)`` until it says a line does not belong
    (that line is pushed back), the input ends, or ``limit`` lines were read.

    Blank lines are held back: ``on_blank`` is told of each, ``take`` learns whether one came just before
    (a blank line ends some listings), and blanks after the block's last line go back to the cursor, so
    that they belong to whatever follows.
    """
    last = first.number
    blanks: list[Line] = []
    cut = True
    for _ in range(limit):
        line = cursor.next()
        if line is None:
            cut = False
            break
        if not line.text.strip():
            blanks.append(line)
            if on_blank is not None:
                on_blank()
            continue
        if not take(line, bool(blanks)):
            cursor.push_back(line)
            cut = False
            break
        blanks = []
        last = line.number
    for blank in reversed(blanks):
        cursor.push_back(blank)
    return BlockEnd(last, cut)


class BlockParser(Protocol):
    """One input format. ``trigger`` is a regular expression (``re`` syntax) that matches somewhere in the
    first line of a block; it should be as specific as the format allows, since the dispatcher only looks
    at lines where some trigger matches."""

    name: str
    trigger: str

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        """Read one block starting at ``first`` and yield its records (``Diagnostic`` for what could not be
        read). Must never raise on malformed input, and must push back the first line it does not consume."""
        ...
