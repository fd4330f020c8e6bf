"""``dS`` / ``du`` / ``da`` output: the image and section names behind Arg2 / Arg4 of image subcodes."""

from __future__ import annotations

from parsers.base import LineCursor
from parsers.memstring import PARSER
from parsers.records import Diagnostic, MemoryStringRecord, Span
from parsers.stream import parse_text


def _parse(text: str) -> tuple[list[object], list[str]]:
    cursor = LineCursor.from_text(text, "t.log")
    first = cursor.next()
    assert first is not None
    records = list(PARSER.parse(first, cursor))
    rest = []
    while (line := cursor.next()) is not None:
        rest.append(line.text)
    return records, rest


def test_ds_gives_the_string_at_the_unicode_string_address() -> None:
    text = '0: kd> dS ffffe50a`3d9c2a58\nffffe50a`3d9c2b20  "\\SystemRoot\\drivers\\tv.sys"\n0: kd> g'
    records, rest = _parse(text)
    assert records == [
        MemoryStringRecord(Span("t.log", 1, 2), "dS", 0xFFFFE50A3D9C2A58, "\\SystemRoot\\drivers\\tv.sys")
    ]
    assert rest == ["0: kd> g"]


def test_du_continuation_lines_are_joined() -> None:
    text = (
        "1: kd> du 0xffffb88c1e2f7000\n"
        'ffffb88c`1e2f7000  "\\Device\\HarddiskVolume3\\Windows\\Sys"\n'
        'ffffb88c`1e2f7048  "tem32\\drivers\\vendorfilt.sys"\n'
        "1: kd> k\n"
    )
    records, rest = _parse(text)
    assert [r.text for r in records if isinstance(r, MemoryStringRecord)] == [
        "\\Device\\HarddiskVolume3\\Windows\\System32\\drivers\\vendorfilt.sys"
    ]
    assert rest == ["1: kd> k"]


def test_unreadable_memory_is_said_not_invented() -> None:
    records, rest = _parse("0: kd> da ffffb88c1e2f76a0\nMemory access error at ')'\n")
    assert len(records) == 1 and isinstance(records[0], Diagnostic)
    assert rest == ["Memory access error at ')'"]


def test_strings_are_found_in_a_whole_log() -> None:
    records, _ = parse_text('noise\n0: kd> da ffffb88c1e2f76a0\nffffb88c`1e2f76a0  ".text"\nmore noise\n')
    assert [(r.command, r.address, r.text) for r in records if isinstance(r, MemoryStringRecord)] == [
        ("da", 0xFFFFB88C1E2F76A0, ".text")
    ]
