"""What the analysis keeps of a crash between two classifications, held compact.

A later ``lm``, ``ln`` or the final pass may classify a crash again (:mod:`hvci.logs.pipeline`), so up to
``MAX_ENRICHABLE`` crash groups are kept with the incidents they gave. As Python objects that is about seven
kilobytes a crash, and peak memory grew with the crashes of a long log (issue 16); held as one compressed
pickle each it is well under one, rebuilt only when the crash is classified again. Even so a 400 MB log's
1,900 kept crashes and their final incidents held 2.3 MB of pickles, so the oldest pickles beyond
:data:`PACKED_IN_MEMORY` bytes go to a temporary file (:class:`_SpillFile`).
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hvci.logs.correlate import Group
    from hvci.model import Incident

#: Bytes of packed values a :class:`Packer` holds in memory; older ones go to its temporary file. Above
#: what the final window's incidents take between two looks (``SETTLE_EVERY`` incidents of a few hundred
#: bytes: a log dense with short-lived incidents reads few of them back from the file), and small enough
#: that a long log's kept crashes do not make the peak grow (issue 16).
PACKED_IN_MEMORY = 256 << 10


class Packer:
    """Holds what the analysis keeps for later as compressed pickles (parser records, groups and incidents
    are msgspec Structs: they pickle whole and compare equal once loaded), each under an integer ticket,
    until :meth:`drop`. The first value packed becomes the compression dictionary of the rest: a kept crash
    is a kilobyte of pickle, too little for zlib to find the class references, field values and texts it
    shares with every other crash of the input, which halves what each one takes.

    The newest :data:`PACKED_IN_MEMORY` bytes stay in memory, older ones move to a temporary file (made on
    first need: a small input makes none); a value is rebuilt from either. If no file can be written (a
    full temporary disk) the pickles stay in memory, as they did before there was a file."""

    def __init__(self, in_memory: int | None = None) -> None:
        self._zdict: bytes | None = None
        self._in_memory = PACKED_IN_MEMORY if in_memory is None else in_memory
        self._memory: OrderedDict[int, bytes] = OrderedDict()  # ticket -> pickle, oldest first
        self._held = 0  # bytes in _memory
        self._file: _SpillFile | None = None
        self._tickets = 0

    def pack(self, value: object) -> int:
        """A ticket for ``value``, rebuilt by :meth:`unpack` until it is given to :meth:`drop`."""
        import pickle  # with zlib: ~3 ms of start-up, for inputs that have crashes only
        import zlib

        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        if self._zdict is None:
            self._zdict = data[-_ZDICT_BYTES:]
        compressor = zlib.compressobj(1, zdict=self._zdict)
        blob = compressor.compress(data) + compressor.flush()
        self._tickets += 1
        self._memory[self._tickets] = blob
        self._held += len(blob)
        if self._held > self._in_memory:
            self._spill()
        return self._tickets

    def unpack(self, ticket: int) -> Any:
        """The value packed under ``ticket`` (only ever bytes this process packed itself)."""
        import pickle
        import zlib

        assert self._zdict is not None
        decompressor = zlib.decompressobj(zdict=self._zdict)
        blob = self.blob(ticket)
        return pickle.loads(decompressor.decompress(blob) + decompressor.flush())

    def blob(self, ticket: int) -> bytes:
        """The compressed pickle held under ``ticket``, from memory or from the file."""
        blob = self._memory.get(ticket)
        if blob is not None:
            return blob
        assert self._file is not None
        return self._file.read(ticket)

    def drop(self, ticket: int) -> None:
        """Forget the value packed under ``ticket`` (its room in the file is used again)."""
        blob = self._memory.pop(ticket, None)
        if blob is not None:
            self._held -= len(blob)
        elif self._file is not None:
            self._file.drop(ticket)

    def _spill(self) -> None:
        """Move the oldest pickles to the file until half of the memory budget is used."""
        if self._file is None:
            try:
                self._file = _SpillFile()
            except OSError:
                self._in_memory = 1 << 62  # no file: everything stays in memory
                return
        while self._held > self._in_memory // 2:
            ticket, blob = self._memory.popitem(last=False)
            self._held -= len(blob)
            self._file.add(ticket, blob)
        if not self._file.flush():
            self._in_memory = 1 << 62  # the disk is full: what was not written stays in the file's buffer

    def close(self) -> None:
        """Remove the temporary file (the tickets held there can no longer be unpacked)."""
        if self._file is not None:
            self._file.close()


class _SpillFile:
    """Packed values in an anonymous temporary file: appended in batches, read back one by one, dropped;
    when more than half of the file is dropped values it is rewritten with the live ones only, so it stays
    within twice what it holds. Where each value is: a table of machine integers indexed by ticket (tickets
    come in increasing order), 16 bytes a value where a dict of Python ints took about 90 (a bytearray read
    through memoryview: the array module would cost 0.45 MB of resident shared library)."""

    #: bytes written at once; also the size below which the file is never rewritten
    BATCH = 64 * 1024

    def __init__(self) -> None:
        import tempfile  # (~5 ms of start-up: only when a long input first needs the file)

        self._handle: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._base = 0  # the ticket of the table's first slot
        self._first = 0  # no value before this slot
        self._table = bytearray()  # per slot: offset, length (0: no value; a packed value is never empty)
        self._size = 0  # bytes in the file, the buffer's included
        self._written = 0  # bytes written to the file (the buffer holds the rest)
        self._buffer = bytearray()
        self._dropped = 0  # bytes in the file no ticket points at
        self._broken = False  # a write failed: the buffer keeps whatever comes next

    def _slots(self) -> memoryview:
        """The table as 64-bit integers: slot ``i`` is items ``2i`` (offset) and ``2i + 1`` (length)."""
        return memoryview(self._table).cast("Q")

    def add(self, ticket: int, blob: bytes) -> None:
        if not self._table:
            self._base, self._first = ticket, 0
        gap = ticket - self._base - len(self._table) // _SLOT
        self._table += bytes(gap * _SLOT)
        self._table += self._size.to_bytes(8, sys.byteorder) + len(blob).to_bytes(8, sys.byteorder)
        self._buffer += blob
        self._size += len(blob)

    def flush(self) -> bool:
        """Write the buffer out if it is large enough; False once the disk refused a write."""
        if self._broken or len(self._buffer) < self.BATCH:
            return not self._broken
        try:
            self._handle.seek(self._written)
            self._handle.write(self._buffer)
            self._handle.flush()
        except OSError:
            self._broken = True
            return False
        self._written = self._size
        self._buffer.clear()
        return True

    def read(self, ticket: int) -> bytes:
        index = 2 * (ticket - self._base)
        with self._slots() as slots:
            offset, length = slots[index], slots[index + 1]
        if offset >= self._written:
            start = offset - self._written
            return bytes(self._buffer[start : start + length])
        self._handle.seek(offset)
        return self._handle.read(length)

    def drop(self, ticket: int) -> None:
        index = 2 * (ticket - self._base) + 1
        with self._slots() as slots:
            self._dropped += slots[index]
            slots[index] = 0
            count = len(slots) // 2
            while self._first < count and not slots[2 * self._first + 1]:
                self._first += 1
        if self._first > count // 2:  # the slots of dropped values before the first live one go
            del self._table[: self._first * _SLOT]
            self._base += self._first
            self._first = 0
        if self._dropped > max(self._size // 2, self.BATCH) and not self._broken:
            self._rewrite()

    def _rewrite(self) -> None:
        """The live values, in file order, into a new file (the old one goes)."""
        import tempfile

        try:
            handle: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        except OSError:
            self._dropped = 0  # no room for a new file: try again when as much more is dropped
            return
        table = bytearray(self._table)
        size = 0
        try:
            batch = bytearray()
            with memoryview(table).cast("Q") as slots:
                for index in range(0, len(slots), 2):
                    length = slots[index + 1]
                    if not length:
                        continue
                    batch += self.read(self._base + index // 2)
                    slots[index] = size
                    size += length
                    if len(batch) >= self.BATCH:
                        handle.write(batch)
                        batch.clear()
            handle.write(batch)
            handle.flush()
        except OSError:
            handle.close()
            self._dropped = 0
            return
        self._handle.close()
        self._handle, self._table = handle, table
        self._size = self._written = size
        self._buffer.clear()
        self._dropped = 0

    def close(self) -> None:
        self._handle.close()
        self._table.clear()
        self._buffer.clear()


_SLOT = 16  # bytes of a ticket's slot in the table: offset and length

#: zlib looks back 32 KiB at most: a longer dictionary would not be used
_ZDICT_BYTES = 32 * 1024


class Tracked:
    """A group, the incidents it gave and the ids they have. A kept group (one that a later ``lm``, ``ln``
    or the final pass may classify again) is held as one compressed pickle of the group and its incidents
    (a :class:`Packer` ticket), rebuilt only to be classified again. What is looked at between two
    classifications is kept beside it: where it starts and the callers still unresolved."""

    __slots__ = (
        "_group",
        "_incidents",
        "_packed",
        "base_id",
        "first_line",
        "ids",
        "learned",
        "packer",
        "seq",
        "unresolved",
    )

    def __init__(self, group: Group, base_id: str) -> None:
        self._group: Group | None = group
        self._incidents: tuple[Incident, ...] = ()
        self._packed: int | None = None  # the packer's ticket
        self.base_id = base_id
        self.ids: list[str] = []  # the ids this group's incidents have, in order
        self.seq = 0  # a kept crash group's place in input order (0: not kept for enrichment)
        self.learned = -1  # the input's ``learned`` count when the group was last classified
        self.packer: Packer | None = None  # set on a kept group: it is held as :attr:`packed`
        self.first_line = group.span.first_line  # the earliest line of the group and of its incidents
        #: each incident caller's address with whether its module and its function are still unknown
        self.unresolved: tuple[tuple[int, bool, bool], ...] = ()

    def unpacked(self) -> tuple[Group, tuple[Incident, ...]]:
        """The group and the incidents it gave when last classified."""
        if self._packed is not None:
            assert self.packer is not None
            group, incidents = self.packer.unpack(self._packed)
            return group, incidents
        assert self._group is not None
        return self._group, self._incidents

    @property
    def group(self) -> Group:
        return self.unpacked()[0]

    @property
    def incidents(self) -> tuple[Incident, ...]:
        return self.unpacked()[1]

    @property
    def packed(self) -> int | None:
        """The :class:`Packer` ticket of a kept group (None while it is held as objects)."""
        return self._packed

    def store(self, group: Group, incidents: tuple[Incident, ...]) -> None:
        """Hold the group and its incidents: as one compressed pickle when the group is kept."""
        lines = [group.span.first_line, *(incident.source.first_line for incident in incidents)]
        self.first_line = min(lines)
        self.unresolved = tuple(
            (caller.address, caller.module is None, caller.function is None)
            for caller in (incident.caller for incident in incidents)
            if caller is not None and caller.address is not None
        )
        if self.packer is not None:
            if self._packed is not None:
                self.packer.drop(self._packed)
            self._packed, self._group, self._incidents = self.packer.pack((group, incidents)), None, ()
        else:
            self._packed, self._group, self._incidents = None, group, incidents

    def release(self) -> None:
        """Let go of a group no longer kept (what it holds in the packer goes; it is never read again)."""
        if self.packer is not None and self._packed is not None:
            self.packer.drop(self._packed)
        self._packed, self._group, self._incidents, self.packer = None, None, (), None
