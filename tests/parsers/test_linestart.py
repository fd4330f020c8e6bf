"""parsers.linestart: the line-start test without a compiled search finds the very lines the search finds."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers import prefilter as prefilter_module
from parsers.prefilter import JUNK_BYTES, JUNK_STR, Prefilter
from parsers.registry import PARSERS
from tests.conftest import REPO

PREFILTER = Prefilter(p.trigger for p in PARSERS)
ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "logs"
SAMPLE_LINES = sorted({line for p in SAMPLES.glob("*.txt") for line in p.read_text("utf-8").splitlines()})
ANCHORS = sorted({a.text for a in (*PREFILTER.line_start, *PREFILTER.floating)})
# what stands before an anchor in pastes, and characters that are junk in one of str and bytes only
JUNK = [" ", "\t", "> ", "* ", "**", "#", "0: ", "- ", "1. ", "`", "\\", "~~~", "\u00a0", "\u3000", "\ufeff"]
ODD = ["\u20ac", "\u00e9", "\u212a", "\u017f", "\u0130", "\u0131", "\u0085", "\u2028", "\r", "\x00", "\udcff"]
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _flip(text: str, mask: int) -> str:
    return "".join(c.swapcase() if mask >> (i % 30) & 1 else c for i, c in enumerate(text))


def _fold_oddly(text: str, at: int) -> str:
    """``text`` with one letter replaced by a non-ASCII one that str case folding takes for it."""
    odd = {"k": "\u212a", "K": "\u212a", "s": "\u017f", "S": "\u017f", "i": "\u0130", "I": "\u0131"}
    spots = [n for n, c in enumerate(text) if c in odd]
    if not spots:
        return text
    n = spots[at % len(spots)]
    return text[:n] + odd[text[n]] + text[n + 1 :]


line = st.one_of(
    st.sampled_from(SAMPLE_LINES),
    st.builds(
        lambda junk, anchor, mask, odd, tail: "".join(junk) + _fold_oddly(_flip(anchor, mask), odd) + tail,
        st.lists(st.sampled_from(JUNK + ODD), max_size=3),
        st.sampled_from(ANCHORS),
        st.integers(0, 3) | st.integers(0, 1 << 30),
        st.integers(-1, 5),
        st.text(max_size=12),
    ),
    st.builds(
        lambda junk, anchor, mask, tail: "".join(junk) + _flip(anchor, mask)[:-1] + tail,
        st.lists(st.sampled_from(JUNK), max_size=2),
        st.sampled_from(ANCHORS),
        st.integers(0, 3),
        st.text(max_size=3),
    ),
    st.builds(lambda a, b: a + b, st.text(max_size=20), st.sampled_from(ANCHORS)),
    st.text(max_size=40),
)


def _compiled_candidates(data: bytes | str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The candidates of the compiled searches (every chunk taken for a long one)."""
    monkeypatch.setattr(prefilter_module, "SHORT_CHUNK", -1)
    scanner = PREFILTER.scanner(data)
    found, position = [], 1
    while (start := scanner.next_candidate(position)) >= 0:
        found.append(start)
        position = data.find(b"\n" if isinstance(data, bytes) else "\n", start) + 1
        if not position:  # the last line, without a newline
            break
    monkeypatch.undo()
    return found


def test_the_junk_characters_are_those_of_the_junk_classes() -> None:
    every_char = "".join(map(chr, range(sys.maxunicode + 1)))
    assert set(re.findall(JUNK_STR.removesuffix("*+"), every_char)) == set(prefilter_module._JUNK_TEXT)
    every_byte = bytes(range(256))
    in_class = re.findall(JUNK_BYTES.removesuffix(b"*+"), every_byte)
    assert set(in_class) == {bytes((b,)) for b in prefilter_module._JUNK_BYTE_VALUES}


@SETTINGS
@given(line)
def test_a_line_matches_where_the_compiled_search_matches(text: str) -> None:
    text = text.replace("\n", " ")
    search = PREFILTER._line_start_s
    assert search is not None
    assert PREFILTER._starts.matches(text) is (search.match("\n" + text) is not None), text


@given(st.lists(line, min_size=1, max_size=30), st.sampled_from(["utf-8", "cp1252"]), st.binary(max_size=30))
@SETTINGS
def test_a_short_bytes_chunk_has_the_candidates_of_the_compiled_searches(
    lines: list[str], encoding: str, noise: bytes
) -> None:
    text = "\n".join(part.replace("\n", " ") for part in lines)
    data = b"\n" + text.encode(encoding, "replace") + noise.replace(b"\n", b" ") + b"\n"
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert PREFILTER.short_candidates(data) == _compiled_candidates(data, monkeypatch)


@given(st.lists(line, min_size=1, max_size=30), st.booleans())
@SETTINGS
def test_a_short_text_chunk_has_the_candidates_of_the_compiled_searches(lines: list[str], end: bool) -> None:
    data = "\n" + "\n".join(part.replace("\n", " ") for part in lines) + ("\n" if end else "")
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert PREFILTER.short_candidates(data) == _compiled_candidates(data, monkeypatch)


def test_a_long_chunk_is_left_to_the_compiled_searches() -> None:
    data = b"\n" + b"x" * prefilter_module.SHORT_CHUNK + b"\n"
    assert PREFILTER.short_candidates(data) is None
    assert PREFILTER.short_candidates(b"\nnothing to see here\n") == []
    assert PREFILTER.short_candidates(b"\nnothing\n  verify flags level 0x1\n") == [9]  # ignoring case


_COMPILED = """
from parsers.dispatch import _DISPATCHERS
(chooser,) = _DISPATCHERS.values()
print([n for n in ("_line_start_s", "_line_start_b") if "match" in vars(getattr(chooser.prefilter, n))])
"""


def _compiled_after(code: str) -> str:
    """Which line-start searches a fresh interpreter has compiled after ``code``."""
    done = subprocess.run(
        [sys.executable, "-c", code + _COMPILED], capture_output=True, text=True, cwd=REPO, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def test_analyze_of_a_paste_compiles_no_line_start_search() -> None:
    """One ``!analyze -v`` paste (a bytes chunk, and lines given back by parsers) is read without compiling
    either ~2,900-character search (~12 ms); the check can fail: a long chunk compiles the bytes one."""
    paste = SAMPLES / "analyze-c4-2000-modern.txt"
    code = f"from cli.main import run\nassert run(['analyze', {str(paste)!r}]) == 1\n"
    assert _compiled_after(code) == "[]"
    long = "open_input(None, data=b'x\\n' * 40000 + b'Bugcheck Analysis\\n')"
    code = f"from parsers.stream import iter_records, open_input\nlist(iter_records({long}))\n"
    assert _compiled_after(code) == "['_line_start_b']"
