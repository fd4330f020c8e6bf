"""The triage part of a small memory dump (``C:\\Windows\\Minidump\\*.dmp``, DumpType 4): the
``TRIAGE_DUMP64``/``TRIAGE_DUMP32`` header right after the dump header, the driver list with its string
pool, the unloaded-driver list, the context and the call-stack region.

Layouts (rizin ``librz/bin/format/dmp/dmp_specs.h``: ``dmp64_triage``/``dmp32_triage``,
``dmp_driver_entry64/32`` with their ``KLDR_DATA_TABLE_ENTRY``, ``dmp_string``; read, not copied):

* ``TRIAGE_DUMP64`` at 0x2000 (``TRIAGE_DUMP32`` at 0x1000): ``ValidOffset`` 0x08, ``ContextOffset`` 0x0C,
  ``UnloadedDriversOffset`` 0x18, ``CallStackOffset`` 0x28, ``SizeOfCallStack`` 0x2C, ``DriverListOffset``
  0x30, ``DriverCount`` 0x34, ``StringPoolOffset`` 0x38, ``StringPoolSize`` 0x3C, ``TopOfStack`` 0x48
  (a 64-bit value in the 64-bit layout); offsets are from the start of the file. ``ValidOffset`` points at
  the ``DUMP`` marker (``TRIAGE_DUMP_VALID``) a complete triage dump ends with;
* a driver entry is ``DriverNameOffset`` (ULONG; 64-bit: padded to 8) then the ``KLDR_DATA_TABLE_ENTRY``:
  0x90 bytes, ``DllBase`` at 0x38, ``SizeOfImage`` at 0x48, ``CheckSum`` at 0x80, ``TimeDateStamp`` at
  0x88 (32-bit: 0x4C bytes; 0x1C, 0x24, 0x44, 0x48);
* a name in the string pool is ``DUMP_STRING``: a ULONG length in characters, then UTF-16 text;
* the unloaded-driver list is a count followed by ``DUMP_UNLOADED_DRIVERS64`` entries (0x38 bytes: a
  ``UNICODE_STRING64``, the name in ``WCHAR[12]`` at 0x10, ``StartAddress`` 0x28, ``EndAddress`` 0x30;
  32-bit 0x28 bytes: name at 0x08, addresses at 0x20/0x24). These come from the DDK's ``ntiodump.h`` as
  commonly reproduced; no independent reader of them was available to check (**inference**: the count is
  padded to the pointer size);
* ``CONTEXT``: x64 ``Rsp`` at 0x98, ``Rip`` at 0xF8 (kdmp-parser's ``CONTEXT``, ``static_assert``-checked);
  x86 ``Ebp`` 0xB4, ``Eip`` 0xB8, ``Esp`` 0xC4; ARM64 ``Sp`` 0x100, ``Pc`` 0x108 (``winnt.h``);
* the memory a triage dump keeps: ``DataPageAddress``/``DataPageOffset``/``DataPageSize`` at 0x60/0x68/0x6C
  (32-bit 0x4C/0x50/0x54) and ``DataBlocksOffset``/``DataBlocksCount`` at 0x78/0x7C (0x60/0x64), each block
  a virtual address, a file offset and a size (rizin ``dmp64_triage_datablock``/``dmp32_triage_datablock``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from parsers.dump.fileview import DumpFile

MAX_DRIVERS = 4096
MAX_UNLOADED = 512
MAX_NAME_CHARS = 260
MAX_STACK_BYTES = 1 << 20
MAX_BLOCKS = 1024


@dataclass(frozen=True, slots=True)
class TriageLayout:
    base: int
    entry_size: int
    dll_base: int
    image_size: int
    checksum: int
    timestamp: int
    unloaded_first: int
    unloaded_size: int
    unloaded_name: int
    unloaded_start: int
    pointer: int
    rip: int
    rsp: int


TRIAGE64 = TriageLayout(0x2000, 0x90, 0x38, 0x48, 0x80, 0x88, 8, 0x38, 0x10, 0x28, 8, 0xF8, 0x98)
#: ARM64 writes the same 64-bit triage layout with its own CONTEXT: ``Sp`` at 0x100, ``Pc`` at 0x108
#: (``winnt.h`` ``ARM64_NT_CONTEXT``: flags, Cpsr, X0-X28, Fp, Lr, Sp, Pc).
TRIAGE_ARM64 = replace(TRIAGE64, rip=0x108, rsp=0x100)
TRIAGE32 = TriageLayout(0x1000, 0x4C, 0x1C, 0x24, 0x44, 0x48, 4, 0x28, 0x08, 0x20, 4, 0xB8, 0xC4)

#: (name, offset in the triage header, size)
TRIAGE_FIELDS = (
    ("ValidOffset", 0x08, 4),
    ("ContextOffset", 0x0C, 4),
    ("UnloadedDriversOffset", 0x18, 4),
    ("CallStackOffset", 0x28, 4),
    ("SizeOfCallStack", 0x2C, 4),
    ("DriverListOffset", 0x30, 4),
    ("DriverCount", 0x34, 4),
    ("StringPoolOffset", 0x38, 4),
    ("StringPoolSize", 0x3C, 4),
)


@dataclass(frozen=True, slots=True)
class DriverEntry:
    name: str
    base: int
    size: int
    offset: int  # file offset of the entry (evidence)
    timestamp: int | None = None
    checksum: int | None = None
    unloaded: bool = False


@dataclass
class Triage:
    fields: dict[str, int] = field(default_factory=dict)
    top_of_stack: int | None = None
    drivers: list[DriverEntry] = field(default_factory=list)
    unloaded: list[DriverEntry] = field(default_factory=list)
    stack: bytes = b""
    stack_offset: int = 0
    rip: int | None = None
    rsp: int | None = None
    blocks: list[tuple[int, int, int]] = field(default_factory=list)  # (virtual address, file offset, size)
    problems: list[str] = field(default_factory=list)  # what could not be read
    notes: list[str] = field(default_factory=list)  # how something was read that the layout leaves open


def read_triage(dump: DumpFile, bits: int, machine: str = "x64") -> Triage:
    layout = TRIAGE32 if bits == 32 else TRIAGE_ARM64 if machine == "ARM64" else TRIAGE64
    triage = Triage()
    for name, offset, _ in TRIAGE_FIELDS:
        value = dump.u32(layout.base + offset)
        if value is None:
            triage.problems.append(f"the triage header ends before {name} (0x{layout.base + offset:x})")
            return triage
        triage.fields[name] = value
    triage.top_of_stack = dump.pointer(layout.base + 0x48, bits)
    valid = triage.fields["ValidOffset"]
    if dump.read(valid, 4) != b"DUMP":
        triage.problems.append(
            f"no DUMP marker at ValidOffset 0x{valid:x}: the triage dump is cut short or damaged"
        )
    _drivers(dump, layout, triage)
    _unloaded(dump, layout, triage)
    _context_and_stack(dump, layout, triage)
    _data_blocks(dump, layout, triage)
    return triage


def _int(data: bytes, offset: int, size: int) -> int:
    return int.from_bytes(data[offset : offset + size], "little")


class _Pool:
    """The string pool read once (names are looked up in it; one outside it is read from the file)."""

    def __init__(self, dump: DumpFile, offset: int, size: int) -> None:
        self._dump = dump
        self._offset = offset
        self._data = dump.read(offset, size)

    def name(self, offset: int) -> str | None:
        start = offset - self._offset
        length = _int(self._data, start, 4) if start >= 0 and start + 4 <= len(self._data) else None
        if length is not None and length <= MAX_NAME_CHARS and start + 4 + length * 2 <= len(self._data):
            return (
                self._data[start + 4 : start + 4 + length * 2]
                .decode("utf-16-le", "replace")
                .split("\x00", 1)[0]
            )
        length = self._dump.u32(offset)
        if length is None or length > MAX_NAME_CHARS:
            return None
        return self._dump.utf16(offset + 4, length * 2)


def _drivers(dump: DumpFile, layout: TriageLayout, triage: Triage) -> None:
    start, count = triage.fields["DriverListOffset"], triage.fields["DriverCount"]
    fits = max(dump.size - start, 0) // layout.entry_size
    if count > min(fits, MAX_DRIVERS):
        triage.problems.append(
            f"DriverCount {count} at 0x{layout.base + 0x34:x} is more than the file holds;"
            f" {min(fits, MAX_DRIVERS)} read"
        )
    count = min(count, fits, MAX_DRIVERS)
    table = dump.read(start, count * layout.entry_size)  # one read: MAX_DRIVERS entries fit in MAX_READ
    pool = _Pool(dump, triage.fields["StringPoolOffset"], triage.fields["StringPoolSize"])
    width = layout.pointer
    for index in range(len(table) // layout.entry_size):
        at = index * layout.entry_size
        base, size = _int(table, at + layout.dll_base, width), _int(table, at + layout.image_size, 4)
        name = pool.name(_int(table, at, 4))
        if name is None:
            triage.problems.append(
                f"the name of driver entry {index} (at 0x{start + at:x}) is not in the string pool"
            )
        triage.drivers.append(
            DriverEntry(
                name or f"<unnamed at 0x{base:x}>",
                base,
                size,
                start + at,
                _int(table, at + layout.timestamp, 4),
                _int(table, at + layout.checksum, 4),
            )
        )


def _unloaded_at(dump: DumpFile, layout: TriageLayout, first: int, count: int) -> list[DriverEntry | None]:
    """The entries of the unloaded-driver list starting at ``first``; ``None`` for one not well formed (no
    name, or an empty or reversed address range)."""
    entries: list[DriverEntry | None] = []
    for index in range(min(count, MAX_UNLOADED, max(dump.size - first, 0) // layout.unloaded_size)):
        entry = first + index * layout.unloaded_size
        length = dump.u16(entry) or 0
        name = dump.utf16(entry + layout.unloaded_name, min(length & ~1, 24)) if length else None
        begin = dump.pointer(entry + layout.unloaded_start, layout.pointer * 8)
        end = dump.pointer(entry + layout.unloaded_start + layout.pointer, layout.pointer * 8)
        if begin is None or end is None or not name or end <= begin:
            entries.append(None)
        else:
            entries.append(DriverEntry(name, begin, end - begin, entry, unloaded=True))
    return entries


def _unloaded(dump: DumpFile, layout: TriageLayout, triage: Triage) -> None:
    start = triage.fields["UnloadedDriversOffset"]
    if not start:
        return
    count = dump.u32(start)
    if count is None:
        triage.problems.append(f"UnloadedDriversOffset 0x{start:x} is past the end of the file")
        return
    entries = _unloaded_at(dump, layout, start + layout.unloaded_first, count)
    if layout.unloaded_first != 4 and None in entries:
        # the count padded to the pointer size is an inference (see the module docstring): if the list
        # reads better right after a 4-byte count, read it so, and say so
        packed = _unloaded_at(dump, layout, start + 4, count)
        if packed.count(None) < entries.count(None):
            triage.notes.append(
                f"the unloaded-driver list at 0x{start:x} starts right after its count (no padding); read so"
            )
            entries = packed
    bad = entries.count(None)
    if bad:
        triage.problems.append(
            f"{bad} of {len(entries)} unloaded-driver entries at 0x{start:x} are not well formed"
        )
    triage.unloaded.extend(entry for entry in entries if entry is not None)


def _data_blocks(dump: DumpFile, layout: TriageLayout, triage: Triage) -> None:
    """The memory the triage dump kept: its data page and its data blocks (address, file offset, size)."""
    wide = layout.pointer == 8
    page_at, blocks_at = (0x60, 0x78) if wide else (0x4C, 0x60)
    page = dump.pointer(layout.base + page_at, layout.pointer * 8)
    page_offset, page_size = (
        dump.u32(layout.base + page_at + layout.pointer),
        dump.u32(layout.base + page_at + layout.pointer + 4),
    )
    if page and page_offset and page_size:
        triage.blocks.append((page, page_offset, min(page_size, MAX_STACK_BYTES)))
    offset, count = dump.u32(layout.base + blocks_at), dump.u32(layout.base + blocks_at + 4)
    if not offset or not count:
        return
    size = 16 if wide else 12
    table = dump.read(offset, min(count, MAX_BLOCKS) * size)
    for at in range(0, len(table) - size + 1, size):
        address = _int(table, at, layout.pointer)
        file_offset, length = _int(table, at + layout.pointer, 4), _int(table, at + layout.pointer + 4, 4)
        if file_offset + length <= dump.size and length:
            triage.blocks.append((address, file_offset, length))


class BlockMemory:
    """Reads of the virtual addresses a triage dump kept (its data page and data blocks): a read must
    fall inside one block, as the debugger can only show what the dump holds."""

    def __init__(self, dump: DumpFile, blocks: list[tuple[int, int, int]], bits: int) -> None:
        self._dump = dump
        self._blocks = sorted(blocks)
        self.bits = bits

    def read(self, va: int, size: int) -> bytes | None:
        for address, offset, length in self._blocks:
            if address <= va and va + size <= address + length:
                data = self._dump.read(offset + va - address, size)
                return data if len(data) == size else None
        return None


def _context_and_stack(dump: DumpFile, layout: TriageLayout, triage: Triage) -> None:
    context = triage.fields["ContextOffset"]
    triage.rip = dump.pointer(context + layout.rip, layout.pointer * 8) if context else None
    triage.rsp = dump.pointer(context + layout.rsp, layout.pointer * 8) if context else None
    offset, size = triage.fields["CallStackOffset"], triage.fields["SizeOfCallStack"]
    if not offset or not size:
        return
    triage.stack = dump.read(offset, min(size, MAX_STACK_BYTES))
    triage.stack_offset = offset
    if len(triage.stack) < min(size, MAX_STACK_BYTES):
        triage.problems.append(
            f"the call-stack region at 0x{offset:x} is cut short ({len(triage.stack)} of {size} bytes)"
        )
