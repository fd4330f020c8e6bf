"""Windows kernel crash dumps built from the documented layouts, for tests, benchmarks and the samples.

Written from the same public layouts the reader cites (``parsers/dump/*``) but as a writer: it lays out
``DUMP_HEADER64``/``DUMP_HEADER32``, the triage header with its driver list, string pool, unloaded-driver
list, context and stack, or physical memory (full runs, ``SDMP``/``FDMP`` bitmaps, ``RDMP`` ranges) holding
page tables (x64 four-level, x86 PAE and non-PAE) that map a ``PsLoadedModuleList`` with its loader
entries. An independent reader (kdmp-parser) reads what this writes in ``tests/parsers/dump``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

PAGE = 0x1000
#: 2024-01-02T03:04:05Z as a FILETIME
SYSTEM_TIME = 133486382450000000


@dataclass(frozen=True)
class Driver:
    name: str
    base: int
    size: int
    timestamp: int = 0x65A1B2C3
    checksum: int = 0x1234


@dataclass(frozen=True)
class Crash:
    code: int
    args: tuple[int, int, int, int]
    drivers: tuple[Driver, ...]
    unloaded: tuple[Driver, ...] = ()
    stack: tuple[int, ...] = ()  # pointer-sized values on the stack, from TopOfStack up
    rip: int | None = None
    build: int = 22621
    processors: int = 4
    memory: tuple[tuple[int, bytes], ...] = ()  # (virtual address, bytes) also in a memory dump


def _put(buffer: bytearray, offset: int, fmt: str, *values: int) -> None:
    struct.pack_into("<" + fmt, buffer, offset, *values)


def _header(crash: Crash, bits: int, dump_type: int, dtb: int = 0, module_list: int = 0) -> bytearray:
    if bits == 64:
        header = bytearray(b"PAGE" * (0x2000 // 4))
        header[0:8] = b"PAGEDU64"
        _put(header, 0x08, "II", 0xF, crash.build)
        _put(header, 0x10, "QQQQ", dtb, 0xFFFFFA8000000000, module_list, 0xFFFFF80000100000)
        _put(header, 0x30, "III", 0x8664, crash.processors, crash.code)
        _put(header, 0x3C, "I", 0)
        _put(header, 0x40, "QQQQ", *crash.args)
        _put(header, 0x80, "Q", 0xFFFFF80000200000)
        _put(header, 0xF98, "I", dump_type)
        _put(header, 0xFA0, "qq", 0, SYSTEM_TIME)
        return header
    header = bytearray(b"PAGE" * (0x1000 // 4))
    header[0:8] = b"PAGEDUMP"
    _put(header, 0x08, "II", 0xF, crash.build)
    _put(header, 0x10, "IIII", dtb, 0x80000000, module_list, 0x80100000)
    _put(header, 0x20, "III", 0x14C, crash.processors, crash.code)
    _put(header, 0x2C, "IIII", *(a & 0xFFFFFFFF for a in crash.args))
    _put(header, 0x60, "I", 0x80200000)
    _put(header, 0xF88, "I", dump_type)
    _put(header, 0xFA0, "q", 0)
    _put(header, 0xFC0, "q", SYSTEM_TIME)
    return header


# ------------------------------------------------------------------------------------------ triage dumps


def triage_dump(crash: Crash, bits: int = 64, *, valid: bool = True, packed_unloaded: bool = False) -> bytes:
    """A small memory dump (DumpType 4) as Windows writes to C:\\Windows\\Minidump."""
    wide = bits == 64
    data = _header(crash, bits, 4)
    base = len(data)
    ptr = "Q" if wide else "I"
    triage = bytearray(0x80)
    data += triage
    # context
    context_offset = len(data)
    context = bytearray(0x4D0 if wide else 0x2CC)
    top = 0xFFFFD000_12340000 if wide else 0x9A3F0000
    if crash.rip is not None:
        _put(context, 0xF8 if wide else 0xB8, ptr, crash.rip)
        _put(context, 0x98 if wide else 0xC4, ptr, top)
    data += context
    # stack
    stack_offset = len(data)
    data += b"".join(struct.pack("<" + ptr, v) for v in crash.stack)
    # string pool
    pool_offset = len(data)
    names: list[int] = []
    for driver in crash.drivers:
        names.append(len(data))
        text = driver.name.encode("utf-16-le")
        data += struct.pack("<I", len(driver.name)) + text + b"\x00\x00"
        data += b"\x00" * (-len(data) % 8)
    pool_size = len(data) - pool_offset
    # driver list
    list_offset = len(data)
    for driver, name_offset in zip(crash.drivers, names, strict=True):
        entry = bytearray(0x90 if wide else 0x4C)
        _put(entry, 0, "I", name_offset)
        if wide:
            _put(entry, 0x38, "Q", driver.base)
            _put(entry, 0x48, "I", driver.size)
            _put(entry, 0x80, "I", driver.checksum)
            _put(entry, 0x88, "I", driver.timestamp)
        else:
            _put(entry, 0x1C, "I", driver.base)
            _put(entry, 0x24, "I", driver.size)
            _put(entry, 0x44, "I", driver.checksum)
            _put(entry, 0x48, "I", driver.timestamp)
        data += entry
    # unloaded drivers
    unloaded_offset = len(data) if crash.unloaded else 0
    if crash.unloaded:
        data += struct.pack("<I", len(crash.unloaded)) + (
            b"\x00" * 4 if wide and not packed_unloaded else b""
        )
        for driver in crash.unloaded:
            entry = bytearray(0x38 if wide else 0x28)
            name = driver.name.encode("utf-16-le")[:24]
            _put(entry, 0, "HH", len(name), len(name))
            entry[0x10 if wide else 0x08 : (0x10 if wide else 0x08) + len(name)] = name
            _put(entry, 0x28 if wide else 0x20, ptr * 2, driver.base, driver.base + driver.size)
            data += entry
    # data blocks: the memory the dump keeps (crash.memory)
    stored = []
    for address, content in crash.memory:
        stored.append((address, len(data), len(content)))
        data += content
    blocks_offset = len(data) if stored else 0
    for address, offset, size in stored:
        data += struct.pack("<" + ptr + "II", address, offset, size)
    valid_offset = len(data)
    data += b"DUMP" if valid else b"\x00\x00\x00\x00"
    fields = (
        crash.build,
        len(data),
        valid_offset,
        context_offset,
        0,
        0,
        unloaded_offset,
        0,
        0,
        0,
        stack_offset,
        len(crash.stack) * (8 if wide else 4),
        list_offset,
        len(crash.drivers),
        pool_offset,
        pool_size,
        0,
        0,
    )
    _put(data, base, "18I", *fields)
    _put(data, base + 0x48, ptr, top)
    _put(data, base + (0x78 if wide else 0x60), "II", blocks_offset, len(stored))
    return bytes(data)


# ------------------------------------------------------------------------------ memory and page tables


@dataclass
class Memory:
    """Physical pages and the page tables that map virtual pages onto them.

    ``mode``: ``x64`` (four levels, 8-byte entries), ``pae`` (x86 PAE: a PDPT, then two levels of 8-byte
    entries) or ``x86`` (two levels of 4-byte entries)."""

    mode: str = "x64"
    pages: dict[int, bytearray] = field(default_factory=dict)
    next_pfn: int = 0x10
    stride: int = 3  # leave holes between frames, so that maps must skip absent pages
    root: int = 0

    def __post_init__(self) -> None:
        self.root = self.alloc()

    def alloc(self) -> int:
        pfn = self.next_pfn
        self.next_pfn += self.stride
        self.pages[pfn] = bytearray(PAGE)
        return pfn

    @property
    def dtb(self) -> int:
        return self.root * PAGE

    def _levels(self) -> tuple[tuple[int, int, int], ...]:
        """(shift, index mask, entry size) from the root down to the page table."""
        if self.mode == "x64":
            return ((39, 0x1FF, 8), (30, 0x1FF, 8), (21, 0x1FF, 8), (12, 0x1FF, 8))
        if self.mode == "pae":
            return ((30, 3, 8), (21, 0x1FF, 8), (12, 0x1FF, 8))
        return ((22, 0x3FF, 4), (12, 0x3FF, 4))

    def map(self, va: int, pfn: int | None = None) -> int:
        """Map the page of ``va`` (onto a new frame unless ``pfn`` is given); the frame."""
        table = self.root
        levels = self._levels()
        for depth, (shift, mask, size) in enumerate(levels):
            slot = ((va >> shift) & mask) * size
            entry = int.from_bytes(self.pages[table][slot : slot + size], "little")
            last = depth == len(levels) - 1
            if last:
                frame = pfn if pfn is not None else (entry >> 12 if entry & 1 else self.alloc())
                self.pages.setdefault(frame, bytearray(PAGE))
                flags = 0x1 if (self.mode == "pae" and depth == 0) else 0x3
                self.pages[table][slot : slot + size] = ((frame << 12) | flags).to_bytes(size, "little")
                return frame
            if not entry & 1:
                child = self.alloc()
                flags = 0x1 if (self.mode == "pae" and depth == 0) else 0x3
                self.pages[table][slot : slot + size] = ((child << 12) | flags).to_bytes(size, "little")
                entry = child << 12
            table = (entry & 0x000FFFFFFFFFF000) >> 12
        raise AssertionError("unreachable")

    def write(self, va: int, data: bytes) -> None:
        while data:
            piece = min(len(data), PAGE - (va & (PAGE - 1)))
            frame = self.map(va)
            start = va & (PAGE - 1)
            self.pages[frame][start : start + piece] = data[:piece]
            va, data = va + piece, data[piece:]


def loaded_module_list(
    memory: Memory, head: int, drivers: Sequence[Driver], *, loop: bool = False, full_names: bool = False
) -> None:
    """``PsLoadedModuleList`` at ``head`` and one ``KLDR_DATA_TABLE_ENTRY`` per driver after it; with
    ``loop`` the last entry points back at the first instead of the head (a corrupt list); with
    ``full_names`` the names go to ``FullDllName`` only (``BaseDllName`` left empty)."""
    wide = memory.mode == "x64"
    ptr = "Q" if wide else "I"
    width = 8 if wide else 4
    entry_size = 0xA0 if wide else 0x50
    entries = [head + 0x40 + n * entry_size for n in range(len(drivers))]
    names = head + 0x40 + len(drivers) * entry_size
    links = [head, *entries, head]
    if loop and entries:
        links[-1] = entries[0]
    memory.write(head, struct.pack(f"<{ptr}{ptr}", links[1], entries[-1] if entries else head))
    for index, (driver, entry) in enumerate(zip(drivers, entries, strict=True)):
        text = driver.name.encode("utf-16-le")
        record = bytearray(entry_size)
        _put(record, 0, ptr * 2, links[index + 2], links[index])
        if wide:
            _put(record, 0x30, "Q", driver.base)
            _put(record, 0x40, "I", driver.size)
            _put(record, 0x48 if full_names else 0x58, "HHIQ", len(text), len(text) + 2, 0, names)
        else:
            _put(record, 0x18, "I", driver.base)
            _put(record, 0x20, "I", driver.size)
            _put(record, 0x24 if full_names else 0x2C, "HHI", len(text), len(text) + 2, names)
        memory.write(entry, bytes(record))
        memory.write(names, text + b"\x00\x00")
        names += len(text) + 2 + (-(len(text) + 2) % width)


def kernel_memory(
    crash: Crash, mode: str, head: int, *, loop: bool = False, full_names: bool = False
) -> Memory:
    memory = Memory(mode)
    loaded_module_list(memory, head, crash.drivers, loop=loop, full_names=full_names)
    shared = 0xFFFFF780_00000000 if mode == "x64" else 0xFFDF0000  # KUSER_SHARED_DATA
    memory.write(shared + 0x260, struct.pack("<I", crash.build) + bytes(8) + struct.pack("<II", 10, 0))
    for address, data in crash.memory:
        memory.write(address, data)
    return memory


def unicode_string(address: int, text: str, bits: int = 64) -> tuple[tuple[int, bytes], ...]:
    """A ``UNICODE_STRING`` at ``address`` whose buffer follows it, as memory writes for :class:`Crash`."""
    data = text.encode("utf-16-le")
    buffer = address + 0x10
    if bits == 64:
        return ((address, struct.pack("<HHIQ", len(data), len(data) + 2, 0, buffer) + data + b"\x00\x00"),)
    return ((address, struct.pack("<HHI", len(data), len(data) + 2, buffer) + bytes(8) + data + b"\x00\x00"),)


def memory_dump(
    crash: Crash,
    dump_type: int,
    *,
    bits: int = 64,
    pae: bool = True,
    loop: bool = False,
    head: int | None = None,
    full_names: bool = False,
) -> bytes:
    """A dump holding memory: type 1 (full), 2/5/6 (bitmap), 8/9/10 (RDMP ranges)."""
    mode = "x64" if bits == 64 else ("pae" if pae else "x86")
    if head is None:
        head = 0xFFFFF804_1C3A2E50 if bits == 64 else 0x8055A4C0
    memory = kernel_memory(crash, mode, head, loop=loop, full_names=full_names)
    header = _header(crash, bits, dump_type, memory.dtb, head)
    if bits == 32:
        header[0x5C] = 1 if pae else 0
    pfns = sorted(memory.pages)
    body = b"".join(bytes(memory.pages[p]) for p in pfns)
    if dump_type == 1:
        runs = _runs(pfns)
        if bits == 64:
            _put(header, 0x88, "IIQ", len(runs), 0, len(pfns))
            for n, (first, count) in enumerate(runs):
                _put(header, 0x98 + n * 16, "QQ", first, count)
        else:
            _put(header, 0x64, "II", len(runs), len(pfns))
            for n, (first, count) in enumerate(runs):
                _put(header, 0x6C + n * 8, "II", first, count)
        return bytes(header) + body
    if dump_type in (2, 5, 6):
        bitmap_bits = (max(pfns) + 64) & ~63
        bitmap = bytearray(bitmap_bits // 8)
        for pfn in pfns:
            bitmap[pfn >> 3] |= 1 << (pfn & 7)
        summary = bytearray(0x38)
        summary[0:8] = b"FDMPDUMP" if dump_type == 5 else b"SDMPDUMP"
        first_page = len(header) + 0x38 + len(bitmap)
        first_page += -first_page % PAGE
        _put(summary, 0x20, "QQQ", first_page, len(pfns), bitmap_bits)
        head_bytes = bytes(header) + bytes(summary) + bytes(bitmap)
        return head_bytes + b"\x00" * (first_page - len(head_bytes)) + body
    if dump_type in (8, 9, 10):
        runs = _runs(pfns)
        first_page = len(header) + 0x30 + (len(runs) + 1) * 16  # the ranges end with a zero one
        first_page += -first_page % PAGE
        rdmp = bytearray(0x30)
        _put(rdmp, 0, "I", 0x40)
        rdmp[4:12] = b"RDMPDUMP"
        _put(rdmp, 0x10, "QQ", first_page - len(header) - 0x20, first_page)  # MetadataSize, FirstPageOffset
        if dump_type == 10:
            _put(rdmp, 0x20, "I", len(runs))
            _put(rdmp, 0x28, "Q", len(pfns))
        ranges = b"".join(struct.pack("<QQ", first, count) for first, count in runs)
        head_bytes = bytes(header) + bytes(rdmp) + ranges
        return head_bytes + b"\x00" * (first_page - len(head_bytes)) + body
    raise ValueError(f"no memory layout for dump type {dump_type}")


def _runs(pfns: Sequence[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for pfn in pfns:
        if runs and runs[-1][0] + runs[-1][1] == pfn:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((pfn, 1))
    return runs
