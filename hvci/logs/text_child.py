"""An input's text for the triage view, read and counted in a child process (``Request.text``).

Reading and counting 100 MB of lines in the view's own process held its interpreter for ~0.15 s of CPU,
which its first frames and keys shared and which ``done`` waited for; taking the chunks through a pipe
instead still cost it ~0.1 s of copying. So this child reads the text as ``Input.text_chunks`` gives it and
sends, per chunk of whole lines, ``("text", (chunk, lines, bytes_read, codec))``: the line count, and for a
chunk that is the input's bytes unchanged, where it lies and its CRC-32 (``(offset, length, crc)``), which
the view reads again only when it shows a line of it (:class:`tui.linestore.Stored`), and checks, should
the file have been rewritten meanwhile; any other chunk (decoded from UTF-16, a
line cut at the length cap, a dump's text view) is sent itself. ``("end", bytes_read)`` closes the text,
``("error", message)`` reports an input that cannot be read.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from typing import IO, BinaryIO

from hvci.logs.worker import NICENESS, Outbox, Request, problem
from parsers.source import SNIFF_SIZE, sniff_encoding
from parsers.stream import open_input


class _Places:
    """Where each chunk lies in the input, as long as the chunks are its bytes unchanged. Each chunk is
    compared with the bytes at the place the previous one ended (after the byte-order mark): the first one
    that differs, and every later one, is sent itself."""

    def __init__(self, request: Request) -> None:
        self._data = request.data
        self._file: BinaryIO | None = None
        self._offset: int | None = None
        if self._data is None and request.path is not None:
            with contextlib.suppress(OSError):  # a FIFO or device cannot be read twice: chunks are sent
                self._file = open(request.path, "rb")  # noqa: SIM115 - closed by close()
                if not self._file.seekable():
                    self.close()
        if self._data is not None or self._file is not None:
            self._offset = sniff_encoding(self._bytes(0, SNIFF_SIZE))[1]

    def _bytes(self, offset: int, length: int) -> bytes:
        if self._data is not None:
            return self._data[offset : offset + length]
        assert self._file is not None
        self._file.seek(offset)
        return self._file.read(length)

    def of(self, chunk: bytes | str) -> tuple[int, int, int] | None:
        """``(offset, length, CRC-32)`` of ``chunk`` in the input, or None."""
        start = self._offset
        if start is None or not isinstance(chunk, bytes):
            self._offset = None
            return None
        try:
            same = self._bytes(start, len(chunk)) == chunk
        except OSError:
            same = False
        self._offset = start + len(chunk) if same else None
        return (start, len(chunk), zlib.crc32(chunk)) if same else None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def send_text(request: Request, out: IO[bytes]) -> None:
    """The input's text for the view (see the module's docstring), at the analysis's lower priority: it
    runs beside the analysis, and at the view's priority it took the CPU from the first look at the
    input's head and the view's start-up, delaying the first finding."""
    if hasattr(os, "nice"):
        os.nice(NICENESS)
    outbox = Outbox(out)
    places = _Places(request)
    try:
        inp = open_input(request.path, data=request.data, name=request.name)
        for chunk in inp.text_chunks():
            assert chunk is not None  # a restart comes only when following, which stays in the view
            lines = chunk.count("\n" if isinstance(chunk, str) else b"\n")  # type: ignore[arg-type]
            sent = places.of(chunk) or chunk
            outbox.send("text", (sent, lines, inp.bytes_read, inp.codec))
        outbox.send("end", inp.bytes_read)
    except (OSError, ValueError) as error:
        outbox.send("error", problem(error))
    finally:
        places.close()
