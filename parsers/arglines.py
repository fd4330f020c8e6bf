"""``Arg1:`` .. ``Arg4:`` lines pasted without the ``!analyze`` report around them.

Forum posts and blogs quote the arguments alone, one per code block or bullet, with prose between them and
often with only some of them (``Arg1`` and ``Arg3``). The bug check code, when printed at all, is nearby:
``Bug check c4 - A device driver ...``, ``BugCheck C4, {...}``, ``DRIVER_VERIFIER_DETECTED_VIOLATION (c4)``,
``Unknown bugcheck code (c0000244)`` or prose such as ``the first 0x3B bugcheck argument``. This parser
takes the Arg lines within :data:`WINDOW` lines of each other, looks for the code in the lines before and
between them, and gives every other line back to the dispatcher (other parsers read the ``dS`` or ``.cxr``
between the arguments). Telling the code from the descriptions when no line names it is the engine's work
(it has the knowledge base).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from parsers.base import Line, LineCursor
from parsers.records import PartialBugCheckRecord, Record, Span

WINDOW = 24  # lines of prose or other output allowed between two argument lines
_LOOKBEHIND = 8  # lines above the first argument where the code may be named

_BULLET = re.compile(r"^(?:[ \t]*>)*[\s*+\u2022-]*(?:\d+[.)]\s+)?")
_ARG = re.compile(
    r"^Arg(?P<n>[1-4])\s*:\s*(?:0x)?(?P<value>[0-9a-fA-F`]+)\.?\s*(?:,\s*(?P<desc>.*?))?\s*(?:\{%.*)?$"
)
_CODE_MENTIONS = (
    re.compile(r"\bBug\s?Check\s+(?:0x)?(?P<code>[0-9a-fA-F]{1,8})\s*(?:-|,|\(|:|$)", re.IGNORECASE),
    re.compile(r"\bBug\s?check\s+code\s*:?\s*(?:0x)?(?P<code>[0-9a-fA-F]{1,8})\b", re.IGNORECASE),
    re.compile(r"\b0x(?P<code>[0-9a-fA-F]{1,8})\s+bug\s?check\b", re.IGNORECASE),
    re.compile(r"\bUnknown bugcheck code \((?P<code>[0-9a-fA-F]{1,8})\)"),
    re.compile(r"^(?P<name>[A-Z][A-Z0-9_]{2,})\s+\((?P<code>[0-9a-fA-F]{1,8})\)\s*$"),
)
_STOP = re.compile(r"^(?:Arguments:|Debugging Details:|\*{20,}|STACK_TEXT:|BUGCHECK_CODE:)")


def clean(text: str) -> str:
    """A line without quote markers, bullets, list numbers, bold and inline-code marks."""
    return _BULLET.sub("", text).replace("**", "").replace("`", "").strip()


def _hex(text: str) -> int | None:
    try:
        return int(text.replace("`", ""), 16)
    except ValueError:
        return None


def code_mention(text: str) -> tuple[int, str | None] | None:
    """The bug check code (and name) a line of text names, if it names one."""
    for pattern in _CODE_MENTIONS:
        found = pattern.search(text)
        if found is not None:
            code = _hex(found["code"])
            if code is not None:
                name = found.groupdict().get("name")
                return code, name
    return None


class ArgumentLinesParser:
    name = "arglines"
    trigger = (
        r"^[\s>*]*Arg[1-4]\s*:|^[\s>*]*(?:- |\+ )Arg[1-4]\s*:"
        r"|^[\s>*]*[0-9]+(?:\. |\) )Arg[1-4]\s*:|^[\s>*]*Bug check [0-9a-fA-F]{1,8} - "
    )

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        found = _ARG.match(clean(first.text))
        mention: tuple[int, str | None] | None = None
        others: list[Line] = []
        start = first.number
        if found is None:  # "Bug check c4 - A device driver ...": the arguments may follow
            mention = code_mention(clean(first.text))
            if mention is None:
                return
            argument, found = self._first_argument(cursor, others)
            if argument is None or found is None:
                for skipped in reversed(others):
                    cursor.push_back(skipped)
                yield PartialBugCheckRecord(
                    Span(cursor.path, start, start), "bugcheck-one-liner", (), code=mention[0]
                )
                return
            first = argument
        else:
            mention = self._mention_before(cursor)
        values: dict[int, tuple[str, str]] = {int(found["n"]): (found["value"], found["desc"] or "")}
        last, quiet = first.number, 0
        while quiet < WINDOW and len(values) < 4:
            line = cursor.next()
            if line is None:
                break
            text = clean(line.text)
            arg = _ARG.match(text)
            if arg is not None and int(arg["n"]) > max(values):
                values[int(arg["n"])] = (arg["value"], arg["desc"] or "")
                last, quiet = line.number, 0
                continue
            if _STOP.match(text) or (arg is not None):
                cursor.push_back(line)
                break
            others.append(line)
            quiet += 1
            if mention is None:
                mention = code_mention(text)
        for line in reversed(others):
            cursor.push_back(line)
        yield self._record(values, mention, Span(cursor.path, start, last))

    @staticmethod
    def _first_argument(cursor: LineCursor, skipped: list[Line]) -> tuple[Line | None, re.Match[str] | None]:
        """The first ``Arg`` line within a few lines after a one-line bug check (the lines before it are
        collected in ``skipped``, for the dispatcher)."""
        for _ in range(_LOOKBEHIND):
            line = cursor.next()
            if line is None:
                break
            found = _ARG.match(clean(line.text))
            if found is not None:
                return line, found
            skipped.append(line)
        return None, None

    @staticmethod
    def _mention_before(cursor: LineCursor) -> tuple[int, str | None] | None:
        lookbehind = getattr(cursor, "lookbehind", None)
        if lookbehind is None:
            return None
        for line in reversed(lookbehind(_LOOKBEHIND)):
            found = code_mention(clean(line.text))
            if found is not None:
                return found
        return None

    @staticmethod
    def _record(
        values: dict[int, tuple[str, str]], mention: tuple[int, str | None] | None, span: Span
    ) -> PartialBugCheckRecord:
        count = max(values)
        args = tuple(_hex(values[n][0]) if n in values else None for n in range(1, count + 1))
        texts = tuple(values[n][1].strip() if n in values else "" for n in range(1, count + 1))
        widths = {len(values[n][0].replace("`", "")) for n in values}
        bits = 32 if widths == {8} else 64 if widths == {16} else None
        code, name = mention if mention is not None else (None, None)
        return PartialBugCheckRecord(span, "arg-lines", args, texts, code=code, name=name, pointer_bits=bits)


PARSER = ArgumentLinesParser()
