"""A small, bounded reader for the parts of a PDB that symbolic's symcache leaves out.

symbolic answers function + file + line for code with line information, and nothing (``[]``) for code
without it: CRT and assembler stubs, import thunks, compiler-generated helpers. A debugger still names
those from the PDB's procedure records (``S_GPROC32``/``S_LPROC32`` in each module's symbol stream, which
carry the undecorated name and the code size) and its public symbols (``S_PUB32`` in the symbol record
stream: a decorated name at an address, no size). This module reads exactly those records from the MSF
container, plus the section headers that turn ``segment:offset`` into an RVA.

Layout (MSF 7.00, as documented by LLVM's "The PDB File Format"): a superblock, a block map, a stream
directory, then streams made of blocks. Stream 3 (DBI) names the symbol-record stream, lists the modules
with their symbol streams, and points through its optional debug header at the section-header stream.

Everything is bounded by the file's size and the caps below; malformed input raises :class:`MsfError`
with a message saying what was wrong, never anything else.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator

import msgspec

MSF_MAGIC = b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\x00\x00\x00"
MAX_STREAMS = 1_000_000
MAX_RECORDS = 5_000_000
MAX_NAME = 4096

S_PUB32 = 0x110E
S_LPROC32 = 0x110F
S_GPROC32 = 0x1110
S_LPROC32_ID = 0x1146
S_GPROC32_ID = 0x1147
_PROC_KINDS = (S_LPROC32, S_GPROC32, S_LPROC32_ID, S_GPROC32_ID)
_DBI_STREAM = 3
_DBG_SECTION_HEADERS = 5  # index of the section-header stream in DBI's optional debug header
_NIL_STREAM = 0xFFFFFFFF
PUBLIC_FUNCTION_FLAG = 0x2  # cvpsfFunction


class MsfError(Exception):
    """The file is not a readable MSF 7.00 PDB, or a structure in it is inconsistent."""


class Procedure(msgspec.Struct, frozen=True):
    """A function from a module's symbol stream: undecorated name, RVA and code size."""

    name: str
    rva: int
    size: int


class Public(msgspec.Struct, frozen=True):
    """A public symbol: the linker's (decorated) name at an RVA; ``is_function`` from its flags."""

    name: str
    rva: int
    is_function: bool


class SectionRange(msgspec.Struct, frozen=True):
    """A section of the image as the PDB records it (for placing symbols and telling code from data)."""

    rva: int
    size: int
    characteristics: int

    @property
    def executable(self) -> bool:
        return bool(self.characteristics & 0x20000000)


class PdbTables(msgspec.Struct, frozen=True):
    """What :func:`read_tables` found. ``notes`` lists parts that could not be read (the rest still can).

    ``guid``/``age`` identify the PDB (upper-case GUID with dashes; the DBI age, which is the one the
    image's CodeView record carries), or None when the info stream is unreadable.
    """

    procedures: tuple[Procedure, ...]
    publics: tuple[Public, ...]
    sections: tuple[SectionRange, ...]
    guid: str | None
    age: int | None
    machine: int  # IMAGE_FILE_MACHINE_* from DBI (0x14C x86, 0x8664 x64, 0xAA64 arm64); 0 when unknown
    notes: tuple[str, ...]


