"""Encoding sniffing, line splitting, long lines and bad bytes: nothing here may raise on content."""

from __future__ import annotations

import codecs
import io
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from parsers import source
from parsers.chunks import LINE_CAP, Chunk
from parsers.records import Diagnostic
from parsers.source import Source, sniff_encoding
from parsers.stream import iter_records, open_input

TEXT = "0: kd> !analyze -v\nDRIVER_VERIFIER_DETECTED_VIOLATION (c4)\nCaf\u00e9 \u00fcber path\n"


def lines_of(data: bytes) -> tuple[list[str], list[Diagnostic], str]:
    """The decoded lines, the diagnostics the dispatcher reports for them, and the sniffed encoding."""
    inp = open_input(None, data=data, name="t")
    texts = [line.text for line in inp.lines()]
    diagnostics = [r for r in iter_records(inp) if isinstance(r, Diagnostic)]
    assert inp.info().lines == len(texts)
    return texts, diagnostics, inp.info().encoding


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (codecs.BOM_UTF8 + TEXT.encode(), "utf-8-sig"),
        (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "utf-16-le"),
        (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16-be"),
        (TEXT.encode("utf-16-le"), "utf-16-le"),
        (TEXT.encode("utf-16-be"), "utf-16-be"),
        (TEXT.encode("utf-8"), "utf-8"),
        (TEXT.encode("cp1252"), "cp1252"),
    ],
)
def test_every_encoding_decodes_to_the_same_lines(data: bytes, encoding: str) -> None:
    texts, diagnostics, found = lines_of(data)
    assert found == encoding
    assert texts == TEXT.splitlines()
    assert diagnostics == []


def test_plain_ascii_is_utf8() -> None:
    assert lines_of(b"plain ascii\n") == (["plain ascii"], [], "utf-8")


def test_sniff_reports_bom_length() -> None:
    assert sniff_encoding(codecs.BOM_UTF8 + b"x") == ("utf-8-sig", 3)
    assert sniff_encoding(codecs.BOM_UTF16_LE + b"x\x00") == ("utf-16-le", 2)
    assert sniff_encoding(b"x" + b"\xc3") == ("utf-8", 0)  # cut multi-byte sequence at the end
    assert sniff_encoding(b"caf\xe9 au lait") == ("cp1252", 0)


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_line_endings(ending: bytes) -> None:
    texts, _, _ = lines_of(ending.join([b"one", b"two", b"", b"four"]) + ending)
    assert texts == ["one", "two", "", "four"]


def test_mixed_endings_and_missing_final_newline() -> None:
    texts, _, _ = lines_of(b"a\r\nb\rc\nd")
    assert texts == ["a", "b", "c", "d"]


def test_crlf_split_between_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "CHUNK_SIZE", 3)
    monkeypatch.setattr(source, "SNIFF_SIZE", 2)
    texts, _, _ = lines_of(b"ab\r\ncd\r\nef\rgh")
    assert texts == ["ab", "cd", "ef", "gh"]


def test_utf16_split_between_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "CHUNK_SIZE", 5)  # odd: every read ends inside a code unit
    data = codecs.BOM_UTF16_LE + TEXT.replace("\n", "\r\n").encode("utf-16-le")
    texts, diagnostics, encoding = lines_of(data)
    assert (texts, diagnostics, encoding) == (TEXT.splitlines(), [], "utf-16-le")


def test_invalid_utf8_is_replaced_and_reported_once_with_its_line() -> None:
    # the head (what the encoding is chosen from) is clean UTF-8; damage comes later, as in a real log
    data = ("ok line\n" * 1000).encode() + "caf\u00e9\n".encode() + b"bad \xff\xfe here\nand \xc0 again\n"
    texts, diagnostics, encoding = lines_of(data)
    assert encoding == "utf-8"
    assert texts[1000] == "caf\u00e9"
    assert texts[1001] == "bad \ufffd\ufffd here"
    assert len(diagnostics) == 1
    assert diagnostics[0].span.first_line == 1002
    assert "not valid utf-8" in diagnostics[0].message


def test_cp1252_undefined_bytes_are_reported() -> None:
    texts, diagnostics, encoding = lines_of(b"caf\xe9\nx\x81y\n")
    assert encoding == "cp1252"
    assert texts == ["caf\u00e9", "x\ufffdy"]
    assert [d.span.first_line for d in diagnostics] == [2]


def test_utf16_with_a_dangling_byte_is_reported() -> None:
    data = codecs.BOM_UTF16_LE + "abc\n".encode("utf-16-le") + b"\x41"
    texts, diagnostics, _ = lines_of(data)
    assert texts[0] == "abc"
    assert len(diagnostics) == 1


def test_garbage_bytes_never_raise() -> None:
    data = bytes(range(256)) * 64
    texts, _, _ = lines_of(data)
    assert texts


def test_a_10mb_line_is_truncated_once_and_later_lines_keep_their_numbers() -> None:
    data = b"first\n" + b"x" * (10 << 20) + b"\nBugCheck C4, {2000, 0, 0, 0}\n"
    inp = open_input(None, data=data, name="big")
    lines = list(inp.lines())  # how long it takes: benchmarks/bench_long_lines.py
    assert [len(line.text) for line in lines] == [5, LINE_CAP, 28]
    assert [line.number for line in lines] == [1, 2, 3]


