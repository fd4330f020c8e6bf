"""The Hyperscan scan of a chunk finds exactly the candidate lines of the ``re`` scan (parsers.fastscan)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers import fastscan, paste, prefilter
from parsers.prefilter import Prefilter
from parsers.registry import PARSERS
from parsers.source import CHUNK_SIZE
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
    assert len(data) < fastscan.MIN_CHUNK  # the ``re`` scan (its compiled searches, as for a long chunk)
    short, prefilter.SHORT_CHUNK = prefilter.SHORT_CHUNK, -1
    try:
        scanner = PREFILTER.scanner(data)
    finally:
        prefilter.SHORT_CHUNK = short
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


@pytest.mark.parametrize("escaped", [False, True])
def test_a_large_input_gives_the_same_records_with_either_scan(
    monkeypatch: pytest.MonkeyPatch, escaped: bool
) -> None:
    """Whole inputs through the feed: candidates, paste markup (escapes undone) and line numbers agree, and
    Hyperscan scans the chunks once the input has proved large."""
    # markdown escapes hide triggers (``STACK\\_TEXT:``) from the scan: the chunk must be normalised first
    lines = [line for p in sorted(SAMPLES.glob("*.txt")) for line in p.read_text("utf-8").splitlines()]
    pasted = [line.replace("_", "\\_") if escaped else line for line in lines if line.isascii()]
    text = "\n".join(pasted * (3 * CHUNK_SIZE // len("\n".join(pasted)) + 1)) + "\n"  # 3-4 chunks
    assert text.isascii() and ("STACK\\_TEXT:" in text) is escaped
    data = text.encode("utf-8")
    scans: list[int] = []
    real = fastscan.FastScan.scan
    monkeypatch.setattr(fastscan.FastScan, "scan", lambda self, d: scans.append(len(d)) or real(self, d))
    monkeypatch.setattr(fastscan, "FAST_AFTER", CHUNK_SIZE)
    fast = list(iter_records(open_input(None, data=data, name="big")))
    by_hyperscan = sum(1 for size in scans if size > 1)  # (its trial scan is of one byte)
    assert 1 <= by_hyperscan < -(-len(data) // CHUNK_SIZE)  # the first chunk is read with re
    monkeypatch.setattr(fastscan, "FAST_AFTER", len(data))  # every chunk scanned with re
    scans.clear()
    assert list(iter_records(open_input(None, data=data, name="big"))) == fast
    assert not scans
    assert len(fast) > 500


def test_no_cache_folder_means_the_re_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compiling the database (~0.2 s) each run would cost what re takes for ~70 MB."""
    monkeypatch.setenv("HVCI_TRIAGE_CACHE_DIR", "")
    assert fastscan.build([b"foo"]) is None
