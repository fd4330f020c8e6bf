"""What the analysis keeps of a crash between two classifications, held compact.

A later ``lm``, ``ln`` or the final pass may classify a crash again (:mod:`hvci.logs.pipeline`), so up to
``MAX_ENRICHABLE`` crash groups are kept with the incidents they gave. As Python objects that is about seven
kilobytes a crash, and peak memory grew with the crashes of a long log (issue 16); held as one pickle each
it is one or two kilobytes, rebuilt only when the crash is classified again. A 400 MB log's 1,900 kept
crashes and their final incidents are 7.7 MB of pickles, so the oldest ones beyond
:data:`PACKED_IN_MEMORY` bytes go to a temporary file (:class:`_SpillFile`), compressed there by blocks
(1.3 MB in all).
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hvci.logs.correlate import Group
    from hvci.model import Incident

#: Bytes of pickles a :class:`Packer` holds in memory; older ones go to its temporary file, compressed. Above
#: what the final window's incidents take between two looks for most logs (a log dense with short-lived
#: incidents reads some of them back from the file), and small enough that a long log's kept crashes do not
#: make the peak grow (issue 16).
PACKED_IN_MEMORY = 256 << 10


class Packer:
    """Holds what the analysis keeps for later as pickles (parser records, groups and incidents are msgspec
    Structs: they pickle whole and compare equal once loaded), each under an integer ticket, until
    :meth:`drop`.

    The newest :data:`PACKED_IN_MEMORY` bytes stay in memory as they are; older ones move to a temporary
    file (made on first need: a small input makes none), compressed there by blocks of several pickles
    (:class:`_SpillFile`). Compressing each pickle on its own cost 35 us of zlib's fixed work per kilobyte
    or two (13% of the CPU of ``analyze`` of a 400 MB log); a block of ~16 costs a third of that per
    pickle and is smaller. A value is rebuilt from either place. If no file can be written (a full
    temporary disk) the pickles stay in memory."""

    def __init__(self, in_memory: int | None = None) -> None:
        self._zdict: bytes | None = None
        self._in_memory = PACKED_IN_MEMORY if in_memory is None else in_memory
        self._memory: OrderedDict[int, bytes] = OrderedDict()  # ticket -> pickle, oldest first
        self._held = 0  # bytes in _memory
        self._file: _SpillFile | None = None
        self._tickets = 0

    def pack(self, value: object) -> int:
        """A ticket for ``value``, rebuilt by :meth:`unpack` until it is given to :meth:`drop`."""
        import pickle  # ~2 ms of start-up, for inputs that have crashes only

        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        if self._zdict is None:
            self._zdict = data[-_ZDICT_BYTES:]
        self._tickets += 1
        self._memory[self._tickets] = data
        self._held += len(data)
        if self._held > self._in_memory:
            self._spill()
        return self._tickets

    def unpack(self, ticket: int) -> Any:
        """The value packed under ``ticket`` (only ever bytes this process packed itself)."""
        import pickle

        data = self._memory.get(ticket)
        if data is None:
            assert self._file is not None
            data = self._file.read(ticket)
        return pickle.loads(data)

    @property
    def held(self) -> int:
        """Bytes of pickles held in memory (at most the budget once a file could be made)."""
        return self._held

    def in_memory(self, ticket: int) -> bool:
        """Whether the value packed under ``ticket`` is held in memory (else in the file)."""
        return ticket in self._memory

    def size(self, ticket: int) -> int:
        """The bytes the value packed under ``ticket`` takes where it is: its pickle in memory, its share of
        a compressed block in the file."""
        data = self._memory.get(ticket)
        if data is not None:
            return len(data)
        assert self._file is not None
        return self._file.size(ticket)

    def drop(self, ticket: int) -> None:
        """Forget the value packed under ``ticket`` (its room in the file is used again)."""
        data = self._memory.pop(ticket, None)
        if data is not None:
            self._held -= len(data)
        elif self._file is not None:
            self._file.drop(ticket)

    def _spill(self) -> None:
        """Move the oldest pickles to the file until half of the memory budget is used."""
        if self._file is None:
            assert self._zdict is not None
            try:
                self._file = _SpillFile(self._zdict)
            except OSError:
                self._in_memory = 1 << 62  # no file: everything stays in memory
                return
        moved: list[tuple[int, bytes]] = []
        while self._held > self._in_memory // 2:
            ticket, data = self._memory.popitem(last=False)
            self._held -= len(data)
            moved.append((ticket, data))
        self._file.add(moved)
        if not self._file.flush():
            self._in_memory = 1 << 62  # the disk is full: what was not written stays in the file's buffer

    def close(self) -> None:
        """Remove the temporary file (the tickets held there can no longer be unpacked)."""
        if self._file is not None:
            self._file.close()


class _SpillFile:
    """Pickles in an anonymous temporary file, compressed by blocks of up to :attr:`BLOCK` bytes of pickles
    (one zlib stream each, primed with the packer's dictionary): appended in batches, read back one by one
    (the last block read stays decompressed: values are mostly read back in the order they were packed),
    dropped; when more than half of the pickles it holds are dropped ones it is rewritten with the live ones
    only, so it stays within about twice what it holds. Where each value is: a table of machine integers
    indexed by ticket (tickets come in increasing order), 32 bytes a value where a dict of Python ints took
    about 90 (a bytearray read through memoryview: the array module would cost 0.45 MB of resident shared
    library)."""

    #: bytes written at once; also the size below which the file is never rewritten
    BATCH = 64 * 1024
    #: bytes of pickles compressed together: a dozen or more kept crashes or incidents, whose decompression
    #: (~90 us) is what reading one of them back costs
    BLOCK = 32 * 1024

    def __init__(self, zdict: bytes) -> None:
        import tempfile  # (~5 ms of start-up: only when a long input first needs the file)

        self._zdict = zdict
        self._handle: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._base = 0  # the ticket of the table's first slot
        self._first = 0  # no value before this slot
        #: per slot: its block's offset and compressed length, the value's start and length among the
        #: block's pickles (length 0: no value; a pickle is never empty)
        self._table = bytearray()
        self._size = 0  # bytes in the file, the buffer's included
        self._written = 0  # bytes written to the file (the buffer holds the rest)
        self._buffer = bytearray()
        self._pickled = 0  # bytes of pickles in the file, dropped ones included
        self._dropped = 0  # bytes of dropped pickles in the file
        self._broken = False  # a write failed: the buffer keeps whatever comes next
        self._cached: tuple[int, bytes] = (-1, b"")  # the last block read: its offset and its pickles

    def _slots(self) -> memoryview:
        """The table as 64-bit integers: slot ``i`` is items ``4i`` to ``4i + 3``."""
        return memoryview(self._table).cast("Q")

    def add(self, values: list[tuple[int, bytes]]) -> None:
        """Append ``values`` (ticket and pickle, tickets increasing and above every ticket added before)."""
        if not values:
            return
        if not self._table:
            self._base, self._first = values[0][0], 0
        expected = self._base + len(self._table) // _SLOT
        start = 0
        while start < len(values):
            end, pickled = start, 0
            while end < len(values) and (end == start or pickled + len(values[end][1]) <= self.BLOCK):
                pickled += len(values[end][1])
                end += 1
            expected = self._append(values[start:end], expected)
            start = end

    def _append(self, block: list[tuple[int, bytes]], expected: int) -> int:
        """Compress ``block`` into the buffer and give its tickets their slots (``expected``: the ticket
        of the next slot; a ticket dropped while in memory leaves an empty one). The next slot's ticket."""
        import zlib

        pickles = b"".join(data for _, data in block)
        compressor = zlib.compressobj(1, zdict=self._zdict)
        compressed = compressor.compress(pickles) + compressor.flush()
        start = 0
        for ticket, data in block:
            self._table += bytes((ticket - expected) * _SLOT)
            for number in (self._size, len(compressed), start, len(data)):
                self._table += number.to_bytes(8, sys.byteorder)
            start += len(data)
            expected = ticket + 1
        self._buffer += compressed
        self._size += len(compressed)
        self._pickled += len(pickles)
        return expected

    def flush(self, *, everything: bool = False) -> bool:
        """Write the buffer out if it is large enough (or ``everything``); False once the disk refused a
        write."""
        if self._broken or not self._buffer or (len(self._buffer) < self.BATCH and not everything):
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

    def _slot(self, ticket: int) -> tuple[int, int, int, int]:
        """The ticket's block offset and compressed length, its start and length among the block's pickles."""
        index = 4 * (ticket - self._base)
        with self._slots() as slots:
            return slots[index], slots[index + 1], slots[index + 2], slots[index + 3]

    def read(self, ticket: int) -> bytes:
        offset, length, start, size = self._slot(ticket)
        if self._cached[0] != offset:
            self._cached = (offset, self._decompressed(offset, length))
        return self._cached[1][start : start + size]

    def _decompressed(self, offset: int, length: int) -> bytes:
        import zlib

        if offset >= self._written:
            begin = offset - self._written
            compressed = bytes(self._buffer[begin : begin + length])
        else:
            self._handle.seek(offset)
            compressed = self._handle.read(length)
        decompressor = zlib.decompressobj(zdict=self._zdict)
        return decompressor.decompress(compressed) + decompressor.flush()

    def size(self, ticket: int) -> int:
        """The ticket's share of its compressed block, in proportion to its pickle."""
        offset, length, _, size = self._slot(ticket)
        return -(-length * size // len(self._decompressed(offset, length)))

    def drop(self, ticket: int) -> None:
        index = 4 * (ticket - self._base) + 3
        with self._slots() as slots:
            self._dropped += slots[index]
            slots[index] = 0
            count = len(slots) // 4
            while self._first < count and not slots[4 * self._first + 3]:
                self._first += 1
        if self._first > count // 2:  # the slots of dropped values before the first live one go
            del self._table[: self._first * _SLOT]
            self._base += self._first
            self._first = 0
        if self._dropped > max(self._pickled // 2, self.BATCH) and not self._broken:
            self._rewrite()

    def _rewrite(self) -> None:
        """The live values, in ticket order, into a new file (the old one goes)."""
        try:
            fresh = _SpillFile(self._zdict)
        except OSError:
            self._dropped = 0  # no room for a new file: try again when as much more is dropped
            return
        batch: list[tuple[int, bytes]] = []
        held = 0
        count = len(self._table) // _SLOT
        for index in range(self._first, count):
            ticket = self._base + index
            if not self._slot(ticket)[3]:
                continue
            batch.append((ticket, self.read(ticket)))
            held += len(batch[-1][1])
            if held >= self.BATCH or index == count - 1:
                fresh.add(batch)
                batch, held = [], 0
                if not fresh.flush(everything=index == count - 1):
                    break
        fresh.add(batch)
        if fresh._broken or not fresh.flush(everything=True):
            fresh.close()
            self._dropped = 0
            return
        self._handle.close()
        self.__dict__.update(fresh.__dict__)

    def close(self) -> None:
        self._handle.close()
        self._table.clear()
        self._buffer.clear()
        self._cached = (-1, b"")


_SLOT = 32  # bytes of a ticket's slot in the table: block offset and length, start and length in it

#: zlib looks back 32 KiB at most: a longer dictionary would not be used
_ZDICT_BYTES = 32 * 1024


class Tracked:
    """A group, the incidents it gave and the ids they have. A kept group (one that a later ``lm``, ``ln``
    or the final pass may classify again) is held as one pickle of the group and its incidents (a
    :class:`Packer` ticket, compressed once it goes to the file), rebuilt only to be classified again. What
    is looked at between two classifications is kept beside it: where it starts and the callers still
    unresolved."""

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
        """Hold the group and its incidents: as one packed pickle when the group is kept."""
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
