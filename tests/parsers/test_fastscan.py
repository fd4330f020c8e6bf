"""The Hyperscan scan of a chunk finds exactly the candidate lines of the ``re`` scan (parsers.fastscan)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers import fastscan, paste
from parsers.prefilter import Prefilter
from parsers.registry import PARSERS
from parsers.stream import iter_records, open_input

pytest.importorskip("hyperscan", reason="no Hyperscan wheel for this platform: the re scan is the only one")

PREFILTER = Prefilter(p.trigger for p in PARSERS)
SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "logs"
SAMPLE_LINES = sorted({line for p in SAMPLES.glob("*.txt") for line in p.read_text("utf-8").splitlines()})
ANCHORS = sorted({a.text for a in (*PREFILTER.line_start, *PREFILTER.floating)})
JUNK = [
    " ",
    "\t",
    "> ",
    "* ",
    "**",
    "#",
    "0: ",
    "12",
    "- ",
    "1. ",
    "`",
    "\\",
    "~~~",
    "\u00a0",
    "\u3000",
    "\ufeff",
]


def _flip(text: str, mask: int) -> str:
    return "".join(c.swapcase() if mask >> (i % 30) & 1 else c for i, c in enumerate(text))


line = st.one_of(
    st.sampled_from(SAMPLE_LINES),
    st.builds(
        lambda junk, anchor, mask, tail: "".join(junk) + _flip(anchor, mask) + tail,
        st.lists(st.sampled_from(JUNK), max_size=3),
        st.sampled_from(ANCHORS),
        st.integers(0, 3) | st.integers(0, 1 << 30),
        st.text(max_size=20),
    ),
    st.builds(lambda a, b: a + b, st.text(max_size=20), st.sampled_from(ANCHORS)),
    st.text(max_size=40),
)


def _re_candidates(data: bytes) -> list[int]:
    assert len(data) < fastscan.MIN_CHUNK  # the ``re`` scan
    scanner = PREFILTER.scanner(data)
    found, position = [], 1
    while (start := scanner.next_candidate(position)) >= 0:
        found.append(start)
        position = data.find(b"\n", start) + 1
    return found


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(line, min_size=1, max_size=30),
    st.sampled_from(["utf-8", "cp1252"]),
    st.binary(max_size=30),
)
def test_hyperscan_finds_the_lines_re_finds(lines: list[str], encoding: str, noise: bytes) -> None:
    text = "\n".join(part.replace("\n", " ").replace("\r", " ") for part in lines)
    data = b"\n" + text.encode(encoding, "replace") + noise.replace(b"\n", b" ") + b"\n"
    fast = PREFILTER.fast_scan()
    assert fast is not None
    assert fast.candidates(data) == _re_candidates(data)


def test_a_large_chunk_is_scanned_with_hyperscan_and_finds_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    sample = "\n".join(SAMPLE_LINES).encode("utf-8") + b"\n"
    data = b"\n" + sample
    expected = _re_candidates(data)
    assert len(expected) > 100
    calls: list[int] = []
    real = fastscan.FastScan.candidates
    monkeypatch.setattr(
        fastscan.FastScan, "candidates", lambda self, d: calls.append(len(d)) or real(self, d)
    )
    monkeypatch.setattr(fastscan, "MIN_CHUNK", len(data))
    scanner = Prefilter(p.trigger for p in PARSERS).scanner(data)
    found, position = [], 1
    while (start := scanner.next_candidate(position)) >= 0:
        found.append(start)
        position = data.find(b"\n", start) + 1
    assert calls.count(len(data)) == 1  # (and one trial scan of the database)
    assert found == expected


def test_the_database_is_cached_and_a_damaged_entry_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HVCI_TRIAGE_CACHE_DIR", str(tmp_path))
    patterns = [b"\\nfoo", b"bar"]
    data = b"\nfoo x\nno\nabar\n"
    assert fastscan.build(patterns).candidates(data) == [1, 10]  # type: ignore[union-attr]
    (entry,) = tmp_path.glob("prefilter-*.bin")
    written = entry.read_bytes()
    assert fastscan.build(patterns).candidates(data) == [1, 10]  # type: ignore[union-attr]
    assert entry.read_bytes() == written  # read back, not written again
    entry.write_bytes(written[:-7] + b"garbage")
    assert fastscan.build(patterns).candidates(data) == [1, 10]  # type: ignore[union-attr]
    assert entry.read_bytes() == written


def test_no_hyperscan_means_the_re_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "hyperscan", None)  # import fails
    assert fastscan.build([b"foo"]) is None


MARKUP = [
    "\\*",
    "\\_",
    "x\\_y",
    "\\`",
    "\\[",
    "&gt;",
    "&#62;",
    "&#x3e;",
    "&amp",
    "<br>",
    "<PRE>",
    "</code >",
    "<b",
    "{%",
    "{ %",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(st.sampled_from(MARKUP), st.text(max_size=12), st.sampled_from(SAMPLE_LINES)), max_size=12
    )
)
def test_hyperscan_finds_paste_markup_where_re_does(parts: list[str]) -> None:
    data = b"\n" + "".join(parts).encode("utf-8", "replace") + b"\n"
    fast = PREFILTER.fast_scan()
    assert fast is not None
    expected = any(paste._holds(data, char, pattern) for char, pattern in paste._IN_BYTES)
    assert fast.scan(data)[1] is expected


def test_a_large_input_gives_the_same_records_with_either_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole chunks: candidates, paste markup (escapes, entities, tags undone) and line numbers agree."""
    # markdown escapes hide triggers (``STACK\\_TEXT:``) from the scan: the chunk must be normalised first
    lines = [line for p in sorted(SAMPLES.glob("*.txt")) for line in p.read_text("utf-8").splitlines()]
    pasted = [line.replace("_", "\\_") for line in lines if line.isascii()]
    text = "\n".join(pasted * (fastscan.MIN_CHUNK // len("\n".join(pasted)) + 2)) + "\n"
    assert text.isascii() and "STACK\\_TEXT:" in text
    data = text.encode("utf-8")
    fast = list(iter_records(open_input(None, data=data, name="big")))
    monkeypatch.setattr(fastscan, "MIN_CHUNK", len(data) * 2)  # every chunk scanned with re
    assert list(iter_records(open_input(None, data=data, name="big"))) == fast
    assert len(fast) > 500
