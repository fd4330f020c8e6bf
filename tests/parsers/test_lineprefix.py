"""Timestamp prefixes that capture tools add to every line are recognised and removed before parsing."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parsers import lineprefix
from parsers.records import BugCheckRecord, Diagnostic, VerifierBannerRecord
from parsers.stream import iter_records, open_input, parse_text

KD_LINES = [
    "*********** Verifier Detected a Code Integrity Issue ************",
    "**",
    "** The caller 0xFFFFF80C4A1E2F3B specified an executable pool type 0x0.",
    "**",
    "*****************************************************************",
    "*** Fatal System Error: 0x000000c4",
    "                       (0x0000000000002000,0xFFFFF80C4A1E2F3B,0x0000000000000000,0x0000000000000000)",
    "",
]


@pytest.mark.parametrize(
    ("prefix", "name"),
    [
        ("[2026-11-23 02:10:59.222] ", "[date time]"),
        ("[2026-11-23T02:10:59,5+01:00] ", "[date time]"),
        ("2026-11-23 02:10:59.222 ", "date time"),
        ("2026-11-23T02:10:59Z | ", "date time"),
        ("[Mon Nov 23 02:10:59.222 2026] ", "[weekday month day time year]"),
        ("[02:10:59.222] ", "[time]"),
    ],
)
def test_a_prefixed_log_reads_like_the_plain_one(prefix: str, name: str) -> None:
    text = "\n".join(prefix + line if line else line for line in KD_LINES)
    records, info = parse_text(text)
    banners = [r for r in records if isinstance(r, VerifierBannerRecord)]
    bugchecks = [r for r in records if isinstance(r, BugCheckRecord)]
    assert [b.caller for b in banners] == [0xFFFFF80C4A1E2F3B]
    assert [(b.code, b.args[:2]) for b in bugchecks] == [(0xC4, (0x2000, 0xFFFFF80C4A1E2F3B))]
    assert bugchecks[0].span.first_line == 6  # line numbers are those of the file
    notes = [d.message for d in info.diagnostics if "prefix" in d.message]
    assert len(notes) == 1 and name in notes[0]


def test_a_prefixed_file_in_bytes_is_stripped_too() -> None:
    text = "\n".join("[2026-11-23 02:10:59.000] " + line for line in KD_LINES)
    inp = open_input(None, data=text.encode("cp1252"), name="lab.log")
    records = list(iter_records(inp))
    assert any(isinstance(r, BugCheckRecord) and r.code == 0xC4 for r in records)
    assert not any(isinstance(r, Diagnostic) and r.severity == "error" for r in records)


@pytest.mark.parametrize(
    "head",
    [
        "\n".join(KD_LINES),  # an ordinary log
        "0: kd> !analyze -v\n1: kd> k\n2: kd> lm\n10:12:13 not a prefix\n",  # prompts start with digits
        "[2026-11-23 02:10:59.000] one\nplain\nplain\nplain\nplain\nplain\n",  # too few prefixed lines
        "[2026-11-23 02:10:59.000] a\n[2026-11-23 02:10:59.000] b\n",  # too few lines to tell
    ],
)
def test_no_prefix_is_invented(head: str) -> None:
    assert lineprefix.detect(head) is None


def test_mixed_prefixed_lines_still_count_as_prefixed() -> None:
    """Tools that wrap a long line emit its continuation without a stamp: most lines still carry one."""
    lines = ["[2026-11-23 02:10:59.000] x"] * 8 + ["continuation"] * 2
    found = lineprefix.detect("\n".join(lines))
    assert found is not None and found.example == "[2026-11-23 02:10:59.000] "


def test_every_prefix_begins_with_the_characters_the_shortcut_takes_it_for() -> None:
    """A pattern matches only lines that begin with its first characters, which :func:`detect` counts
    before compiling it: every prefix has some, and no line that begins otherwise matches."""
    for _name, pattern in lineprefix.PREFIXES:
        starts = lineprefix._first_characters(pattern)
        assert starts is not None, pattern
        compiled = re.compile(pattern)
        for first in map(chr, range(0x250)):
            if first not in starts:
                assert not compiled.match(first + "2026-11-23 02:10:59.222] x"), (pattern, first)


prefixed_line = st.builds(
    lambda prefix, line: prefix + line,
    st.sampled_from(["", "", "[2026-11-23 02:10:59.222] ", "2026-11-23 02:10:59 ", "[02:10:59] ", "\ufeff"]),
    st.sampled_from(KD_LINES) | st.text(max_size=12),
)


@given(st.lists(prefixed_line, max_size=12))
def test_the_shortcut_finds_the_prefix_detect_finds_without_it(lines: list[str]) -> None:
    head = "\n".join(line.replace("\n", " ") for line in lines)
    found = lineprefix.detect(head)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lineprefix, "_first_characters", lambda pattern: None)
        assert found == lineprefix.detect(head)


def test_a_log_without_timestamps_compiles_no_prefix_pattern(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[str] = []
    monkeypatch.setattr(lineprefix.re, "compile", lambda pattern, *_: compiled.append(pattern))
    assert lineprefix.detect("\n".join(KD_LINES)) is None
    assert compiled == []
