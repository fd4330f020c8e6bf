"""Temporary storage on disk that keeps a big batch's memory flat: what cannot be written out yet.

* :class:`Waiting`: the parts of units that run ahead of the one being written (:mod:`hvci.batch.run`), as
  the pickled bytes their workers sent, in memory up to a budget and then in an anonymous temporary file.
* :class:`SpilledOccurrences`: the occurrences of every finding (:class:`hvci.findings.FindingsBuilder`),
  which are written after all incidents, in a private temporary SQLite database (``sqlite3.connect("")``:
  on disk, gone when closed), read back bucket by bucket in order; :class:`Occurrences` keeps them in
  memory until there are :data:`OCCURRENCES_IN_MEMORY` (a small run opens no database).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from typing import IO, TYPE_CHECKING

from hvci.findings import MemoryOccurrences, Occurrence, OccurrenceStore
from parsers.records import Span

if TYPE_CHECKING:
    import sqlite3

# sqlite3 is imported when a batch is large enough to need it: a one-file run starts without it.

_LENGTH = struct.Struct("<Q")


class SpillError(Exception):
    """A temporary file or database could not be written or read (the temporary folder's disk is full);
    one line saying why."""


def spill_error(error: Exception) -> SpillError:
    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return SpillError(f"cannot keep the run's data in a temporary file: {reason}")


#: Occurrences kept in memory before :class:`Occurrences` moves them to a temporary database.
OCCURRENCES_IN_MEMORY = 20_000


class Waiting:
    """Pickled parts by unit index, in arrival order; the largest unit in memory moves to a file when the
    budget is exceeded."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._memory: dict[int, list[bytes]] = {}
        self._sizes: dict[int, int] = {}
        self._held = 0
        self._files: dict[int, IO[bytes]] = {}

    def add(self, index: int, payload: bytes) -> None:
        self._memory.setdefault(index, []).append(payload)
        self._sizes[index] = self._sizes.get(index, 0) + len(payload)
        self._held += len(payload)
        try:
            while self._held > self._budget and self._memory:
                self._spill(max(self._sizes, key=self._sizes.__getitem__))
        except OSError as error:
            raise spill_error(error) from None

    def _spill(self, index: int) -> None:
        handle = self._files.get(index)
        if handle is None:
            import tempfile  # (with shutil, bz2...: ~5 ms of start-up that a run which never spills skips)

            handle = self._files[index] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by take/close
        for payload in self._memory.pop(index):
            handle.write(_LENGTH.pack(len(payload)))
            handle.write(payload)
        self._held -= self._sizes.pop(index)

    def take(self, index: int) -> Iterator[bytes]:
        """The unit's parts in arrival order (the file's first), forgotten as they are read."""
        handle = self._files.pop(index, None)
        if handle is not None:
            with handle:
                handle.seek(0)
                while header := _read(handle, _LENGTH.size):
                    yield _read(handle, _LENGTH.unpack(header)[0])
        self._held -= self._sizes.pop(index, 0)
        yield from self._memory.pop(index, [])

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()
        self._memory.clear()


def _read(handle: IO[bytes], size: int) -> bytes:
    try:
        return handle.read(size)
    except OSError as error:
        raise spill_error(error) from None


class SpilledOccurrences:
    """An :class:`hvci.findings.OccurrenceStore` in a temporary database."""

    _COLUMNS = "seq, bucket, incident, path, first_line, last_line, offset, count, timestamp"

    def __init__(self) -> None:
        import sqlite3

        self._errors = sqlite3.Error
        self._db: sqlite3.Connection = sqlite3.connect("")
        self._db.execute(
            "CREATE TABLE occurrences (seq INTEGER PRIMARY KEY, bucket INTEGER, incident TEXT, path TEXT, "
            "first_line INTEGER, last_line INTEGER, offset INTEGER, count INTEGER, timestamp TEXT)"
        )
        self._rows: list[tuple[object, ...]] = []

    def add(self, bucket: int, seq: int, occurrence: Occurrence) -> None:
        span = occurrence.source
        self._rows.append(
            (
                seq,
                bucket,
                occurrence.incident_id,
                span.path,
                span.first_line,
                span.last_line,
                span.offset,
                occurrence.count,
                occurrence.timestamp,
            )
        )
        if len(self._rows) >= 4096:
            self._flush()

    def _flush(self) -> None:
        try:
            self._insert()
        except self._errors as error:
            raise spill_error(error) from None

    def _insert(self) -> None:
        self._db.executemany(
            f"INSERT INTO occurrences ({self._COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", self._rows
        )
        self._rows.clear()

    def read(self, buckets: Sequence[int]) -> Iterator[Occurrence]:
        if self._rows:
            self._flush()
        marks = ", ".join("?" * len(buckets))
        try:
            self._db.execute("CREATE INDEX IF NOT EXISTS by_bucket ON occurrences (bucket, seq)")
            rows = self._db.execute(
                f"SELECT incident, path, first_line, last_line, offset, count, timestamp FROM occurrences "
                f"WHERE bucket IN ({marks}) ORDER BY seq",
                tuple(buckets),
            )
            for incident, path, first, last, offset, count, timestamp in rows:
                yield Occurrence(incident, Span(path, first, last, offset), count, timestamp)
        except self._errors as error:
            raise spill_error(error) from None

    def close(self) -> None:
        self._db.close()


class Occurrences:
    """Occurrences in memory, moved to a :class:`SpilledOccurrences` once there are many."""

    def __init__(self, in_memory: int = OCCURRENCES_IN_MEMORY) -> None:
        self._room = in_memory
        self._memory: MemoryOccurrences | None = MemoryOccurrences()
        self._spilled: SpilledOccurrences | None = None

    def add(self, bucket: int, seq: int, occurrence: Occurrence) -> None:
        if self._memory is None:
            assert self._spilled is not None
            self._spilled.add(bucket, seq, occurrence)
            return
        self._memory.add(bucket, seq, occurrence)
        self._room -= 1
        if self._room < 0:
            self._spilled = SpilledOccurrences()
            for moved in self._memory.items():
                self._spilled.add(*moved)
            self._memory = None

    def read(self, buckets: Sequence[int]) -> Iterator[Occurrence]:
        store: OccurrenceStore | None = self._memory or self._spilled
        assert store is not None
        return store.read(buckets)

    def close(self) -> None:
        if self._spilled is not None:
            self._spilled.close()
