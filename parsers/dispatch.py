"""From a candidate line to its parser: the dispatcher of :mod:`parsers.stream`.

The prefilter (:mod:`parsers.prefilter`) finds the lines that may start a block; for each, the first
parser in registry order whose trigger matches takes it. A log can be dense with candidates (a paste of
banners, a capture of register dumps), so a candidate is not tried against every trigger: the screen
looks up, by plain string tests, which parsers' anchors the line holds, and only their triggers run.
"""

from __future__ import annotations

import re

from parsers.base import BlockParser
from parsers.deferred import deferred_compile
from parsers.prefilter import JUNK_CHARS, Prefilter, known_anchors


class Dispatcher:
    """Which parser a line is for: the prefilter finds candidate lines in a chunk, the screen and the
    triggers decide each candidate."""

    def __init__(self, parsers: tuple[BlockParser, ...]) -> None:
        self.parsers = parsers
        self._screen: _Screen | None = None
        self.prefilter = Prefilter(p.trigger for p in parsers)

    @property
    def screen(self) -> _Screen:
        """The parsers' triggers and anchors, compiled at the first candidate line: an input without one
        (most short inputs) never needs them."""
        if self._screen is None:
            self._screen = _Screen(self.parsers)
        return self._screen

    def parser_for(self, text: str) -> BlockParser | None:
        """The first parser, in registry order, whose trigger matches the line; only the parsers whose
        anchors the line holds are tried (a dense log has a candidate on every line)."""
        screen = self.screen
        for index in screen.candidates(text):
            if screen.triggers[index].search(text):
                return self.parsers[index]
        return None


#: The blocks of Unicode that hold its white space (a test checks that every white-space character is in one):
#: :func:`_lead` looks at their ~300 characters instead of all 12,289 up to U+3000 (~1.3 ms a process).
_SPACE_BLOCKS = ((0x00, 0x100), (0x1680, 0x1681), (0x2000, 0x2030), (0x205F, 0x2060), (0x3000, 0x3001))


def _lead() -> str:
    """What may stand before a line-start anchor: the prefilter's junk and any white space (worked out by
    the first screen: an input without a candidate never needs it)."""
    spaces = (chr(c) for first, end in _SPACE_BLOCKS for c in range(first, end))
    return "".join(JUNK_CHARS) + "".join(c for c in spaces if c.isspace())


_Table = dict[str, list[tuple[str, int]]]  # first character -> (anchor text, parser index)


class _Screen:
    """Which parsers a line can be for, from the literal texts every match of a trigger contains (its
    prefilter anchors): line-start anchors are looked up by the first character after the line's junk,
    anchors at the very start by the line's first character, floating ones by substring. A parser whose
    trigger has no anchors is always a candidate."""

    def __init__(self, parsers: tuple[BlockParser, ...]) -> None:
        # compiled at their first line: a log calls for a few parsers, and 21 triggers cost ~4 ms to compile
        self.triggers = tuple(deferred_compile(p.trigger, re.MULTILINE) for p in parsers)
        self._lead = _lead()
        self._always: list[int] = []
        # [case-sensitive, lower-cased] tables for anchors after junk, at the very start, and floating
        self._heads: tuple[_Table, _Table] = ({}, {})
        self._starts: tuple[_Table, _Table] = ({}, {})
        self._floating: tuple[list[tuple[str, int]], list[tuple[str, int]]] = ([], [])
        for index, parser in enumerate(parsers):
            anchors = known_anchors(parser.trigger)
            if not anchors:
                self._always.append(index)
                continue
            for anchor in anchors:
                folded = int(anchor.ignore_case)
                text = anchor.text.lower() if folded else anchor.text
                if not anchor.line_start:
                    self._floating[folded].append((text, index))
                else:
                    table = (self._heads if anchor.after_junk else self._starts)[folded]
                    table.setdefault(text[0], []).append((text, index))
        self._any_folded = bool(self._heads[1] or self._starts[1] or self._floating[1])

    def candidates(self, text: str) -> list[int]:
        """Indexes of the parsers whose trigger may match ``text``, in registry order."""
        found = set(self._always)
        head = text.lstrip(self._lead)
        self._collect(found, text, head, 0)
        if self._any_folded:
            self._collect(found, text.lower(), head.lower(), 1)
        return sorted(found)

    def _collect(self, found: set[int], text: str, head: str, folded: int) -> None:
        """Add the parsers whose anchors ``text`` holds (plain loops: a generator for each of the three
        lookups cost more than the tests, on every candidate line, issue 16)."""
        if head:
            for anchor, index in self._heads[folded].get(head[0], ()):
                if head.startswith(anchor):
                    found.add(index)
        if text:
            for anchor, index in self._starts[folded].get(text[0], ()):
                if text.startswith(anchor):
                    found.add(index)
        for anchor, index in self._floating[folded]:
            if anchor in text:
                found.add(index)


_DISPATCHERS: dict[tuple[int, ...], Dispatcher] = {}


def dispatcher(parsers: tuple[BlockParser, ...]) -> Dispatcher:
    """One dispatcher per set of parsers, built once per process."""
    key = tuple(id(p) for p in parsers)
    if key not in _DISPATCHERS:
        _DISPATCHERS[key] = Dispatcher(parsers)
    return _DISPATCHERS[key]
