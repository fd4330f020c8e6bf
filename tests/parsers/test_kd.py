"""Bug check code and parameters outside !analyze: Fatal System Error, BugCheck line, .bugcheck."""

from __future__ import annotations

import pytest

from parsers.records import BugCheckRecord, Span
from parsers.stream import parse_text


def bugchecks(text: str) -> list[BugCheckRecord]:
    records, _ = parse_text(text, "t")
    return [r for r in records if isinstance(r, BugCheckRecord)]


def test_fatal_system_error_x64() -> None:
    text = (
        "noise\n*** Fatal System Error: 0x000000c4\n"
        "                       "
        "(0x0000000000002000,0xFFFFF802DA2D33E8,0x0000000000000000,0x00000000484D454D)\n"
        "\nBreak instruction exception - code 80000003 (first chance)\n"
    )
    assert bugchecks(text) == [
        BugCheckRecord(
            Span("t", 2, 3),
            "fatal-system-error",
            0xC4,
            (0x2000, 0xFFFFF802DA2D33E8, 0, 0x484D454D),
            pointer_bits=64,
        )
    ]


def test_fatal_system_error_x86_and_other_code() -> None:
    text = (
        "*** Fatal System Error: 0x0000001e\n                       "
        "(0xC0000005,0x8D4A12C8,0x00000000,0xFFFFFFFF)\n"
    )
    (record,) = bugchecks(text)
    assert (record.code, record.args, record.pointer_bits) == (
        0x1E,
        (0xC0000005, 0x8D4A12C8, 0, 0xFFFFFFFF),
        32,
    )
    assert record.span == Span("t", 1, 2)


def test_fatal_system_error_without_parameters_line() -> None:
    (record,) = bugchecks("*** Fatal System Error: 0x000000c4\nsomething else\n")
    assert (record.code, record.args, record.span.last_line) == (0xC4, (), 1)


def test_fatal_system_error_joined_by_a_forum() -> None:
    (record,) = bugchecks("> *** Fatal System Error: 0x000000c4 (0x2001,0xFFFFF80312A41187,0x40,0x0)\n")
    assert record.args == (0x2001, 0xFFFFF80312A41187, 0x40, 0)


@pytest.mark.parametrize(
    ("line", "code", "args", "bits"),
    [
        (
            "BugCheck C4, {2000, fffff802da2d33e8, 0, 484d454d}",
            0xC4,
            (0x2000, 0xFFFFF802DA2D33E8, 0, 0x484D454D),
            64,
        ),
        (
            "BugCheck 1E, {ffffffffc0000005, fffff80642c71a3b, 0, ffffffffffffffff}",
            0x1E,
            (0xFFFFFFFFC0000005, 0xFFFFF80642C71A3B, 0, 0xFFFFFFFFFFFFFFFF),
            64,
        ),
        ("BugCheck A, {1c, 2, 0, 804f8afc}", 0xA, (0x1C, 2, 0, 0x804F8AFC), None),
    ],
)
def test_bugcheck_line(line: str, code: int, args: tuple[int, ...], bits: int | None) -> None:
    (record,) = bugchecks(f"\n{line}\n\n")
    assert (record.form, record.code, record.args, record.pointer_bits) == ("bugcheck-line", code, args, bits)
    assert record.span == Span("t", 2, 2)


@pytest.mark.parametrize(
    ("text", "args", "bits"),
    [
        (
            "kd> .bugcheck\nBugcheck code 0000000a\nArguments 00000000 0000001c 00000000 00000000\n",
            (0, 0x1C, 0, 0),
            32,
        ),
        (
            "0: kd> .bugcheck\nBugcheck code 000000C4\n"
            "Arguments 00000000`00002003 ffffa98f`6d2c1258 fffff803`1c0f0238 ffffb807`5a5f6e50\n",
            (0x2003, 0xFFFFA98F6D2C1258, 0xFFFFF8031C0F0238, 0xFFFFB8075A5F6E50),
            64,
        ),
        (
            "0: kd> .bugcheck\nBugcheck code 000000C4\n"
            "Arguments 0000000000002000 fffff802da2d33e8 0000000000000000 00000000484d454d\n",
            (0x2000, 0xFFFFF802DA2D33E8, 0, 0x484D454D),
            64,
        ),
    ],
)
def test_dot_bugcheck(text: str, args: tuple[int, ...], bits: int) -> None:
    (record,) = bugchecks(text)
    assert (record.form, record.args, record.pointer_bits) == ("dot-bugcheck", args, bits)
    assert record.span == Span("t", 2, 3)


def test_dot_bugcheck_without_arguments_line_keeps_the_next_line() -> None:
    records, _ = parse_text("Bugcheck code 000000c4\nBugCheck C4, {2000, 1, 0, 0}\n", "t")
    assert [(r.form, r.span.first_line) for r in records if isinstance(r, BugCheckRecord)] == [
        ("dot-bugcheck", 1),
        ("bugcheck-line", 2),
    ]
