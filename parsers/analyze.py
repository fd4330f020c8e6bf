"""``!analyze -v`` reports of every debugger generation, and the short automatic analysis.

Layout (domain reference §3.1)::

    ****************************************************************   <- box (trigger)
    *                        Bugcheck Analysis                     *
    ****************************************************************
    DRIVER_VERIFIER_DETECTED_VIOLATION (c4)                            <- NAME (code)
    A device driver attempting to corrupt the system has been caught.  <- description
    Arguments:
    Arg1: 0000000000002000, Code Integrity Issue: The caller specified an executable pool type. ...
    \tcontinuation of a long description
    Debugging Details:
    ------------------
    KEY_VALUES_STRING: 1                                               <- newer: Key/Value pairs
        Key  : Failure.Bucket
        Value: 0xc4_2000_VRF_MyDriver!AllocBuffer
    BUGCHECK_CODE:  c4                                                 <- KEY: value fields
    STACK_TEXT:                                                        <- frames, see parsers.stack
    ...
    Followup:     MachineOwner
    ---------

Older debuggers print ``BUGCHECK_STR: 0xc4_2000`` instead of ``BUGCHECK_CODE``; forum copies add ``> ``
quote markers, indentation, ``**`` bold, escaped ``\\_`` and code fences, and wrap long ``Arg`` lines. The
bug check comes from the header and the ``Arg`` lines when printed (their descriptions are the evidence
the classifier needs), otherwise from the ``BUGCHECK_*`` fields; nothing is invented when neither is there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import msgspec

from parsers.base import Line, LineCursor
from parsers.deferred import deferred_compile
from parsers.kd import bugcheck_line
from parsers.mentions import mention_before
from parsers.records import AnalyzeRecord, BugCheckRecord, Record, Span, StackRecord
from parsers.stack import read_frames

MAX_LINES = 20000  # an analyze report is a few hundred lines; a runaway block is cut here
_HEADER_LOOKBEHIND = 12  # description lines a bug check's header may be above its Arguments: line
_MAX_STRAYS = {"head": 40, "args": 8, "details": 8}  # unrecognised lines in a row that end the report

_QUOTE = deferred_compile(r"^(?:[ \t]*>)+[ \t]?")
_FENCE = deferred_compile(r"^\s*(?:```|~~~)")
_STAR_LINE = deferred_compile(r"^\s*\*{20,}\s*$")
_BOX_LINE = deferred_compile(r"^\s*\*[\s*]*$|^\s*\*\s+Bugcheck Analysis\s+\*\s*$")
_BOX_TITLE = deferred_compile(r"Bugcheck Analysis")
_SHORT = deferred_compile(r"^Use !analyze -v to get detailed debugging information")
_PROBABLY = deferred_compile(r"^Probably caused by\s*:\s*(?P<value>.*?)\s*$")
_HEADER = deferred_compile(
    r"^(?:(?P<name>[A-Z][A-Z0-9_]{2,})|Unknown bugcheck code)\s+\((?P<code>[0-9a-fA-F]{1,8})\)\s*$"
)
#: the debugger data model's names for the bug check (``KEY_VALUES_STRING``: ``Bugcheck.Code.LegacyAPI``)
_MODEL_CODE = ("Bugcheck.Code.LegacyAPI", "Bugcheck.Code.KiBugCheckData", "Bugcheck.Code.TargetModel")
_ARGUMENTS = deferred_compile(r"^Arguments:\s*$")
_ARG = deferred_compile(r"^Arg(?P<n>[1-4]):\s*(?P<value>[0-9a-fA-F`]+)\s*(?:,\s*(?P<desc>.*?))?\s*$")
_DETAILS = deferred_compile(r"^Debugging Details:\s*$")
_DASHES = deferred_compile(r"^-{3,}\s*$")
_FIELD = deferred_compile(r"^(?P<key>[A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)*)\s*:(?:\s+(?P<value>.*?))?\s*$")
_NOT_FIELDS = frozenset({"WARNING", "ERROR", "NOTE", "TRAP_FRAME_NOTE"})
#: the faulting instruction quoted in prose after a report ("With faulting ip: `ScpVBus+b174`")
_PROSE_FAULTING_IP = deferred_compile(
    r"\bfaulting ip\s*:\s*`?(?P<site>[A-Za-z_][\w.$-]*(?:![\w$@?]+)?\+(?:0x)?[0-9a-fA-F`]+)`?", re.IGNORECASE
)
_FOLLOWUP = deferred_compile(r"^Followup\s*:\s*(?P<value>.*?)\s*$")
_KEY = deferred_compile(r"^Key\s*:\s*(?P<value>.*?)\s*$")
_VALUE = deferred_compile(r"^Value\s*:\s*(?P<value>.*?)\s*$")
_FOREIGN_PROMPT = deferred_compile(r"\s*(?:\d+:\s*)?l?kd(?::x86)?> ")
_BUGCHECK_STR = deferred_compile(r"^0x(?P<code>[0-9a-fA-F]+)(?:_(?P<p1>[0-9a-fA-F]+))?\b")
_PLATFORM_BITS = {"x86": 32, "x64": 64, "amd64": 64, "arm64": 64, "arm": 32}


def _foreign(text: str) -> bool:
    """A line that is not the report's: a fatal-error line, a verifier banner or a debugger prompt (three
    memchr-speed tests and one match at the start, not a search that tries every position: issue 16)."""
    return (
        "Fatal System Error:" in text
        or "Verifier Detected a Code Integrity Issue" in text
        or ("kd" in text and _FOREIGN_PROMPT.match(text) is not None)
    )


def _star_line(text: str) -> bool:
    """A line of twenty stars or more (:data:`_STAR_LINE`), by a substring test before the match."""
    return "********************" in text and _STAR_LINE.match(text) is not None


def clean(text: str) -> str:
    """A report line without forum mangling: quote markers, indentation, ``**`` bold, ``\\_`` escapes."""
    if ">" in text:
        text = _QUOTE.sub("", text)
    if ("```" in text or "~~~" in text) and _FENCE.match(text):
        return ""
    if "**" in text and not _star_line(text) and "Bugcheck Analysis" not in text:
        text = text.replace("**", "")
    if "\\_" in text:
        head, sep, tail = text.partition(":")
        text = head.replace("\\_", "_") + sep + tail
    return text.strip()


class _Body(msgspec.Struct):
    """Where :meth:`AnalyzeParser._body` is in a report: its section (head -> args -> details), the value
    a continuation line extends (an argument description or a field), and the stray lines seen in a row."""

    section: str = "head"
    current: list[str] | None = None
    blank_before: bool = False
    was_blank: bool = False
    strays: list[Line] = msgspec.field(default_factory=list)
    pending_key: str | None = None

    def enter(self, section: str) -> None:
        self.section, self.current, self.strays = section, None, []


class _Report(msgspec.Struct):
    """What has been read of one report so far."""

    first: int
    last: int
    name: str | None = None
    code: int | None = None
    bugcheck_first: int | None = None
    bugcheck_last: int | None = None
    #: n -> (value, description lines, line number)
    args: dict[int, tuple[str, list[str], int]] = msgspec.field(default_factory=dict)
    fields: list[tuple[str, list[str]]] = msgspec.field(default_factory=list)
    key_values: list[tuple[str, str]] = msgspec.field(default_factory=list)
    stack: StackRecord | None = None
    short_bugcheck: BugCheckRecord | None = None

    def field_named(self, key: str) -> list[str] | None:
        return next((value for name, value in self.fields if name == key), None)

    def touch_bugcheck(self, number: int) -> None:
        if self.bugcheck_first is None:
            self.bugcheck_first = number
        self.bugcheck_last = number


def _hex(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text.replace("`", ""), 16)
    except ValueError:
        return None


def _model_code(key_values: list[tuple[str, str]]) -> int | None:
    """The code as the debugger data model names it (``Bugcheck.Code.LegacyAPI``: ``0x50``)."""
    model = dict(key_values)
    return next((code for code in (_hex(model.get(key)) for key in _MODEL_CODE) if code), None)


class AnalyzeParser:
    name = "analyze"
    trigger = (
        r"^\*{70,}\s*$|^[\s>*]*Bugcheck Analysis|^[\s>*]*Debugging Details:|^[\s>*]*Arguments:\s*$"
        r"|^[\s>*]*BUGCHECK(?:\\?_)(?:CODE|STR)\s*:"
    )

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        report = _Report(first.number, first.number)
        start = clean(first.text)
        if _star_line(first.text) and not self._box(first, cursor):
            return
        if _BOX_TITLE.search(start) or _star_line(first.text):
            mention = mention_before(cursor)
            self._rest_of_box(report, cursor)
        else:
            self._header_before(report, first, cursor)
            mention = mention_before(cursor, before=report.first)
            cursor.push_back(first)  # the trigger line is itself part of the body (Arguments:, fields)
        if mention is not None:
            yield mention
        self._body(report, cursor)
        yield self._record(report, cursor.path)

    @staticmethod
    def _header_before(report: _Report, first: Line, cursor: LineCursor) -> None:
        """A report pasted without its banner box starts at its ``NAME (code)`` header, which no trigger
        can find cheaply; when the dispatcher lets us look back from ``Arguments:``, take it from there."""
        lookbehind = getattr(cursor, "lookbehind", None)
        if lookbehind is None or not _ARGUMENTS.match(clean(first.text)):
            return
        for line in reversed(lookbehind(_HEADER_LOOKBEHIND)):
            header = _HEADER.match(clean(line.text))
            if header is not None:
                report.name, report.code = header["name"], int(header["code"], 16)
                report.first = line.number
                report.touch_bugcheck(line.number)
                return

    @staticmethod
    def _box(first: Line, cursor: LineCursor) -> bool:
        """Is this star line the top of the ``Bugcheck Analysis`` box? (Other star lines are not ours.)"""
        seen: list[Line] = []
        found = False
        for _ in range(4):
            line = cursor.next()
            if line is None:
                break
            seen.append(line)
            if _BOX_TITLE.search(line.text):
                found = True
                break
            if not _BOX_LINE.match(line.text):
                break
        for line in reversed(seen):
            cursor.push_back(line)
        return found

    @staticmethod
    def _rest_of_box(report: _Report, cursor: LineCursor) -> None:
        while (line := cursor.next()) is not None:
            text = clean(line.text)
            if _BOX_TITLE.search(text) or _BOX_LINE.match(line.text) or (not text and not line.text.strip()):
                if line.text.strip():
                    report.last = line.number
                continue
            cursor.push_back(line)
            return

    def _body(self, report: _Report, cursor: LineCursor) -> None:
        """The lines after the header, one step each until a step says the report has ended."""
        body = _Body()
        for _ in range(MAX_LINES):
            line = cursor.next()
            if line is None or not self._step(report, cursor, line, body):
                return

    def _step(self, report: _Report, cursor: LineCursor, line: Line, body: _Body) -> bool:
        """Take one line into the report; ``False`` when the report has ended (what is not the report's
        has been pushed back to the dispatcher)."""
        text = clean(line.text)
        star_line = _star_line(line.text)
        if _foreign(line.text) or (star_line and body.section != "head"):
            cursor.push_back(line)
            return False
        if star_line and body.section == "head" and self._box(line, cursor):
            cursor.push_back(line)  # a second report begins before this one had a body
            return False
        if not text:
            body.current = None if body.section == "details" else body.current
            body.blank_before = True
            return True
        body.was_blank, body.blank_before = body.blank_before, False
        ended = self._structure(report, cursor, line, text, body)
        if ended is not None:
            return not ended
        if self._content(report, cursor, line, text, body):
            return True
        return self._stray(report, cursor, line, text, body)

    def _structure(
        self, report: _Report, cursor: LineCursor, line: Line, text: str, body: _Body
    ) -> bool | None:
        """Lines that shape the report (short analysis, section headings, dashes, FOLLOWUP): ``True`` when
        the report ends here, ``False`` when the line was taken, ``None`` when it is none of these. Each
        pattern is tried only on a line that starts with its first character (``text`` is stripped and
        not empty; every line of a report passes here: issue 16)."""
        first = text[0]
        if first == "U" and body.section == "head" and _SHORT.match(text):
            self._short(report, cursor, line)
            return True
        if first == "D" and _DETAILS.match(text):
            body.enter("details")
            report.last = line.number
            return False
        if first == "-" and _DASHES.match(text):
            report.last = line.number
            return bool(report.fields and report.fields[-1][0] == "Followup")
        followup = _FOLLOWUP.match(text) if first == "F" else None
        if followup is not None:
            report.fields.append(("Followup", [followup["value"]]))
            report.last = line.number
            self._closing_dashes(report, cursor)
            return True
        if first == "A" and _ARGUMENTS.match(text):
            body.enter("args")
            report.last = line.number
            report.touch_bugcheck(line.number)
            return False
        return None

    def _content(self, report: _Report, cursor: LineCursor, line: Line, text: str, body: _Body) -> bool:
        """Arguments, the header, fields and their continuation lines; ``True`` when the line was one (the
        patterns tried by the line's first character, as in :meth:`_structure`)."""
        first = text[0]
        arg = _ARG.match(text) if first == "A" else None
        if arg is not None and body.section in ("head", "args"):
            body.section, body.strays = "args", []
            body.current = [arg["desc"]] if arg["desc"] else []
            report.args[int(arg["n"])] = (arg["value"], body.current, line.number)
            report.last = line.number
            report.touch_bugcheck(line.number)
            return True
        header = _HEADER.match(text) if "A" <= first <= "Z" else None
        if header is not None and body.section == "head" and report.name is None:
            body.strays = []
            report.name, report.code = header["name"], int(header["code"], 16)
            report.last = line.number
            report.touch_bugcheck(line.number)
            return True
        if self._key_value(report, line, text, body) or self._field(report, cursor, line, text, body):
            return True
        if body.current is not None and not body.was_blank and body.section in ("args", "details"):
            body.current.append(text)  # a wrapped argument description or a multi-line field value
            report.last = line.number
            if body.section == "args":
                report.touch_bugcheck(line.number)
            return True
        return False

    @staticmethod
    def _key_value(report: _Report, line: Line, text: str, body: _Body) -> bool:
        """KEY_VALUES_STRING's ``Key :`` / ``Value:`` pairs."""
        key = _KEY.match(text) if text[0] == "K" else None
        if key is not None and body.section == "details":
            body.pending_key = key["value"]
            report.last = line.number
            return True
        value = _VALUE.match(text) if text[0] == "V" else None
        if value is not None and body.pending_key is not None:
            report.key_values.append((body.pending_key, value["value"]))
            body.pending_key = None
            report.last = line.number
            return True
        return False

    def _field(self, report: _Report, cursor: LineCursor, line: Line, text: str, body: _Body) -> bool:
        """A ``KEY_NAME:`` field. In the Arguments section only BUGCHECK_* keys, or a KEY_NAME: after a
        blank line, start the fields (Debugging Details: was lost in the copy)."""
        found = _FIELD.match(text) if "A" <= text[0] <= "Z" else None
        if found is None or found["key"] in _NOT_FIELDS:
            return False
        if body.section == "args" and not (
            found["key"].startswith("BUGCHECK") or (body.was_blank and "_" in found["key"])
        ):
            return False
        body.section, body.strays = "details", []
        name = found["key"]
        report.last = line.number
        if name == "STACK_TEXT":
            self._stack(report, cursor, line)
            body.current = None
            return True
        body.current = [found["value"]] if found["value"] else []
        report.fields.append((name, body.current))
        return True

    @staticmethod
    def _stray(report: _Report, cursor: LineCursor, line: Line, text: str, body: _Body) -> bool:
        """Description text under the header, or debugger chatter between fields; too much of it in a row
        means the report has ended (the lines go back to the dispatcher)."""
        prose_ip = _PROSE_FAULTING_IP.search(text)
        if prose_ip is not None and report.field_named("FAULTING_IP") is None:
            report.fields.append(("FAULTING_IP", [prose_ip["site"]]))  # "With faulting ip: X+b174"
        body.strays.append(line)
        if len(body.strays) >= _MAX_STRAYS[body.section]:
            for stray in reversed(body.strays):
                cursor.push_back(stray)
            return False
        return True

    @staticmethod
    def _closing_dashes(report: _Report, cursor: LineCursor) -> None:
        following = cursor.next()
        if following is None:
            return
        if _DASHES.match(clean(following.text)):
            report.last = following.number
        else:
            cursor.push_back(following)

    @staticmethod
    def _stack(report: _Report, cursor: LineCursor, key_line: Line) -> None:
        frames, last = read_frames(cursor, clean=lambda t: _QUOTE.sub("", t))
        if frames and last is not None:
            report.stack = StackRecord(Span(cursor.path, key_line.number, last), "stack_text", tuple(frames))
            report.last = last
        report.fields.append(("STACK_TEXT", [f.text for f in frames]))

    def _short(self, report: _Report, cursor: LineCursor, first: Line) -> None:
        """The automatic analysis printed at the break (``!analyze`` without ``-v``)."""
        report.last = first.number
        for _ in range(40):
            line = cursor.next()
            if line is None:
                return
            text = clean(line.text)
            if _foreign(line.text) or _star_line(line.text):
                cursor.push_back(line)
                return
            bugcheck = bugcheck_line(Line(line.number, text), cursor.path)
            if bugcheck is not None:
                report.short_bugcheck = bugcheck
                report.last = line.number
                continue
            probably = _PROBABLY.match(text)
            if probably is not None:
                report.fields.append(("Probably caused by", [probably["value"]]))
                report.last = line.number
                continue
            followup = _FOLLOWUP.match(text)
            if followup is not None:
                report.fields.append(("Followup", [followup["value"]]))
                report.last = line.number
                self._closing_dashes(report, cursor)
                return

    def _record(self, report: _Report, path: str) -> AnalyzeRecord:
        fields = tuple((name, "\n".join(value)) for name, value in report.fields)
        return AnalyzeRecord(
            Span(path, report.first, report.last),
            report.short_bugcheck or self._bugcheck(report, dict(fields), path),
            fields=fields,
            key_values=tuple(report.key_values),
            stack=report.stack,
        )

    @staticmethod
    def _bugcheck(report: _Report, fields: dict[str, str], path: str) -> BugCheckRecord | None:
        code = report.code
        first, last = report.bugcheck_first, report.bugcheck_last
        field_lines = False
        if code is None:
            code = _hex(fields.get("BUGCHECK_CODE"))
            field_lines = True
        if code is None:
            code = _model_code(report.key_values)
        bugcheck_str = _BUGCHECK_STR.match(fields.get("BUGCHECK_STR", ""))
        if code is None and bugcheck_str is not None:
            code = _hex(bugcheck_str["code"])
        if code is None:
            return None
        texts: tuple[str, ...] = ()
        bits: int | None = None
        if report.args and sorted(report.args) == list(range(1, len(report.args) + 1)):
            values = [report.args[n][0] for n in sorted(report.args)]
            args = tuple(_hex(v) or 0 for v in values)
            texts = tuple(" ".join(report.args[n][1]) for n in sorted(report.args))
            widths = {len(v.replace("`", "")) for v in values}
            bits = 32 if widths == {8} else 64 if widths == {16} else None
        else:
            printed = [fields.get(f"BUGCHECK_P{n}") for n in range(1, 5)]
            present = printed[: next((i for i, p in enumerate(printed) if p is None), 4)]
            args = tuple(_hex(p) or 0 for p in present if p is not None)
            if not args and bugcheck_str is not None and bugcheck_str["p1"]:
                args = (int(bugcheck_str["p1"], 16),)
            field_lines = True
        if bits is None:
            platform = fields.get("OSPLATFORM_TYPE", "").strip().lower()
            bits = _PLATFORM_BITS.get(platform)
        if field_lines or first is None:
            first, last = report.first, report.last
        return BugCheckRecord(
            Span(path, first, last if last is not None else first),
            "analyze",
            code,
            args,
            name=report.name,
            arg_texts=texts,
            pointer_bits=bits,
        )


PARSER = AnalyzeParser()
