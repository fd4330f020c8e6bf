"""Input bytes -> decoded chunks of whole lines, streamed, with encoding sniffing and follow mode.

WinDbg writes ``.logopen`` logs as ANSI, ``.logopen /u`` logs as UTF-16 LE (with or without a BOM), users
paste UTF-8, and a live session file keeps growing while we read it. This module turns any of those into
a stream of :class:`parsers.chunks.Chunk` s: large runs of complete lines, ``\\n``-terminated, never the
whole file at once, so that memory stays flat however big the log is (:mod:`parsers.chunks` cuts them).

For ASCII-compatible encodings (UTF-8, cp1252) a chunk keeps its *bytes*: the dispatcher searches bytes and
decodes only the few lines a parser reads, which is what makes a 300 MB log cheap. UTF-16 is decoded to
``str`` as it streams. Undecodable bytes are replaced and reported once; lines longer than
:data:`LINE_CAP` are truncated, each reported once (as an :class:`Issue` the dispatcher turns into a
``Diagnostic`` with its line number); nothing here raises on bad content (only an unreadable file raises
``OSError``).
"""

from __future__ import annotations

import codecs
import os
import re
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, Literal

from parsers.chunks import LINE_CAP, Chunk, Issue, Liner, Restart

CHUNK_SIZE = 1 << 20  # bytes per read: per-chunk Python overhead vanishes, and a chunk stays in the CPU cache
SNIFF_SIZE = 4096  # bytes looked at to choose an encoding
POLL_SECONDS = 0.2  # follow mode: how often a quiet file is checked for growth
#: A collector's session file (``parsers.session``) starts with its header record. Its lines are whole JSON
#: records, each holding a command's output, so they may be far longer than a log line.
SESSION_HEAD = re.compile(rb'^\s*\{[^\n]{0,400}?"format"\s*:\s*"hvci-triage-session"')
SESSION_LINE_CAP = 16 << 20

ASCII_COMPATIBLE = ("utf-8", "utf-8-sig", "cp1252")