class _Msf:
    """Stream access over the MSF container held in memory."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 56 or data[:32] != MSF_MAGIC:
            raise MsfError("not an MSF 7.00 PDB (bad magic)")
        self.data = data
        block_size, _, num_blocks, dir_bytes, _, map_addr = struct.unpack_from("<6I", data, 32)
        if block_size not in (512, 1024, 2048, 4096, 8192, 16384, 32768):
            raise MsfError(f"bad MSF block size {block_size}")
        self.block_size = block_size
        if num_blocks * block_size > len(data) + block_size:
            raise MsfError("truncated PDB: fewer blocks in the file than the superblock claims")
        if dir_bytes > len(data):
            raise MsfError("corrupt PDB: the stream directory is larger than the file")
        dir_blocks = -(-dir_bytes // block_size)
        map_offset = map_addr * block_size
        if map_offset + dir_blocks * 4 > len(data) or dir_blocks == 0:
            raise MsfError("truncated or corrupt PDB: the stream directory's block map is out of range")
        block_list = struct.unpack_from(f"<{dir_blocks}I", data, map_offset)
        directory = self._gather(block_list, dir_bytes)
        (num_streams,) = struct.unpack_from("<I", directory, 0)
        if num_streams > MAX_STREAMS or 4 + num_streams * 4 > len(directory):
            raise MsfError("corrupt PDB: stream directory is inconsistent")
        sizes = struct.unpack_from(f"<{num_streams}I", directory, 4)
        pos = 4 + num_streams * 4
        self.streams: list[tuple[int, tuple[int, ...]]] = []
        for size in sizes:
            if size == _NIL_STREAM:
                self.streams.append((0, ()))
                continue
            if size > len(
                data
            ):  # a stream cannot hold more than the file: repeated blocks would blow memory up
                raise MsfError("corrupt PDB: a stream is larger than the file")
            count = -(-size // block_size)
            if pos + count * 4 > len(directory):
                raise MsfError("corrupt PDB: stream directory ends early")
            self.streams.append((size, struct.unpack_from(f"<{count}I", directory, pos)))
            pos += count * 4

    def _gather(self, blocks: tuple[int, ...], size: int) -> bytes:
        parts = []
        for block in blocks:
            start = block * self.block_size
            if start + self.block_size > len(self.data) and start + min(size, self.block_size) > len(
                self.data
            ):
                raise MsfError(f"truncated PDB: block {block} lies past the end of the file")
            parts.append(self.data[start : start + self.block_size])
        return b"".join(parts)[:size]

    def stream(self, index: int) -> bytes:
        if not 0 <= index < len(self.streams):
            raise MsfError(f"stream {index} does not exist")
        size, blocks = self.streams[index]
        return self._gather(blocks, size)


def _records(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(kind, offset of the record's data, end of record) for each CodeView symbol record in a range."""
    pos = start
    end = min(end, len(data))
    count = 0
    while pos + 4 <= end and count < MAX_RECORDS:
        length, kind = struct.unpack_from("<HH", data, pos)
        if length < 2:
            return
        yield kind, pos + 4, min(pos + 2 + length, end)
        pos += 2 + length
        count += 1


def _name(data: bytes, start: int, end: int) -> str:
    raw = data[start : min(end, start + MAX_NAME)]
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def read_tables(data: bytes) -> PdbTables:
    """Read procedures, publics and section RVAs from PDB bytes. Raises :class:`MsfError` when the container
    or its DBI stream cannot be read; damage inside one module only costs that module (a note)."""
    try:
        return _read_tables(data)
    except (struct.error, IndexError, ValueError) as error:
        raise MsfError(f"corrupt PDB ({type(error).__name__}: {error})") from None


