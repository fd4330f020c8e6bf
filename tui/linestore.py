"""An input's text for the evidence view, kept as the chunks it was read in, decoded only where looked at.

A 100 MB log is 1.6 million lines. Making a Python string per line as it is read cost seconds of CPU, held
the interpreter lock the UI needs for keys, and took twice the file's size in memory. A :class:`LineStore`
instead keeps each chunk as read (bytes, or text for UTF-16 inputs) with its line count, found by
``bytes.count`` in C. A line is decoded when it is drawn, searched or quoted, a whole chunk at a time, and
the last few decoded chunks are kept. :attr:`LineStore.widest` (for sideways scrolling) is the longest line
decoded so far: measuring every line as it is read would cost as much as making the strings.

A chunk can also be left where it is (:class:`Stored`): a large input's text child (see
:mod:`hvci.logs.text_child`) says where each chunk lies and how many lines it holds, and the chunk is read
again when a line of it is shown, searched or quoted. Should the input have changed meanwhile (its bytes
there no longer have the CRC-32 they had when counted), the chunk keeps its line count and each of its lines
reads as :data:`CHANGED_LINE`: the numbering the findings point to stays, and no other text passes for the
evidence they were found in.

One thread appends (the loader), the UI reads. Appending to a list and then raising
:attr:`LineStore.line_count` are each atomic in CPython, so a reader that looks at the count first never
sees a chunk half added.
"""

from __future__ import annotations

import bisect
import re
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import overload

#: Decoded chunks kept for drawing and quoting (a screen shows lines of one or two chunks).
CACHED_CHUNKS = 6

#: What a line of a stored chunk reads as once the input is no longer what was read.
CHANGED_LINE = "[hvci-triage: this part of the input changed on disk after it was read]"


@dataclass(frozen=True, slots=True)
class Stored:
    """A chunk of whole lines left in the input: ``length`` bytes at ``offset`` of the file at ``path``, or
    of ``data`` (an input in memory), whose CRC-32 was ``crc`` when they were read."""

    path: str | None
    data: bytes | None
    offset: int
    length: int
    crc: int

    def read(self) -> bytes | None:
        """The chunk's bytes; None if they are no longer those that were read (or cannot be read)."""
        if self.data is not None:
            found = self.data[self.offset : self.offset + self.length]
        elif self.path is None:
            return None
        else:
            try:
                with open(self.path, "rb") as handle:
                    handle.seek(self.offset)
                    found = handle.read(self.length)
            except OSError:
                return None
        return found if zlib.crc32(found) == self.crc else None


class LineStore(Sequence[str]):
    """1-based line ``n`` is ``store[n - 1]``; appended to by chunks of whole lines."""

    def __init__(self, decode: Callable[[bytes], str] | None = None) -> None:
        self._decode = decode or (lambda data: data.decode("utf-8", "replace"))
        self._starts: list[int] = []
        self._chunks: list[bytes | str | Stored] = []
        self._cache: OrderedDict[int, list[str]] = OrderedDict()
        self.line_count = 0
        self.widest = 0
        self.generation = 0
        """Raised by :meth:`reset`, so that a reader can tell the text started again."""

    def set_decoder(self, decode: Callable[[bytes], str]) -> None:
        """How ``bytes`` chunks become text (known once the input's encoding is sniffed)."""
        self._decode = decode

    # -- writing (the loader thread) --------------------------------------------------------------------

    def append_chunk(self, data: bytes | str | Stored, lines: int | None = None) -> None:
        """Add whole lines, each ending in ``\\n``; ``lines`` is their count when the reader knows it (it
        must, for a :class:`Stored` chunk)."""
        if lines is None:
            assert not isinstance(data, Stored)
            lines = data.count("\n" if isinstance(data, str) else b"\n")  # type: ignore[arg-type]
        if not lines:
            return
        self._starts.append(self.line_count)
        self._chunks.append(data)
        self.line_count += lines

    def append(self, text: str) -> None:
        """Add one line (pasted text, tests); chunks are the fast way."""
        self.append_chunk(text + "\n")

    def reset(self) -> None:
        """A followed file was truncated or re-created: its text starts again at line 1."""
        self.line_count = 0
        self.widest = 0
        self._starts = []
        self._chunks = []
        self._cache = OrderedDict()
        self.generation += 1

    # -- reading (the UI) -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.line_count

    def _chunk_lines(self, index: int) -> list[str]:
        cached = self._cache.get(index)
        if cached is not None:
            self._cache.move_to_end(index)
            return cached
        chunk = self._chunks[index]
        data = chunk.read() if isinstance(chunk, Stored) else chunk
        if data is None:  # a stored chunk whose input changed since
            end = self._starts[index + 1] if index + 1 < len(self._starts) else self.line_count
            lines = [CHANGED_LINE] * (end - self._starts[index])
        else:
            text = data if isinstance(data, str) else self._decode(data)
            if "\r" in text:
                text = text.replace("\r\n", "\n")
            lines = text.split("\n")[:-1]
        self.widest = max(self.widest, max(map(len, lines), default=0))
        self._cache[index] = lines
        if len(self._cache) > CACHED_CHUNKS:
            self._cache.popitem(last=False)
        return lines

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.line_count))]
        if index < 0:
            index += self.line_count
        if not 0 <= index < self.line_count:
            raise IndexError(index)
        chunk = bisect.bisect_right(self._starts, index) - 1
        return self._chunk_lines(chunk)[index - self._starts[chunk]]

    def __iter__(self) -> Iterator[str]:
        for chunk in range(len(self._chunks)):
            yield from self._chunk_lines(chunk)

    def matching(self, pattern: re.Pattern[str], start: int, end: int) -> Iterator[int]:
        """0-based indexes in ``[start, end)`` of the lines ``pattern`` finds something in."""
        if start >= end:
            return
        chunk = bisect.bisect_right(self._starts, start) - 1
        while chunk < len(self._chunks) and self._starts[chunk] < end:
            first = self._starts[chunk]
            search = pattern.search
            lines = self._chunk_lines(chunk)
            for offset in range(max(0, start - first), min(len(lines), end - first)):
                if search(lines[offset]):
                    yield first + offset
            chunk += 1
