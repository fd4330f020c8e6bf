"""The evidence view's line store: chunks in, the same lines out as splitting the text would give."""

from __future__ import annotations

import re
import zlib
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tui.linestore import CACHED_CHUNKS, CHANGED_LINE, LineStore, Stored

_LINE = st.text(
    alphabet=st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), max_size=12
)


def _store(chunks: list[list[str]], crlf: bool, as_bytes: bool) -> LineStore:
    store = LineStore()
    end = "\r\n" if crlf else "\n"
    for chunk in chunks:
        text = "".join(line + end for line in chunk)
        store.append_chunk(text.encode("utf-8") if as_bytes else text)
    return store


@given(st.lists(st.lists(_LINE, max_size=6), max_size=12), st.booleans(), st.booleans())
def test_lines_read_back_as_written_whatever_the_chunking(
    chunks: list[list[str]], crlf: bool, as_bytes: bool
) -> None:
    store = _store(chunks, crlf, as_bytes)
    lines = [line for chunk in chunks for line in chunk]
    assert len(store) == len(lines)
    assert [store[i] for i in range(len(lines))] == lines  # random access, across the chunk cache
    assert list(store) == lines
    assert store[1:4] == lines[1:4]
    if lines:
        assert store[-1] == lines[-1]
        assert store.widest == max(map(len, lines))


def test_only_some_decoded_chunks_are_kept_and_search_finds_lines_in_every_chunk() -> None:
    store = LineStore()
    for chunk in range(CACHED_CHUNKS * 3):
        store.append_chunk(b"".join(b"chunk %d line %d\n" % (chunk, n) for n in range(5)))
    pattern = re.compile("line 3")
    assert list(store.matching(pattern, 0, len(store))) == [n * 5 + 3 for n in range(CACHED_CHUNKS * 3)]
    assert list(store.matching(pattern, 9, 19)) == [13, 18]
    assert len(store._cache) <= CACHED_CHUNKS


def test_reset_starts_again_at_line_one_and_says_so() -> None:
    store = LineStore(decode=lambda data: data.decode("cp1252"))
    store.append_chunk(b"caf\xe9\n")
    assert store[0] == "café"
    generation = store.generation
    store.reset()
    store.append_chunk(b"new\n")
    assert (len(store), store[0], store.generation) == (1, "new", generation + 1)


def _stored(path: Path | None, data: bytes | None, offset: int, length: int) -> Stored:
    """A chunk as the text child places it: where it lies, and the CRC-32 of its bytes now."""
    content = data if data is not None else path.read_bytes()  # type: ignore[union-attr]
    crc = zlib.crc32(content[offset : offset + length])
    return Stored(None if path is None else str(path), data, offset, length, crc)


def test_a_stored_chunk_is_read_from_the_input_when_a_line_of_it_is_shown(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    path.write_bytes(b"\xef\xbb\xbfone\r\ntwo\nthree\n")
    store = LineStore()
    store.append_chunk(_stored(path, None, 3, 10), 2)  # "one\r\ntwo\n", after the byte-order mark
    store.append_chunk(_stored(None, b"zero\nthree\n", 5, 6), 1)
    assert list(store) == ["one", "two", "three"]


def test_a_stored_chunk_of_an_input_that_changed_is_not_shown_as_its_text(tmp_path: Path) -> None:
    """Its lines keep their numbers and say the input changed: no other text passes for the evidence."""
    path = tmp_path / "big.log"
    path.write_bytes(b"one\ntwo\nthree\n")
    store = LineStore()
    store.append_chunk(_stored(path, None, 0, 8), 2)
    store.append_chunk(_stored(path, None, 8, 6), 1)
    path.write_bytes(b"ONE\nTWO\nthree\n")  # rewritten in place, same size: the first chunk differs
    assert list(store) == [CHANGED_LINE, CHANGED_LINE, "three"]
    path.write_bytes(b"one\n")  # truncated
    store._cache.clear()
    assert list(store) == [CHANGED_LINE] * 3
    path.unlink()
    store._cache.clear()
    assert list(store) == [CHANGED_LINE] * 3 and len(store) == 3
