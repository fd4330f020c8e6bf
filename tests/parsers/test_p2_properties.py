"""Property tests for the P2 parsers: on any text none raises (they are called directly, without the
dispatcher's guard), the dispatch loop always terminates, and every span and line number points inside
the input."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers import events, imagedump, lm, readiness, verifier
from parsers.base import BlockParser, LineCursor
from parsers.records import CounterSet, ModuleListRecord, Record, VerifierStatusRecord
from tests.parsers.p2_support import SAMPLES

PARSERS: tuple[BlockParser, ...] = (
    lm.PARSER,
    verifier.PARSER,
    readiness.PARSER,
    events.PARSER,
    imagedump.PARSER,
)
TRIGGERS = tuple(re.compile(p.trigger, re.MULTILINE) for p in PARSERS)
SAMPLE_NAMES = (
    "lm-x64.txt",
    "lmv-with-unloaded.txt",
    "lm-x86.txt",
    "verifier-modern-ci-counters.txt",
    "verifier-win7.txt",
    "verifier-query.txt",
    "dg-readiness.log",
    "hvciscan.txt",
    "codeintegrity-events.txt",
    "codeintegrity-events.xml",
    "codeintegrity-events.csv",
    "codeintegrity-events-formatlist.txt",
    "dh-wx-section.txt",
    "dh-misaligned.txt",
    "codeintegrity-events-table.txt",
    "codeintegrity-event-copied.txt",
)
# Real lines of every format, so that random text reaches deep into the parsers, not only their triggers.
VOCABULARY = sorted(
    {line for name in SAMPLE_NAMES for line in (SAMPLES / name).read_text("utf-8").splitlines()}
)


def dispatch(text: str) -> tuple[list[Record], int]:
    cursor = LineCursor.from_text(text, "p.log")
    records: list[Record] = []
    steps = 0
    while (line := cursor.next()) is not None:
        steps += 1
        for parser, trigger in zip(PARSERS, TRIGGERS, strict=True):
            if trigger.search(line.text):
                records.extend(parser.parse(line, cursor))
                break
    return records, steps


def _check(text: str) -> None:
    total = len(text.splitlines())
    records, steps = dispatch(text)
    assert steps <= total
    for record in records:
        span = record.span
        assert span.path == "p.log"
        assert 1 <= span.first_line <= span.last_line <= max(total, 1), (record, total)
        if isinstance(record, ModuleListRecord):
            assert all(span.first_line <= m.line <= span.last_line for m in record.modules)
        if isinstance(record, VerifierStatusRecord):
            sets: tuple[CounterSet, ...] = record.counter_sets
            assert all(span.first_line <= s.line <= span.last_line for s in sets)


line_strategy = st.one_of(
    st.sampled_from(VOCABULARY),
    st.sampled_from(VOCABULARY).map(lambda s: s[: len(s) // 2]),  # truncated lines
    st.text(max_size=80),
    st.sampled_from(
        ["", "   ", "\t", "0: kd> ", "Event[0]:", "<Event xmlns='x'>", "</Event>", '"', "SECTION HEADER #1"]
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line_strategy, max_size=60))
def test_parsers_never_raise_and_spans_stay_inside(lines: list[str]) -> None:
    _check("\n".join(lines))


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400))
def test_arbitrary_text(text: str) -> None:
    _check(text)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(SAMPLE_NAMES), st.integers(min_value=0, max_value=20_000))
def test_every_sample_cut_anywhere(name: str, cut: int) -> None:
    text = (SAMPLES / name).read_text("utf-8")
    _check(text[: cut % (len(text) + 1)])


BLOCK_STARTS = (
    "start             end                 module name",
    "Verify Flags Level 0x1",
    "  Execute Pool Type Count: 1",
    " ====================== Step 1 Driver Compat ====================== ",
    "HVCI incompatible driver scan start",
    "Event[0]:\n  Description: ",
    "Message      : ",
    "<Event xmlns='x'>",
    'Level,Date and Time,Source,Event ID,Task Category\nError,d,S,1,(1),"',
    "0: kd> !dh x",
    "Log Name:      X\nEvent ID: 1\nDescription:",
    "   ProviderName: X\n\nTimeCreated                      Id LevelDisplayName Message",
)
LONG_LINES = (
    "a" + " " * 200_000 + "x",
    "a " * 100_000,
    "module " * 30_000,
    "Reason: a" + " " * 200_000 + ": 1",
    ".sys " * 40_000,
    "<Provider " * 20_000,
)


@pytest.mark.parametrize("start", BLOCK_STARTS)
def test_long_lines_inside_a_block_keep_spans_inside(start: str) -> None:
    """A 200 KB line after (and glued to) each block start. Quadratic matching would take minutes: the time
    is measured by ``benchmarks/bench_long_lines.py`` (N vs 2N), not here, where a busy machine cannot be
    told from slow code."""
    for body in LONG_LINES:
        _check(f"{start}\n{body}\n{start}{body}\n")
