"""The memory inside a full, kernel or bitmap dump: where each physical page is in the file, and virtual
addresses translated through the dump's own page tables (its ``DirectoryTableBase``).

Physical layouts (from kdmp-parser's ``BuildPhysmemFullDump`` / ``BuildPhysmemBMPDump`` /
``BuildPhysicalMemoryFromDump`` and Volatility 3's ``layers/crash.py``, read for the layout only):

* full dump (type 1): the header's ``PHYSICAL_MEMORY_DESCRIPTOR`` lists runs of pages (``BasePage``,
  ``PageCount``); the pages follow the header back to back, run after run;
* bitmap dumps (types 2, 5, 6; ``SDMP``/``FDMP`` + ``DUMP`` right after the header): ``FirstPage`` (file
  offset of the first page) at +0x20, ``Pages`` (bits in the bitmap) at +0x30, the bitmap at +0x38; page
  ``n`` is present when bit ``n`` is set, stored in ascending order;
* ``.dump /k``, ``/ka``, ``/f`` dumps (types 8, 9, 10; ``RDMP`` header): ``MetadataSize`` at +0x10 and
  ``FirstPageOffset`` at +0x18, then (page frame, page count) ranges at +0x30, the pages in range order.

Translation: x64 four-level paging and x86 PAE / non-PAE paging as the Intel SDM (vol. 3A, 4.3-4.5)
defines them, large pages included; an entry without its present bit (a paged-out or transition page)
is unreadable, as it is for the debugger without the page file.

Every count read from the file is bounded by what the file can hold, and lookups cost one bitmap block
or one binary search: a hostile header costs a diagnostic, never a pass over a made-up terabyte.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from typing import Protocol

from parsers.dump.fileview import DumpFile
from parsers.dump.header import Header

PAGE = 0x1000
_BLOCK = 1 << 16  # bitmap bytes per popcount block
#: The largest bitmap read: 64 MiB of bits describe 2 TiB of RAM; counting the pages before one near the end
#: of a larger (made-up) bitmap would read the whole file.
MAX_BITMAP_BYTES = 64 << 20
_MAX_RANGES = 1 << 20
_CACHE = 4096  # translated pages remembered


class PhysicalMap(Protocol):
    def page_offset(self, pfn: int) -> int | None: ...


class RunMap:
    """Pages stored run after run: ``(first pfn, count, file offset)`` sorted by pfn."""

    def __init__(self, runs: list[tuple[int, int, int]]) -> None:
        self.runs = sorted(runs)
        self._starts = [run[0] for run in self.runs]

    def page_offset(self, pfn: int) -> int | None:
        index = bisect.bisect_right(self._starts, pfn) - 1
        if index < 0:
            return None
        first, count, offset = self.runs[index]
        return offset + (pfn - first) * PAGE if pfn < first + count else None


class BitmapMap:
    """Pages present where the bitmap's bit is set, stored in pfn order from ``first_page``."""

    def __init__(self, dump: DumpFile, bitmap_offset: int, bits: int, first_page: int) -> None:
        self._dump = dump
        self._offset = bitmap_offset
        self._bytes = min((bits + 7) // 8, max(dump.size - bitmap_offset, 0))
        self.bits = self._bytes * 8 if bits > self._bytes * 8 else bits
        self._first = first_page
        self._before: list[int] = [0]  # pages present before each block, computed as far as needed

    def _block(self, index: int) -> bytes:
        start = index * _BLOCK
        return self._dump.read(self._offset + start, min(_BLOCK, self._bytes - start))

    def page_offset(self, pfn: int) -> int | None:
        if pfn < 0 or pfn >= self.bits:
            return None
        byte = pfn >> 3
        block_index = byte // _BLOCK
        while len(self._before) <= block_index:  # each block is counted once
            counted = len(self._before) - 1
            self._before.append(self._before[-1] + int.from_bytes(self._block(counted), "little").bit_count())
        block = self._block(block_index)
        within = byte - block_index * _BLOCK
        if within >= len(block) or not block[within] >> (pfn & 7) & 1:
            return None
        before = int.from_bytes(block[:within], "little").bit_count()
        before += (block[within] & ((1 << (pfn & 7)) - 1)).bit_count()
        return self._first + (self._before[block_index] + before) * PAGE


def physical_map(dump: DumpFile, header: Header) -> tuple[PhysicalMap | None, str | None]:
    """The page map of the dump's type, or ``None`` and why there is none; with a map, what of it was
    left unread (else ``None``)."""
    dump_type = header.dump_type
    base = header.layout.header_size
    if dump_type == 1:
        return _runs(dump, header), None
    if dump_type in (2, 5, 6):
        signature = dump.read(base, 8)
        if signature not in (b"SDMPDUMP", b"FDMPDUMP"):
            return None, f"the bitmap header at 0x{base:x} is not SDMP/FDMP (read {signature!r})"
        first, bits = dump.u64(base + 0x20), dump.u64(base + 0x30)
        if first is None or bits is None:
            return None, "the dump ends inside its bitmap header"
        note = None
        if bits > MAX_BITMAP_BYTES * 8:
            note = f"the bitmap claims {bits} pages; only the first {MAX_BITMAP_BYTES * 8} are looked at"
            bits = MAX_BITMAP_BYTES * 8
        return BitmapMap(dump, base + 0x38, bits, first), note
    if dump_type in (8, 9, 10):
        return _ranges(dump, base, dump_type)
    return None, None


def _runs(dump: DumpFile, header: Header) -> RunMap:
    layout = header.layout
    count = dump.u32(layout.runs) or 0
    room = (layout.context - layout.runs - 16) // layout.run_size  # runs that fit in the descriptor
    first_run = layout.runs + (16 if layout.bits == 64 else 8)
    runs: list[tuple[int, int, int]] = []
    offset = layout.header_size
    for index in range(min(count, room)):
        where = first_run + index * layout.run_size
        if layout.bits == 64:
            base, pages = dump.u64(where), dump.u64(where + 8)
        else:
            base, pages = dump.u32(where), dump.u32(where + 4)
        if base is None or pages is None:
            break
        pages = min(pages, max(dump.size - offset, 0) // PAGE)
        runs.append((base, pages, offset))
        offset += pages * PAGE
    return RunMap(runs)


def _ranges(dump: DumpFile, base: int, dump_type: int) -> tuple[PhysicalMap | None, str | None]:
    if dump.read(base + 4, 4) != b"RDMP":
        return None, f"the RDMP header at 0x{base:x} is not valid"
    metadata, first = dump.u64(base + 0x10), dump.u64(base + 0x18)
    if metadata is None or first is None:
        return None, "the dump ends inside its RDMP header"
    total = dump.u64(base + 0x28) if dump_type == 10 else None
    runs: list[tuple[int, int, int]] = []
    offset, pages_seen = first, 0
    for index in range(min(metadata // 16, _MAX_RANGES, max(dump.size - base, 0) // 16)):
        pfn, count = dump.u64(base + 0x30 + index * 16), dump.u64(base + 0x38 + index * 16)
        if pfn is None or count is None or not pfn or (total is not None and pages_seen >= total):
            break
        count = min(count, max(dump.size - offset, 0) // PAGE)
        runs.append((pfn, count, offset))
        offset += count * PAGE
        pages_seen += count
    return RunMap(runs), None


class VirtualMemory:
    """Reads of virtual addresses through the dump's page tables; ``None`` for an unmapped address."""

    def __init__(self, dump: DumpFile, pages: PhysicalMap, dtb: int, bits: int, pae: bool) -> None:
        self._dump = dump
        self._pages = pages
        self._dtb = dtb
        self.bits = bits
        self._pae = pae
        self._cache: OrderedDict[int, int | None] = OrderedDict()

    def _physical(self, address: int, size: int) -> bytes | None:
        offset = self._pages.page_offset(address >> 12)
        if offset is None:
            return None
        data = self._dump.read(offset + (address & (PAGE - 1)), size)
        return data if len(data) == size else None

    def _entry(self, address: int, wide: bool) -> int | None:
        data = self._physical(address, 8 if wide else 4)
        return int.from_bytes(data, "little") if data is not None else None

    def _walk(self, va: int) -> int | None:
        """The physical address of ``va``'s page, or ``None``."""
        levels: tuple[tuple[int, bool], ...]
        if self.bits == 64:
            levels, table, wide, mask = (
                ((39, False), (30, True), (21, True), (12, False)),
                self._dtb,
                True,
                0x1FF,
            )
            table &= 0x000FFFFFFFFFF000
        elif self._pae:
            pdpte = self._entry((self._dtb & ~0x1F) + ((va >> 30) & 3) * 8, True)
            if pdpte is None or not pdpte & 1:
                return None
            levels, table, wide, mask = ((21, True), (12, False)), pdpte & 0x000FFFFFFFFFF000, True, 0x1FF
        else:
            levels, table, wide, mask = ((22, True), (12, False)), self._dtb & ~0xFFF, False, 0x3FF
        for shift, may_be_large in levels:
            entry = self._entry(table + ((va >> shift) & mask) * (8 if wide else 4), wide)
            if entry is None or not entry & 1:
                return None
            frame = entry & (0x000FFFFFFFFFF000 if wide else 0xFFFFF000)
            if may_be_large and shift != 12 and entry & 0x80:
                return (frame & ~((1 << shift) - 1)) + (va & ((1 << shift) - 1) & ~(PAGE - 1))
            table = frame
        return table

    def translate(self, va: int) -> int | None:
        page = va & ~(PAGE - 1)
        if page in self._cache:
            self._cache.move_to_end(page)
            found = self._cache[page]
        else:
            found = self._walk(page)
            self._cache[page] = found
            if len(self._cache) > _CACHE:
                self._cache.popitem(last=False)
        return None if found is None else found + (va & (PAGE - 1))

    def read(self, va: int, size: int) -> bytes | None:
        """``size`` bytes at ``va`` (at most a few pages: callers read structures and names)."""
        out = bytearray()
        while size > 0:
            physical = self.translate(va)
            if physical is None:
                return None
            piece = min(size, PAGE - (va & (PAGE - 1)))
            data = self._physical(physical, piece)
            if data is None:
                return None
            out += data
            va, size = va + piece, size - piece
        return bytes(out)

    def pointer(self, va: int) -> int | None:
        data = self.read(va, self.bits // 8)
        return int.from_bytes(data, "little") if data is not None else None
