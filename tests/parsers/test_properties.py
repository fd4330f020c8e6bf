"""Property tests: no parser and no ``iter_records`` raises on arbitrary input; spans stay in bounds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers import analyze, banner, kd, ln, stack
from parsers.base import LineCursor
from parsers.chunks import Chunk
from parsers.prefilter import Prefilter
from parsers.records import AnalyzeRecord, Record
from parsers.registry import PARSERS
from parsers.source import Source
from parsers.stream import iter_records, open_input

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "logs"
SAMPLE_LINES = sorted(
    {
        line
        for p in SAMPLES.iterdir()
        if p.suffix in (".txt", ".md")
        for line in p.read_text("utf-8").splitlines()
    }
)
TRIGGERS = [re.compile(p.trigger, re.MULTILINE) for p in PARSERS]
MINE = (kd.PARSER, banner.PARSER, analyze.PARSER, stack.PARSER, ln.PARSER)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# lines of real logs, cut, doubled and joined with junk: reaches the deep branches of every parser
mutated_line = st.one_of(
    st.sampled_from(SAMPLE_LINES),
    st.builds(lambda line, cut: line[:cut], st.sampled_from(SAMPLE_LINES), st.integers(0, 80)),
    st.builds(lambda a, b: a + b, st.sampled_from(SAMPLE_LINES), st.sampled_from(SAMPLE_LINES)),
    st.builds(
        lambda p, line: p + line,
        st.sampled_from(["> ", "    ", "**", "\t", "```"]),
        st.sampled_from(SAMPLE_LINES),
    ),
    st.text(max_size=60),
)
log_text = st.lists(mutated_line, max_size=80).map("\n".join)
separators = st.sampled_from(["\n", "\r\n", "\r"])


@SETTINGS
@given(st.lists(mutated_line, min_size=1, max_size=40))
def test_the_prefilter_never_misses_a_trigger_line(lines: list[str]) -> None:
    lines = [line.replace("\r", " ") for line in lines]  # one list item, one line
    data = ("\n" + "\n".join(lines) + "\n").encode("utf-8", "replace")
    scanner = Prefilter(p.trigger for p in PARSERS).scanner(data)
    candidates = set()
    position = 1
    while (start := scanner.next_candidate(position)) >= 0:
        candidates.add(data.count(b"\n", 0, start))
        position = data.find(b"\n", start) + 1
    texts = data.decode("utf-8").split("\n")[1:-1]
    for number, text in enumerate(texts, start=1):
        if any(t.search(text) for t in TRIGGERS):
            assert number in candidates, text


def check(records: list[Record], lines: int) -> None:
    starts = [r.span.first_line for r in records]
    assert starts == sorted(starts)
    for record in records:
        assert 1 <= record.span.first_line <= record.span.last_line <= max(lines, 1)
        if isinstance(record, AnalyzeRecord):
            inner = [
                s for s in (record.bugcheck and record.bugcheck.span, record.stack and record.stack.span) if s
            ]
            for span in inner:
                assert record.span.first_line <= span.first_line <= span.last_line <= record.span.last_line


@SETTINGS
@given(st.binary(max_size=3000))
def test_iter_records_never_raises_on_bytes(data: bytes) -> None:
    inp = open_input(None, data=data, name="fuzz")
    records = list(iter_records(inp))
    check(records, inp.info().lines)


@SETTINGS
@given(log_text, separators, st.sampled_from(["utf-8", "utf-16-le", "utf-16-be", "utf-8-sig"]))
def test_iter_records_never_raises_on_log_like_text(text: str, newline: str, encoding: str) -> None:
    data = text.replace("\n", newline).encode(encoding, "replace")
    inp = open_input(None, data=data, name="fuzz")
    records = list(iter_records(inp))
    check(records, inp.info().lines)


@SETTINGS
@given(log_text)
def test_each_parser_alone_never_raises_and_stays_in_its_input(text: str) -> None:
    lines = text.splitlines() or [""]
    for parser in MINE:
        cursor = LineCursor.from_text("\n".join(lines[1:]), "fuzz", first_line=2)
        first = LineCursor.from_text(lines[0], "fuzz").next()
        if first is None:
            continue
        records = list(parser.parse(first, cursor))
        check(records, len(lines))


@SETTINGS
@given(
    st.sampled_from(["\u00a0", "\x0b", "\x0c", "\x1c", "\u2003", "\u3000", "  ", "\t> **"]),
    st.sampled_from([p for p in SAMPLE_LINES if any(t.search(p.lstrip()) for t in TRIGGERS)]),
    st.sampled_from(["utf-8", "cp1252", "utf-16-le"]),
)
def test_odd_leading_whitespace_before_a_trigger_is_still_found(space: str, line: str, encoding: str) -> None:
    """Web pastes indent with NBSP and other Unicode spaces: the line is still a candidate."""
    text = space + line.lstrip()
    if text.encode(encoding, "replace").decode(encoding) != text or not any(t.search(text) for t in TRIGGERS):
        return
    bom = b"\xff\xfe" if encoding == "utf-16-le" else b""
    source = Source("t", data=bom + ("noise\n" * 3 + text + "\n").encode(encoding))
    (chunk,) = [c for c in source.chunks() if isinstance(c, Chunk)]
    newline: Any = b"\n" if isinstance(chunk.data, bytes) else "\n"
    data = newline + chunk.data
    start = Prefilter(p.trigger for p in PARSERS).scanner(data).next_candidate(1)
    assert start == data.rfind(newline, 0, len(data) - 1) + 1  # the start of the fourth (last) line
