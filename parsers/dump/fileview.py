"""Bounded random access to a dump file: every read is clamped to the file, so a hostile offset or size in
a header can cost at most one short read, never a seek past the end, a huge allocation or an exception.

The file is never read whole: a triage dump is read field by field, a multi-gigabyte kernel dump page by
page as the module-list walk needs them.
"""

from __future__ import annotations

import io
import os
import struct
from typing import BinaryIO

from parsers.source import Source

#: The most bytes one read may ask for (a page table, a stack region, a string): a header field claiming
#: more is read only this far.
MAX_READ = 1 << 20


class DumpFile:
    """Reads of a dump by offset. ``read`` returns fewer bytes (or none) past the end of the file;
    ``u16``/``u32``/``u64`` return ``None`` there, so every caller has to say what a short file means."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self._handle = handle
        self.size = size

    @classmethod
    def open(cls, source: Source) -> DumpFile:
        """The dump behind ``source`` (a path or bytes in memory); ``OSError`` if it cannot be opened."""
        if source.data is not None:
            return cls(io.BytesIO(source.data), len(source.data))
        if source.path is None or not os.path.isfile(source.path):
            raise OSError("a crash dump is read from a file, not from a pipe: give its path")
        handle = open(source.path, "rb")  # noqa: SIM115 - closed by close()
        return cls(handle, os.fstat(handle.fileno()).st_size)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> DumpFile:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def read(self, offset: int, size: int) -> bytes:
        if offset < 0 or size <= 0 or offset >= self.size:
            return b""
        self._handle.seek(offset)
        return self._handle.read(min(size, MAX_READ, self.size - offset))

    def _unpack(self, fmt: str, offset: int) -> int | None:
        data = self.read(offset, struct.calcsize(fmt))
        if len(data) < struct.calcsize(fmt):
            return None
        value: int = struct.unpack(fmt, data)[0]
        return value

    def u16(self, offset: int) -> int | None:
        return self._unpack("<H", offset)

    def u32(self, offset: int) -> int | None:
        return self._unpack("<I", offset)

    def u64(self, offset: int) -> int | None:
        return self._unpack("<Q", offset)

    def pointer(self, offset: int, bits: int) -> int | None:
        return self.u64(offset) if bits == 64 else self.u32(offset)

    def utf16(self, offset: int, size: int) -> str | None:
        """``size`` bytes of UTF-16LE text (cut at the first NUL); ``None`` when the file ends first."""
        data = self.read(offset, size)
        if len(data) < size:
            return None
        return data.decode("utf-16-le", "replace").split("\x00", 1)[0]