def sniff_encoding(head: bytes) -> tuple[str, int]:
    """The encoding of a file starting with ``head`` and the length of its byte-order mark.

    BOMs decide first; then a NUL byte in (nearly) every other position of the first KiB means UTF-16
    without BOM (``.logopen /u`` can write one); then strict UTF-8 (a multi-byte sequence cut by the end
    of ``head`` still counts); else cp1252, the ANSI code page WinDbg logs are written in.
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", 3
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le", 2
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be", 2
    sample = head[:1024]
    pairs = len(sample) // 2
    if pairs >= 2:
        even_nuls = sample[0 : 2 * pairs : 2].count(0)
        odd_nuls = sample[1 : 2 * pairs : 2].count(0)
        if odd_nuls >= 0.4 * pairs and even_nuls <= 0.05 * pairs:
            return "utf-16-le", 0
        if even_nuls >= 0.4 * pairs and odd_nuls <= 0.05 * pairs:
            return "utf-16-be", 0
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        if not (error.reason == "unexpected end of data" and error.start >= len(head) - 3):
            return "cp1252", 0
    return "utf-8", 0


class Source:
    """One input's bytes (a file, stdin or pasted bytes) as a stream of :class:`Chunk` s."""

    def __init__(
        self,
        name: str,
        *,
        path: str | None = None,
        data: bytes | None = None,
        stdin: bool = False,
        encoding: str | None = None,
    ) -> None:
        self.name = name
        self.path = path
        self.data = data
        self.stdin = stdin
        self.encoding: str | None = encoding
        self._forced = encoding is not None  # pasted text: we encoded it ourselves, nothing to sniff
        self.bytes_read = 0
        self._codec = "utf-8" if encoding in (None, "utf-8-sig") else encoding
        self._stream_head: bytes | None = None  # what head() took from a stream, handed out again by _raw
        self._once: BinaryIO | Literal[False] | None = None  # see _stream
        self.session = False  # a collector's session file (known once the head was sniffed)

    def head(self, size: int) -> bytes:
        """The first ``size`` bytes (fewer when the input is shorter), to tell what the input is. From a
        stream (stdin, a FIFO) they are read now and handed out again when the chunks are read. Raises
        ``OSError``."""
        if self.data is not None:
            return self.data[:size]
        stream = self._stream()
        if stream is not None:
            if self._stream_head is None:
                read = getattr(stream, "read1", stream.read)
                taken = bytearray()
                while len(taken) < size:
                    piece = read(size - len(taken))
                    if not piece:
                        break
                    taken += piece
                self._stream_head = bytes(taken)
            return self._stream_head[:size]
        assert self.path is not None
        with open(self.path, "rb") as handle:
            return handle.read(size)

    def whole_stream(self) -> bytes | None:
        """A stream input (stdin, a FIFO) read to its end, the sniffed head included, for readers that need
        the whole input at once (an event log); ``None`` for a regular file or bytes in memory."""
        stream = None if self.data is not None else self._stream()
        if stream is None:
            return None
        return self.head(1 << 62) + stream.read()

    def _stream(self) -> BinaryIO | None:
        """The input when it can be read only once: stdin, or a path that is not a regular file (a FIFO,
        ``/dev/fd/N`` from a shell's process substitution, a device), opened once on first use; ``None``
        for regular files, which are opened again as often as needed. Raises ``OSError``."""
        if self._once is None:
            if self.stdin or self.path is None:
                self._once = sys.stdin.buffer
            elif stat.S_ISREG(os.stat(self.path).st_mode):
                self._once = False
            else:
                self._once = open(self.path, "rb")  # noqa: SIM115 - read to the end by _raw
        return self._once or None

    # -- reading raw bytes -------------------------------------------------------------------------------
    def _raw(self, follow: bool, stop: threading.Event | None) -> Iterator[bytes | bytearray | Restart]:
        """Raw byte pieces; in follow mode an empty piece means "nothing new for now". A piece read from a
        file or a stream is the reading buffer itself (:func:`_pieces`): valid until the next one is
        asked for, and never kept."""
        if self.data is not None:
            for start in range(0, len(self.data), CHUNK_SIZE):
                yield self.data[start : start + CHUNK_SIZE]
            return
        stream = self._stream()
        if stream is not None:
            if self._stream_head:
                yield self._stream_head
                self._stream_head = b""
            reader: Any = stream  # BinaryIO declares neither readinto1 nor readinto (binary streams do)
            read_into = getattr(reader, "readinto1", reader.readinto)  # readinto1: what a pipe has now
            try:
                yield from _pieces(read_into, bytearray(CHUNK_SIZE), stop)
            finally:
                if not self.stdin and self.path is not None:
                    stream.close()  # a FIFO or device we opened; stdin is the process's
            return
        assert self.path is not None
        yield from self._file(self.path, follow, stop)

    def _file(
        self, path: str, follow: bool, stop: threading.Event | None
    ) -> Iterator[bytes | bytearray | Restart]:
        handle = open(path, "rb")  # noqa: SIM115 - reopened on re-creation, closed in finally
        buffer = bytearray(CHUNK_SIZE if follow else _read_size(handle))
        try:
            while True:
                yield from _pieces(handle.readinto, buffer)
                if not follow or (stop is not None and stop.is_set()):
                    return
                yield b""
                if stop is not None:
                    if stop.wait(POLL_SECONDS):
                        return
                else:
                    time.sleep(POLL_SECONDS)
                reason = self._changed(handle, path)
                if reason is not None:
                    handle.close()
                    handle = open(path, "rb")  # noqa: SIM115
                    yield Restart(f"{self.name} {reason}; reading it again from the start")
        finally:
            handle.close()

    @staticmethod
    def _changed(handle: BinaryIO, path: str) -> str | None:
        """Why a followed file must be read again from the start, or ``None``."""
        try:
            now = os.stat(path)
        except OSError:
            return None  # being replaced right now: look again at the next poll
        mine = os.fstat(handle.fileno())
        if (now.st_ino, now.st_dev) != (mine.st_ino, mine.st_dev):
            return "was re-created"
        if now.st_size < handle.tell():
            return "was truncated"
        return None

    # -- decoding ----------------------------------------------------------------------------------------
    @property
    def codec(self) -> str:
        """The codec that decodes this input's bytes chunks."""
        return self._codec

    def decode_line(self, raw: bytes) -> str:
        """Text of one line of a bytes chunk (undecodable bytes were reported when the chunk was read)."""
        return raw.decode(self._codec, "replace")

    def _sniff(self, head: bytes) -> int:
        encoding, bom = sniff_encoding(head)
        self.encoding = encoding
        self._codec = "utf-8" if encoding == "utf-8-sig" else encoding
        self.session = encoding in ASCII_COMPATIBLE and SESSION_HEAD.match(head, bom) is not None
        return bom

    def chunks(
        self, *, follow: bool = False, stop: threading.Event | None = None, sentinel: bool = False
    ) -> Iterator[Chunk | Restart]:
        """The input as chunks of complete lines (and a :class:`Restart` when a followed file is reset).

        In follow mode an empty chunk is yielded whenever the file is quiet, so that the consumer can look
        at ``stop``. With ``sentinel`` every non-empty chunk starts with a ``\n`` that is not input (see
        ``parsers.chunks.Liner``) and issue offsets count it.
        """
        self.bytes_read = 0
        if not self._forced:
            self.encoding = None
        head = bytearray()
        raw = self._raw(follow, stop)
        state = _Decoding(self, sentinel)
        for piece in raw:
            if isinstance(piece, Restart):
                yield from state.finish()
                head.clear()
                state = _Decoding(self, sentinel)
                if not self._forced:
                    self.encoding = None
                yield piece
                continue
            self.bytes_read += len(piece)
            if self.bytes_read > CHUNK_SIZE:
                _settle_allocator()
            if self.encoding is None:
                if not head and len(piece) >= SNIFF_SIZE:  # the usual first read: sniffed where it is
                    bom = self._sniff(bytes(piece[:SNIFF_SIZE]))
                    piece = piece[bom:] if bom else piece
                else:
                    head += piece
                    if len(head) < SNIFF_SIZE and piece:
                        continue
                    if not head:
                        yield Chunk(b"")
                        continue
                    bom = self._sniff(bytes(head[:SNIFF_SIZE]))
                    piece = bytes(memoryview(head)[bom:])
                    head.clear()
            chunk = state.feed(piece)
            if chunk is not None:
                yield chunk
            elif not piece:
                yield Chunk(b"")
        if self.encoding is None and head:
            bom = self._sniff(bytes(head[:SNIFF_SIZE]))
            chunk = state.feed(bytes(head[bom:]))
            if chunk is not None:
                yield chunk
        yield from state.finish()
        if self.encoding is None:
            self.encoding = "utf-8"


