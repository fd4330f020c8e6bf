"""The three places KD prints a bug check's code and parameters outside ``!analyze``.

- ``*** Fatal System Error: 0x000000c4`` with ``(0x...,0x...,0x...,0x...)`` on the next line (uppercase hex,
  8 digits on x86, 16 on x64), printed the moment the machine stops;
- ``BugCheck C4, {2000, fffff802da2d33e8, 0, 484d454d}``, from the short automatic analysis;
- ``.bugcheck``: ``Bugcheck code 000000c4`` then ``Arguments 00000000`00002000 ...``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from parsers.base import Line, LineCursor
from parsers.deferred import deferred_compile
from parsers.records import BugCheckRecord, Record, Span

_HEX = r"[0-9a-fA-F`]+"
_FATAL = deferred_compile(r"Fatal System Error:\s*(?:0x)?(?P<code>[0-9a-fA-F]+)(?P<rest>.*)$")
_FATAL_ARGS = deferred_compile(
    rf"^[\s>*]*\(\s*(?:0x)?(?P<a1>{_HEX})\s*,\s*(?:0x)?(?P<a2>{_HEX})\s*,\s*(?:0x)?(?P<a3>{_HEX})\s*,"
    rf"\s*(?:0x)?(?P<a4>{_HEX})\s*\)"
)
_BUGCHECK_LINE = deferred_compile(
    r"BugCheck\s+(?P<code>[0-9a-fA-F]+)\s*,\s*\{\s*(?P<args>[0-9a-fA-F`]+(?:\s*,\s*[0-9a-fA-F`]+){0,3})\s*\}"
)
_DOT_CODE = deferred_compile(r"Bugcheck code\s+(?:0x)?(?P<code>[0-9a-fA-F]+)\s*$")
_DOT_ARGS = deferred_compile(rf"^[\s>*]*Arguments\s+(?P<args>{_HEX}(?:\s+{_HEX}){{0,3}})\s*$")


def _hex(text: str) -> int:
    return int(text.replace("`", ""), 16)


def _width_bits(texts: list[str]) -> int | None:
    """32 or 64 when the printed width of zero-padded values tells."""
    digits = {len(t.replace("`", "")) for t in texts}
    if digits == {8}:
        return 32
    if digits == {16}:
        return 64
    return None


def bugcheck_line(line: Line, path: str) -> BugCheckRecord | None:
    """A ``BugCheck C4, {...}`` line (also used by ``parsers.analyze`` for the short automatic analysis)."""
    match = _BUGCHECK_LINE.search(line.text)
    if match is None:
        return None
    args = tuple(_hex(a) for a in re.split(r"\s*,\s*", match["args"]))
    bits = 64 if any(a > 0xFFFFFFFF for a in args) else None
    return BugCheckRecord(Span(path, line.number, line.number), "bugcheck-line", _hex(match["code"]), args,
                          pointer_bits=bits)


class KdParser:
    name = "kd"
    trigger = r"^[\s>*]*(?:Fatal System Error:|BugCheck\s+[0-9a-fA-F]+\s*,\s*\{|Bugcheck code\s+[0-9a-fA-F]+)"

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        fatal = _FATAL.search(first.text)
        if fatal is not None:
            yield from self._fatal(first, fatal, cursor)
            return
        record = bugcheck_line(first, cursor.path)
        if record is not None:
            yield record
            return
        code = _DOT_CODE.search(first.text)
        if code is not None:
            yield from self._dot_bugcheck(first, code, cursor)

    def _fatal(self, first: Line, fatal: re.Match[str], cursor: LineCursor) -> Iterator[Record]:
        last = first.number
        args_match = _FATAL_ARGS.match(fatal["rest"])  # same line when a forum joined the two
        if args_match is None:
            following = cursor.next()
            if following is not None:
                args_match = _FATAL_ARGS.match(following.text)
                if args_match is None:
                    cursor.push_back(following)
                else:
                    last = following.number
        texts = [args_match[f"a{i}"] for i in range(1, 5)] if args_match else []
        yield BugCheckRecord(
            Span(cursor.path, first.number, last),
            "fatal-system-error",
            int(fatal["code"], 16),
            tuple(_hex(t) for t in texts),
            pointer_bits=_width_bits(texts) if texts else None,
        )

    def _dot_bugcheck(self, first: Line, code: re.Match[str], cursor: LineCursor) -> Iterator[Record]:
        following = cursor.next()
        texts: list[str] = []
        last = first.number
        if following is not None:
            args = _DOT_ARGS.match(following.text)
            if args is None:
                cursor.push_back(following)
            else:
                texts = args["args"].split()
                last = following.number
        bits = 64 if any("`" in t for t in texts) else _width_bits(texts) if texts else None
        yield BugCheckRecord(
            Span(cursor.path, first.number, last),
            "dot-bugcheck",
            int(code["code"], 16),
            tuple(_hex(t) for t in texts),
            pointer_bits=bits,
        )


PARSER = KdParser()