def _read_tables(data: bytes) -> PdbTables:
    msf = _Msf(data)
    dbi = msf.stream(_DBI_STREAM)
    if len(dbi) < 64:
        raise MsfError("PDB has no DBI stream (no symbols)")
    header = struct.unpack_from("<iIIHHHHHHiiiiiIiiHHI", dbi, 0)
    sym_record_stream = header[7]
    mod_size, contrib_size, map_size, files_size, tsm_size = header[9:14]
    dbg_size, ec_size = header[15], header[16]
    notes: list[str] = []
    dbg_offset = 64 + mod_size + contrib_size + map_size + files_size + tsm_size + ec_size
    sections = _sections(msf, dbi, dbg_offset, dbg_size, notes)
    guid, age = _identity(msf, header[2], notes)

    def rva(segment: int, offset: int) -> int | None:
        if 1 <= segment <= len(sections):
            return sections[segment - 1].rva + offset
        return None

    procedures: list[Procedure] = []
    pos = 64
    mod_end = 64 + mod_size
    bad_modules = 0
    read_streams: set[int] = set()
    while pos + 64 <= min(mod_end, len(dbi)):
        stream_index, sym_bytes = struct.unpack_from("<HI", dbi, pos + 34)
        name_end = dbi.find(b"\0", pos + 64)
        obj_end = dbi.find(b"\0", name_end + 1) if name_end >= 0 else -1
        if obj_end < 0:
            notes.append("module list is truncated")
            break
        pos = (obj_end + 1 + 3) & ~3
        if stream_index == 0xFFFF or sym_bytes <= 4 or stream_index in read_streams:
            continue  # a stream named by two modules is corrupt (and would cost the time twice)
        read_streams.add(stream_index)
        try:
            symbols = msf.stream(stream_index)
        except MsfError:
            bad_modules += 1
            continue
        for kind, at, end in _records(symbols, 4, sym_bytes):
            if kind in _PROC_KINDS and end - at >= 35:
                size, offset, segment = (
                    struct.unpack_from("<I", symbols, at + 12)[0],
                    *struct.unpack_from("<IH", symbols, at + 28),
                )
                start = rva(segment, offset)
                if start is not None:
                    procedures.append(Procedure(_name(symbols, at + 35, end), start, size))
    if bad_modules:
        notes.append(f"{bad_modules} module symbol streams could not be read")

    publics: list[Public] = []
    if sym_record_stream != 0xFFFF:
        try:
            records = msf.stream(sym_record_stream)
        except MsfError as error:
            notes.append(f"public symbols could not be read: {error}")
            records = b""
        for kind, at, end in _records(records, 0, len(records)):
            if kind == S_PUB32 and end - at >= 10:
                flags, offset, segment = struct.unpack_from("<IIH", records, at)
                start = rva(segment, offset)
                if start is not None:
                    publics.append(
                        Public(_name(records, at + 10, end), start, bool(flags & PUBLIC_FUNCTION_FLAG))
                    )
    return PdbTables(tuple(procedures), tuple(publics), sections, guid, age, header[18], tuple(notes))


def _identity(msf: _Msf, dbi_age: int, notes: list[str]) -> tuple[str | None, int | None]:
    """GUID from the PDB info stream (stream 1); the age from DBI, as symbolic and the debuggers match it."""
    info = msf.stream(1) if len(msf.streams) > 1 else b""
    if len(info) < 28:
        notes.append("PDB info stream is missing: the PDB's GUID is unknown")
        return None, dbi_age or None
    guid = str(uuid.UUID(bytes_le=bytes(info[12:28]))).upper()
    return guid, dbi_age or struct.unpack_from("<I", info, 8)[0]


def _sections(
    msf: _Msf, dbi: bytes, dbg_offset: int, dbg_size: int, notes: list[str]
) -> tuple[SectionRange, ...]:
    """Section headers from the stream named by DBI's optional debug header."""
    if dbg_size < 2 * (_DBG_SECTION_HEADERS + 1) or dbg_offset + dbg_size > len(dbi):
        notes.append("no section headers in the PDB: symbols cannot be placed")
        return ()
    (index,) = struct.unpack_from("<H", dbi, dbg_offset + 2 * _DBG_SECTION_HEADERS)
    if index == 0xFFFF:
        notes.append("no section headers in the PDB: symbols cannot be placed")
        return ()
    headers = msf.stream(index)
    out = []
    for i in range(len(headers) // 40):
        virtual_size, virtual_address = struct.unpack_from("<II", headers, i * 40 + 8)
        (characteristics,) = struct.unpack_from("<I", headers, i * 40 + 36)
        out.append(SectionRange(virtual_address, virtual_size, characteristics))
    return tuple(out)