#: A block that :func:`_settle_allocator` frees once (see there): above the few chunks alive at once, and
#: within glibc's ceiling for its adaptive threshold (32 MiB on 64-bit systems).
_SETTLING_BLOCK = 8 << 20
_settled = False


def _settle_allocator() -> None:
    """Let the C allocator keep a long input's freed chunks for the next ones (once per process).

    Every chunk the feed reads is new ``bytes`` of about a megabyte (immutable, and kept while the next one
    is read, for the look behind a block), and glibc's defaults give most such memory back to the kernel
    as soon as it is free: blocks beyond its threshold (128 KiB at first, raised to the largest mmap'd block
    freed so far) are mapped and unmapped, and a free top of the heap beyond twice that is trimmed, so every
    chunk paid for faulting its pages in anew (issue 16: 45,800 minor faults and 0.21-0.29 s of system time
    for ``analyze`` of 400 MB; grep: 0.03 s). Freeing one larger block raises both thresholds as glibc
    documents (mallopt(3), M_MMAP_THRESHOLD), and the chunks' memory is then reused: 7,900 faults (most of
    them start-up's), 0.14 s, the same peak RSS. The block is calloc'ed (``bytes(n)``): its pages are never
    touched. Other allocators just free it. The environment (``MALLOC_MMAP_THRESHOLD_``...) would do the
    same, but only for a user who sets it, and for every process started from ours."""
    global _settled
    if not _settled:
        _settled = True
        block = bytes(_SETTLING_BLOCK)
        del block


#: The smallest buffer a file is read with (what a file that grows while it is read is read on in).
MIN_READ = 64 << 10


def _read_size(handle: BinaryIO) -> int:
    """The buffer a file is read with: :data:`CHUNK_SIZE`, or a regular file's size and one byte when that
    is smaller (at least :data:`MIN_READ`), so that the whole file still comes in one read, as the same
    bytes in memory come in one slice. A megabyte buffer for a short file was zeroed, cut to the file and
    grown back for the read that finds its end: ~1.5 ms of every short input's run."""
    info = os.fstat(handle.fileno())
    if not stat.S_ISREG(info.st_mode):
        return CHUNK_SIZE
    return min(CHUNK_SIZE, max(MIN_READ, info.st_size + 1))


