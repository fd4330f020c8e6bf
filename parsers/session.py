"""Debugger session files (docs/session-format.md): JSON Lines written by the collectors in ``collectors/``.

A session file is not text a parser can read: each line is one JSON record holding a debugger command and
what it printed. This module turns its chunks into the transcript the debugger would have shown
(``kd> <command>`` followed by the output lines), which the ordinary block parsers read, and maps every
transcript line back to the session-file line of the record it came from, so that evidence points into
the file the user has (and shares).

Each record's transcript ends with a bare prompt, as in the debugger. The transcript is made chunk by
chunk, so a followed session grows record by record; only one number per record is kept to map lines back.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from parsers.chunks import LINE_CAP, LONG_LINE, Chunk, Issue, Restart
from parsers.records import Span

FORMAT = "hvci-triage-session"
#: The newest session-format version this reader knows; newer files are read as far as they match.
VERSION = 1
PROMPT = "kd> "
_NEWLINES = re.compile(r"\r\n|\r|\n")

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """One command record of a session: what was typed and what the debugger printed."""

    command: str
    output: str


def read_record(text: str) -> CommandRecord | str | None:
    """A session line as a command record, ``None`` for a record without command output (the header, a
    record kind from a newer version), or a message saying why the line cannot be read."""
    try:
        value = json.loads(text)
    except ValueError as error:
        return f"session record is not JSON ({error.args[0] if error.args else error})"
    if not isinstance(value, dict):
        return "session record is not a JSON object"
    if value.get("kind") != "command":
        return None
    command, output = value.get("command"), value.get("output")
    if not isinstance(command, str) or not isinstance(output, str):
        return "command record without a command or output string"
    return CommandRecord(command, output)


def header_problem(text: str) -> str | None:
    """What is wrong with a session's first line, or ``None`` for a header this reader understands."""
    try:
        value = json.loads(text)
    except ValueError:
        return "session header is not JSON"
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        return "session header does not name the session format"
    version = value.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        return "session header has no version number"
    if version > VERSION:
        return f"session format version {version} is newer than this reader's ({VERSION}); read as {VERSION}"
    return None


class Transcript:
    """Session chunks -> transcript chunks, remembering which session line each transcript line came from.

    ``starts[i]`` is the first transcript line made from session line ``lines[i]``; the lines after it,
    up to the next start, came from the same record.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start again at line 1 (a followed session file was truncated or re-created)."""
        self.starts: list[int] = []
        self.lines: list[int] = []
        self.session_line = 0  # session lines read so far
        self.transcript_line = 1  # number of the next transcript line

    def chunks(self, items: Iterator[Chunk | Restart]) -> Iterator[Chunk | Restart]:
        """The transcript of a session's chunks (which hold complete lines), chunk for chunk."""
        for item in items:
            if isinstance(item, Restart):
                self.reset()
                yield item
            else:
                yield self.feed(item)

    def feed(self, chunk: Chunk) -> Chunk:
        data = chunk.data
        text = data if isinstance(data, str) else data.decode("utf-8", "replace")
        out: list[str] = []
        issues: list[Issue] = []
        size = 0
        for raw in text.split("\n")[:-1]:
            self.session_line += 1
            piece, problem = self._record_lines(raw.removesuffix("\r"))
            if problem is not None:
                issues.append(Issue(size, f"session line {self.session_line}: {problem}"))
                piece = piece or [""]  # a blank transcript line carries the diagnostic to this line
            if not piece:
                continue
            self.starts.append(self.transcript_line)
            self.lines.append(self.session_line)
            for line in piece:
                if len(line) > LINE_CAP:
                    issues.append(Issue(size, LONG_LINE))
                    line = line[:LINE_CAP]
                out.append(line)
                size += len(line.encode("utf-8", "replace")) + 1
                self.transcript_line += 1
        body = "".join(line + "\n" for line in out)
        return Chunk(body.encode("utf-8", "replace"), tuple(issues))

    def _record_lines(self, raw: str) -> tuple[list[str], str | None]:
        if self.session_line == 1:
            return [], header_problem(raw)
        if not raw.strip():
            return [], None
        record = read_record(raw)
        if record is None:
            return [], None
        if isinstance(record, str):
            return [], record
        output = _NEWLINES.split(record.output)
        if output and output[-1] == "":
            output.pop()
        # the bare prompt after the output, as the debugger prints it when the command is done, ends every
        # block in it: a parser looking one line ahead need not wait for the next record of a live session
        return [PROMPT + _one_line(record.command), *output, PROMPT], None

    def session_line_of(self, transcript_line: int) -> int:
        """The session-file line a transcript line came from."""
        index = bisect_right(self.starts, transcript_line) - 1
        if index < 0:
            return 1
        return self.lines[index]

    def remap(self, record: R) -> R:
        """``record`` with its span and every line number in it moved to session-file lines."""
        return _remap(record, self.session_line_of)  # type: ignore[no-any-return]


def _one_line(command: str) -> str:
    return _NEWLINES.sub(" ", command)


def _remap(value: Any, where: Any) -> Any:
    if isinstance(value, Span):
        return Span(value.path, where(value.first_line), where(value.last_line))
    if isinstance(value, tuple):
        return tuple(_remap(item, where) for item in value)
    if not isinstance(value, msgspec.Struct):  # not a record
        return value
    changes: dict[str, Any] = {}
    for name in value.__struct_fields__:
        current = getattr(value, name)
        if name == "line" and isinstance(current, int):
            changes[name] = where(current)
        elif isinstance(current, (tuple, msgspec.Struct)):
            changes[name] = _remap(current, where)
    return msgspec.structs.replace(value, **changes) if changes else value