def test_long_lines_across_reads_are_cut_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "CHUNK_SIZE", 1000)
    monkeypatch.setattr(source, "LINE_CAP", 100)
    data = b"a\n" + b"y" * 5000 + b"\nb\n" + b"z" * 150 + b"\nc"
    chunks = [c for c in Source("t", data=data).chunks() if isinstance(c, Chunk)]
    joined = b"".join(c.data for c in chunks if isinstance(c.data, bytes))
    assert joined.split(b"\n")[:-1] == [b"a", b"y" * 100, b"b", b"z" * 100, b"c"]
    texts, diagnostics, _ = lines_of(data)
    assert [d.span.first_line for d in diagnostics] == [2, 4]
    assert len(texts) == 5


def test_reading_a_file_and_counting(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_bytes(codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"))
    inp = open_input(path)
    assert inp.encoding == "utf-16-le"
    assert [line.text for line in inp] == TEXT.splitlines()
    assert inp.path == str(path)


# ------------------------------------------------- reading into one buffer: what is handed on is a copy

_PIECES = st.lists(
    st.sampled_from([b"line", b"\r\n", b"\n", b"\r", b"x" * 30, "caf\u00e9".encode(), b"\xff"]), max_size=40
)


class _Trickle(io.RawIOBase):
    """A pipe that has at most ``size`` bytes each time it is read."""

    def __init__(self, data: bytes, size: int) -> None:
        self._data, self._size = memoryview(data), size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(self._size, len(self._data), len(buffer))
        buffer[:count] = self._data[:count]
        self._data = self._data[count:]
        return count


def _chunks(source_: Source, sentinel: bool) -> list[Chunk]:
    return [c for c in source_.chunks(sentinel=sentinel) if isinstance(c, Chunk)]


@settings(max_examples=60)
@given(pieces=_PIECES, size=st.integers(3, 9), sentinel=st.booleans())
# every read ends a line (the buffer is full and nothing is carried); over-long lines
@example(pieces=[b"ab\n", b"cd\n", b"ef\n", b"gh\n", b"ij\n", b"\r\n"], size=3, sentinel=False)
@example(pieces=[b"x" * 30, b"\n", b"x" * 30, b"\r", b"line", b"\n"], size=9, sentinel=True)
def test_a_file_read_into_one_buffer_gives_the_chunks_of_the_same_bytes_in_memory(
    pieces: list[bytes], size: int, sentinel: bool
) -> None:
    """The file is read into one reused buffer (a full read hands the buffer itself to the liner): every
    chunk, carried partial line, CR held for a CRLF and skipped over-long line must be a copy, or a later
    read would change what was handed on before. Chunks are compared once all are read."""
    data = b"".join(pieces)
    with pytest.MonkeyPatch.context() as patch, tempfile.TemporaryDirectory() as folder:
        patch.setattr(source, "CHUNK_SIZE", size)
        patch.setattr(source, "SNIFF_SIZE", 4)
        patch.setattr(source, "LINE_CAP", 20)
        path = Path(folder) / "log"
        path.write_bytes(data)
        from_file = _chunks(Source("log", path=str(path)), sentinel)
        in_memory = _chunks(Source("log", data=data), sentinel)
    assert from_file == in_memory


@settings(max_examples=30)
@given(pieces=_PIECES, size=st.integers(1, 7))
def test_a_stream_read_in_short_pieces_gives_the_lines_of_the_same_bytes_in_memory(
    pieces: list[bytes], size: int
) -> None:
    data = b"".join(pieces)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(source, "CHUNK_SIZE", 8)
        patch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(_Trickle(data, size), 8)))
        streamed = b"".join(c.data for c in _chunks(Source("-", stdin=True), False))  # type: ignore[misc]
    assert streamed == b"".join(c.data for c in _chunks(Source("log", data=data), False))  # type: ignore[misc]


def test_a_short_file_is_read_with_a_buffer_of_its_size(tmp_path: Path) -> None:
    """A short file is read in one read of its size and a byte (a megabyte buffer cost ~1.5 ms of zeroing
    and regrowing a run); a long one, or what is not a regular file, with :data:`source.CHUNK_SIZE`."""
    small, large = tmp_path / "small.log", tmp_path / "large.log"
    small.write_bytes(b"x\n" * 50_000)
    large.write_bytes(b"x\n" * source.CHUNK_SIZE)
    with small.open("rb") as handle:
        assert source._read_size(handle) == 100_001
    with large.open("rb") as handle:
        assert source._read_size(handle) == source.CHUNK_SIZE
    with open(sys.executable, "rb") as handle:  # (a regular file too; the pipe below is not)
        assert source.MIN_READ <= source._read_size(handle) <= source.CHUNK_SIZE
    reader, writer = __import__("os").pipe()
    with open(reader, "rb") as handle, open(writer, "wb"):
        assert source._read_size(handle) == source.CHUNK_SIZE
    assert [len(c.data) for c in Source("small", path=str(small)).chunks()] == [100_000]  # one read


def test_the_pieces_keep_the_size_of_their_buffer() -> None:
    """A file that grows after it was measured is read on in pieces of its buffer's size, whole."""
    data = bytes(range(256)) * 3
    pieces = [bytes(p) for p in source._pieces(io.BytesIO(data).readinto, bytearray(100))]
    assert b"".join(pieces) == data
    assert max(map(len, pieces)) == 100