def _pieces(
    read_into: Callable[[bytearray], int | None], buffer: bytearray, stop: threading.Event | None = None
) -> Iterator[bytearray]:
    """What ``read_into`` reads until the end of its input (or until ``stop`` is set), a ``buffer`` (of the
    length it is given with) at a time. Each piece is ``buffer`` itself, cut to what was read and read into
    again for the next one: the liner copies out the lines it keeps (:class:`parsers.chunks.Liner`), so a
    megabyte read costs neither a fresh allocation, whose pages the kernel would map anew, nor a copy (a
    short read, from a pipe or at the end of a file, shrinks the buffer in place; it grows back before the
    next read)."""
    size = len(buffer)
    while not (stop is not None and stop.is_set()):
        if len(buffer) < size:
            buffer += bytes(size - len(buffer))
        count = read_into(buffer)
        if not count:
            return
        if count < len(buffer):
            del buffer[count:]
        yield buffer


class _Decoding:
    """Per-pass decoding state: the incremental decoder (UTF-16) or the validity check (bytes), the liner."""

    def __init__(self, source: Source, sentinel: bool) -> None:
        self.source = source
        self._sentinel = sentinel
        self._liner_b: Liner[bytes] | None = None
        self._liner_s: Liner[str] | None = None
        self._decoder: codecs.IncrementalDecoder | None = None
        self._reported = False

    def _bad_bytes(self) -> str:
        return f"bytes that are not valid {self.source.encoding} replaced (further ones are not reported)"

    def feed(self, piece: bytes | bytearray) -> Chunk | None:
        """The lines ``piece`` completes (it may be the reading buffer: nothing keeps it)."""
        encoding = self.source.encoding
        if encoding in ASCII_COMPATIBLE:
            if self._liner_b is None:
                cap = SESSION_LINE_CAP if self.source.session else LINE_CAP
                self._liner_b = Liner(b"\n", b"\r", cap, sentinel=self._sentinel)
            chunk = self._liner_b.feed(piece)  # type: ignore[arg-type] # the liner copies a bytearray
            return self._checked(chunk)
        if self._liner_s is None:
            self._liner_s = Liner("\n", "\r", sentinel=self._sentinel)
            self._decoder = codecs.getincrementaldecoder(encoding or "utf-16-le")("strict")
        chunk = self._liner_s.feed(self._decode(piece, final=False))
        return self._with_pending(chunk) if chunk is not None else None

    _pending = False  # a UTF-16 decoding problem waiting for the chunk it belongs to

    def _decode(self, piece: bytes | bytearray, *, final: bool) -> str:
        assert self._decoder is not None and self._liner_s is not None
        state = self._decoder.getstate()
        try:
            return self._decoder.decode(piece, final)
        except UnicodeDecodeError:
            replacing = codecs.getincrementaldecoder(self.source.encoding or "utf-16-le")("replace")
            replacing.setstate(state)
            self._decoder = replacing
            self._pending = True
            return replacing.decode(piece, final)

    def _checked(self, chunk: Chunk | None) -> Chunk | None:
        """Report (once) bytes the chunk's encoding cannot decode; ASCII chunks cost one fast check."""
        if chunk is None or self._reported:
            return chunk
        data = chunk.data
        assert isinstance(data, bytes)
        if data.isascii():
            return chunk
        try:
            data.decode(self.source._codec)
        except UnicodeDecodeError as error:
            self._reported = True
            return Chunk(data, (Issue(error.start, self._bad_bytes()), *chunk.issues))
        return chunk

    def finish(self) -> Iterator[Chunk]:
        if self._liner_s is not None and self._decoder is not None:
            tail = self._liner_s.feed(self._decode(b"", final=True))
            if tail is not None:
                yield self._with_pending(tail)
        for liner in (self._liner_b, self._liner_s):
            if liner is None:
                continue
            last = liner.flush()
            if last is not None:
                yield self._with_pending(self._checked(last) if liner is self._liner_b else last)  # type: ignore[arg-type]

    def _with_pending(self, chunk: Chunk) -> Chunk:
        if not self._pending:
            return chunk
        self._pending = False
        self._reported = True
        where = chunk.data.find("\ufffd") if isinstance(chunk.data, str) else 0
        return Chunk(chunk.data, (Issue(max(where, 0), self._bad_bytes()), *chunk.issues))
