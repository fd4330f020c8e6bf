"""A small typed adapter over ``pefile``: the parts of a PE image that triage, scanning and symbols need.

``pefile`` is untyped, uses WINNT.H attribute names and parses more than we need; a driver scan or a symbol
lookup wants sections with their flags, imports with their IAT slots, exports, base relocations, ``.pdata``
function ranges and the CodeView record that keys the PDB. :class:`PeImage` reads exactly those, once, with
bounded effort: ``pefile`` is asked only for headers, imports and exports (``fast_load`` + selective
``parse_data_directories``), while the debug directory, ``.pdata`` and base relocations are walked here
with hard caps on counts, because hostile or truncated files must cost bounded time and memory.

Malformed content never raises: what could not be read becomes a line in :attr:`PeImage.diagnostics` and
the affected property is empty. Only input that is not a PE at all (no ``MZ``/``PE`` headers) raises
:class:`PeError`.
"""

from __future__ import annotations

import bisect
import struct
import uuid
from pathlib import Path
from typing import Any

import pefile

from symbols.pe_records import CodeView, Export, Import, Relocation, Section

#: Files larger than this are read only up to this size (with a diagnostic): no driver is near it, and it
#: keeps a hostile input from exhausting memory.
MAX_FILE_BYTES = 512 * 1024 * 1024
#: Past a section's raw data the loader maps zeros; one read returns at most this many of them, so that a
#: header claiming a 2 GB section (or directory) costs what the file holds, not what it claims.
MAX_ZERO_FILL = 4 * 1024 * 1024
MAX_IMPORTS = 20_000
MAX_EXPORTS = 65_536
MAX_RELOCATIONS = 2_000_000
MAX_FUNCTIONS = 1_000_000
MAX_DEBUG_ENTRIES = 64
MAX_PDB_NAME = 1024
MAX_COFF_SYMBOLS = 1_000_000

IMAGE_REL_BASED_ABSOLUTE = 0
IMAGE_DEBUG_TYPE_CODEVIEW = 2

_DIR_EXPORT = 0
_DIR_IMPORT = 1
_DIR_EXCEPTION = 3
_DIR_SECURITY = 4
_DIR_BASERELOC = 5
_DIR_DEBUG = 6
_DIR_LOAD_CONFIG = 10
_DIR_IAT = 12

MACHINES: dict[int, str] = {
    0x014C: "x86",
    0x8664: "x64",
    0xAA64: "arm64",
    0xA641: "arm64ec",
    0x01C4: "arm",
    0x01C0: "arm",
    0x0200: "ia64",
}

SUBSYSTEMS: dict[int, str] = {
    1: "native",
    2: "windows-gui",
    3: "windows-cui",
    9: "windows-ce-gui",
    10: "efi-application",
    11: "efi-boot-service-driver",
    12: "efi-runtime-driver",
}


class PeError(Exception):
    """The input is not a PE image at all (no DOS/NT headers), so nothing can be read from it."""


class PeImage:
    """The parsed view of one PE image. Build it with :meth:`open`; everything is read once, up front."""

    def __init__(self, data: bytes, name: str, diagnostics: list[str]) -> None:
        self.path = name
        self._data = data
        self._diag = diagnostics
        try:
            self._pe = pefile.PE(data=data, fast_load=True)
        except pefile.PEFormatError as error:
            raise PeError(f"{name}: not a PE image ({error.value})") from None
        except Exception as error:  # pefile raises assorted errors on mangled headers
            raise PeError(f"{name}: not a PE image ({type(error).__name__}: {error})") from None
        pe = self._pe
        opt: Any = getattr(pe, "OPTIONAL_HEADER", None)
        if opt is None:
            raise PeError(f"{name}: not a PE image (no optional header)")
        fh: Any = pe.FILE_HEADER
        self.machine_code: int = int(fh.Machine)
        self.characteristics: int = int(fh.Characteristics)
        self.timestamp: int = int(fh.TimeDateStamp)
        self.is_pe32_plus: bool = int(opt.Magic) == pefile.OPTIONAL_HEADER_MAGIC_PE_PLUS
        self.image_base: int = int(opt.ImageBase)
        self.size_of_image: int = int(opt.SizeOfImage)
        self.size_of_headers: int = int(opt.SizeOfHeaders)
        if len(data) < self.size_of_headers:  # pefile then reads missing directories/sections as absent
            self._diag.append(
                f"headers truncated: the file ends at {len(data):#x}, before SizeOfHeaders "
                f"{self.size_of_headers:#x} (data directories and section table may be cut off)"
            )
        self.section_alignment: int = int(opt.SectionAlignment)
        self.file_alignment: int = int(opt.FileAlignment)
        self.dll_characteristics: int = int(opt.DllCharacteristics)
        self.subsystem: int = int(opt.Subsystem)
        self.linker_version: tuple[int, int] = (int(opt.MajorLinkerVersion), int(opt.MinorLinkerVersion))
        self.entry_point: int = int(opt.AddressOfEntryPoint)
        self.checksum: int = int(opt.CheckSum)
        self._dirs: list[tuple[int, int]] = [
            (int(d.VirtualAddress), int(d.Size)) for d in getattr(opt, "DATA_DIRECTORY", [])
        ]
        self.sections: tuple[Section, ...] = self._read_sections()
        self._section_starts = [s.virtual_address for s in self.sections]
        self.codeview: CodeView | None = self._guard("debug directory", self._read_codeview, None)
        self.functions: tuple[tuple[int, int], ...] = self._guard(".pdata", self._read_pdata, ())
        self._function_starts = [begin for begin, _ in self.functions]
        seen = len(self._diag)
        self.relocations: tuple[Relocation, ...] = self._guard("base relocations", self._read_relocations, ())
        #: False when the directory could not be read whole: "none" or "none straddles" would be unfounded
        self.relocations_complete = not any(d.startswith("base relocations") for d in self._diag[seen:])
        self.imports: tuple[Import, ...] = self._guard("imports", self._read_imports, ())
        self.exports: tuple[Export, ...] = self._guard("exports", self._read_exports, ())
        self._coff_pointer, self._coff_count = int(fh.PointerToSymbolTable), int(fh.NumberOfSymbols)
        self.coff_functions: dict[int, str] = self._guard("COFF symbols", self._read_coff_functions, {})
        # Everything is read: drop pefile's object. Not ``close()``: built from bytes there is no mmap to
        # release, and close() forces a full gc.collect() on every image (a third of a scan's PE time).
        del self._pe

    @property
    def data(self) -> bytes:
        """The file as read, for readers that parse the image themselves (symbolic, for embedded DWARF)."""
        return self._data

    # ----------------------------------------------------------------------------------------- construction

    @classmethod
    def open(cls, source: str | Path | bytes, name: str | None = None) -> PeImage:
        """Read an image from a path or from bytes. Raises :class:`PeError` only for non-PE input (or a
        file that cannot be read at all); everything else is reported in :attr:`diagnostics`."""
        diagnostics: list[str] = []
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            display = name or "<bytes>"
        else:
            display = name or str(source)
            try:
                data = read_image_file(source)
            except OSError as error:
                raise PeError(f"{display}: cannot read ({error.strerror or error})") from None
        if len(data) > MAX_FILE_BYTES:
            data = data[:MAX_FILE_BYTES]
            diagnostics.append(f"file larger than {MAX_FILE_BYTES} bytes; only the first part was read")
        if data[:2] != b"MZ":
            raise PeError(f"{display}: not a PE image (no MZ header)")
        return cls(data, display, diagnostics)

    def _guard(self, what: str, read: Any, empty: Any) -> Any:
        """Run one part's reader; a failure there costs that part only, never the image."""
        try:
            return read()
        except Exception as error:  # malformed content of any kind: report, keep the rest
            self._diag.append(f"{what}: could not be read ({type(error).__name__}: {error})")
            return empty

    def _directory(self, index: int) -> tuple[int, int] | None:
        if index >= len(self._dirs):
            return None
        rva, size = self._dirs[index]
        return (rva, size) if rva and size else None

    def _read_sections(self) -> tuple[Section, ...]:
        sections = []
        for raw in self._pe.sections:
            name = bytes(raw.Name).rstrip(b"\0").decode("latin-1")
            sections.append(
                Section(
                    name=name,
                    virtual_address=int(raw.VirtualAddress),
                    virtual_size=int(raw.Misc_VirtualSize),
                    raw_offset=int(raw.PointerToRawData),
                    raw_size=int(raw.SizeOfRawData),
                    characteristics=int(raw.Characteristics),
                )
            )
            if int(raw.PointerToRawData) + int(raw.SizeOfRawData) > len(self._data) and raw.SizeOfRawData:
                self._diag.append(f"section {name!r}: raw data runs past the end of the file (truncated?)")
        sections.sort(key=lambda s: s.virtual_address)
        return tuple(sections)

    def _read_codeview(self) -> CodeView | None:
        directory = self._directory(_DIR_DEBUG)
        if directory is None:
            return None
        rva, size = directory
        count = min(size // 28, MAX_DEBUG_ENTRIES)
        table = self.read(rva, count * 28)
        for i in range(len(table) // 28):
            _, _, _, _, kind, data_size, data_rva, data_ptr = struct.unpack_from("<IIHHIIII", table, i * 28)
            if kind != IMAGE_DEBUG_TYPE_CODEVIEW:
                continue
            length = min(data_size, 24 + MAX_PDB_NAME)
            blob = self.read(data_rva, length) if data_rva else self._data[data_ptr : data_ptr + length]
            if blob[:4] != b"RSDS":
                if blob[:4] == b"NB10":
                    self._diag.append("CodeView NB10 record (old VC6-era PDB id): no GUID to match a PDB by")
                else:
                    self._diag.append("debug directory: CodeView entry without an RSDS signature")
                continue
            if len(blob) < 24:
                self._diag.append("CodeView RSDS record is truncated")
                continue
            guid = str(uuid.UUID(bytes_le=bytes(blob[4:20]))).upper()
            (age,) = struct.unpack_from("<I", blob, 20)
            raw_name = bytes(blob[24:]).split(b"\0", 1)[0]
            return CodeView(pdb_name=raw_name.decode("utf-8", "replace"), guid=guid, age=age)
        return None

    def _read_pdata(self) -> tuple[tuple[int, int], ...]:
        directory = self._directory(_DIR_EXCEPTION)
        if directory is None:
            return ()
        rva, size = directory
        arm64 = self.machine in ("arm64", "arm64ec")
        width = 8 if arm64 else 12
        if self.machine not in ("x64", "arm64", "arm64ec"):
            return ()
        count = size // width
        if count > MAX_FUNCTIONS:
            self._diag.append(f".pdata: {count} entries, only the first {MAX_FUNCTIONS} were read")
            count = MAX_FUNCTIONS
        blob = self.read(rva, count * width)
        if len(blob) < count * width:
            self._diag.append(".pdata: directory runs past the mapped image (truncated)")
        ranges: set[tuple[int, int]] = set()
        bad = 0
        for i in range(len(blob) // width):
            if arm64:
                begin, info = struct.unpack_from("<II", blob, i * width)
                length = self._arm64_function_length(info)
                end = begin + length
            else:
                begin, end, _ = struct.unpack_from("<III", blob, i * width)
            if begin == 0 and end == 0:
                continue  # zero padding at the end of the table
            if not begin < end <= self.size_of_image:
                bad += 1
                continue
            ranges.add((begin, end))
        if bad:
            self._diag.append(f".pdata: {bad} entries with an empty or out-of-image range were ignored")
        return tuple(sorted(ranges))

    def _arm64_function_length(self, info: int) -> int:
        """ARM64 ``.pdata`` packs the length in the entry (flag != 0) or puts it in ``.xdata`` (flag 0)."""
        if info & 3:
            return ((info >> 2) & 0x7FF) * 4
        xdata = self.read(info, 4)
        return (struct.unpack("<I", xdata)[0] & 0x3FFFF) * 4 if len(xdata) == 4 else 0

    def _read_relocations(self) -> tuple[Relocation, ...]:
        directory = self._directory(_DIR_BASERELOC)
        if directory is None:
            return ()
        rva, size = directory
        blob = self.read(rva, size)
        if len(blob) < size:
            self._diag.append("base relocations: directory runs past the mapped image (truncated)")
        out: list[Relocation] = []
        pos = 0
        while pos + 8 <= len(blob):
            page, block_size = struct.unpack_from("<II", blob, pos)
            if block_size == 0 and page == 0:
                break
            if block_size < 8 or pos + block_size > len(blob):
                self._diag.append(f"base relocations: malformed block at directory offset {pos:#x}")
                break
            for word in struct.unpack_from(f"<{(block_size - 8) // 2}H", blob, pos + 8):
                kind = word >> 12
                if kind != IMAGE_REL_BASED_ABSOLUTE:  # type 0 is padding, "skipped" by the loader
                    out.append(Relocation(rva=page + (word & 0xFFF), type=kind, block_rva=page))
            if len(out) > MAX_RELOCATIONS:
                self._diag.append(f"base relocations: more than {MAX_RELOCATIONS}; the rest were not read")
                del out[MAX_RELOCATIONS:]
                break
            pos += block_size
        return tuple(out)

    def _read_imports(self) -> tuple[Import, ...]:
        directory = self._directory(_DIR_IMPORT)
        if directory is None:
            return ()
        self._pe.parse_data_directories(directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_IMPORT"]])
        out: list[Import] = []
        for entry in getattr(self._pe, "DIRECTORY_ENTRY_IMPORT", []):
            dll = _text(entry.dll)
            for imp in entry.imports:
                if len(out) >= MAX_IMPORTS:
                    self._diag.append(f"imports: more than {MAX_IMPORTS}; the rest were not read")
                    return tuple(out)
                name = _text(imp.name) if imp.name is not None else None
                ordinal = int(imp.ordinal) if imp.import_by_ordinal and imp.ordinal is not None else None
                iat_rva = int(imp.address) - self.image_base if imp.address is not None else 0
                out.append(Import(dll=dll, name=name, ordinal=ordinal, iat_rva=iat_rva))
        if not out:  # the directory is there but pefile read nothing from it: never "imports nothing"
            self._diag.append(f"imports: no import could be read from the directory at RVA {directory[0]:#x}")
        return tuple(out)

    def _read_exports(self) -> tuple[Export, ...]:
        if self._directory(_DIR_EXPORT) is None:
            return ()
        self._pe.parse_data_directories(directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_EXPORT"]])
        table = getattr(self._pe, "DIRECTORY_ENTRY_EXPORT", None)
        if table is None:
            return ()
        out = [
            Export(
                name=_text(sym.name) if sym.name is not None else None,
                ordinal=int(sym.ordinal),
                rva=int(sym.address),
                forwarder=_text(sym.forwarder) if sym.forwarder is not None else None,
            )
            for sym in table.symbols[:MAX_EXPORTS]
        ]
        return tuple(out)

    def _read_coff_functions(self) -> dict[int, str]:
        """RVA -> name of the function symbols in the COFF symbol table. Images linked by GNU ld (mingw,
        Wine) keep it; it spells names exactly, where DWARF readers may strip a leading underscore."""
        pointer, count = self._coff_pointer, min(self._coff_count, MAX_COFF_SYMBOLS)
        if not pointer or not count or pointer + 18 * count > len(self._data):
            return {}
        strings = pointer + 18 * count
        functions: dict[int, str] = {}
        index = 0
        while index < count:
            raw = self._data[pointer + 18 * index : pointer + 18 * index + 18]
            value, section, kind, _storage, aux = struct.unpack_from("<IhHBB", raw, 8)
            if kind >> 4 == 2 and 0 < section <= len(self.sections):  # DTYPE_FUNCTION, in a real section
                if raw[:4] == b"\0\0\0\0":
                    start = strings + struct.unpack_from("<I", raw, 4)[0]
                    end = self._data.find(b"\0", start, start + MAX_PDB_NAME)
                    name = self._data[start:end] if end > start else b""
                else:
                    name = raw[:8].rstrip(b"\0")
                if name:
                    rva = self.sections[section - 1].virtual_address + value
                    functions.setdefault(rva, name.decode("utf-8", "replace"))
            index += 1 + aux
        return functions

    # ------------------------------------------------------------------------------------------- queries

    @property
    def diagnostics(self) -> tuple[str, ...]:
        """What could not be read, one human-readable line each; empty for a well-formed image."""
        return tuple(self._diag)

    @property
    def machine(self) -> str:
        return MACHINES.get(self.machine_code, f"unknown-{self.machine_code:#06x}")

    @property
    def subsystem_name(self) -> str:
        return SUBSYSTEMS.get(self.subsystem, f"unknown-{self.subsystem}")

    @property
    def has_long_section_names(self) -> bool:
        """Whether a section's name is a string-table reference (``/4``): how DWARF sections
        (``.debug_info``...) are named, since a section header holds only 8 bytes of name."""
        return any(s.name.startswith("/") for s in self.sections)

    @property
    def iat_directory(self) -> tuple[int, int] | None:
        """The IAT data directory (``rva``, ``size``), or None when the image has none."""
        return self._directory(_DIR_IAT)

    @property
    def guard_dispatch_rva(self) -> int | None:
        """RVA of ``__guard_dispatch_icall_fptr`` (the load config's GuardCFDispatchFunctionPointer, PE32+
        only): the pointer through which /guard:cf code makes indirect calls, the target in rax."""
        directory = self._directory(_DIR_LOAD_CONFIG)
        if directory is None or not self.is_pe32_plus:
            return None
        raw = self.read(directory[0], min(directory[1], 0x80))
        if len(raw) < 0x80 or int.from_bytes(raw[:4], "little") < 0x80:
            return None
        pointer = int.from_bytes(raw[0x78:0x80], "little")
        return pointer - self.image_base if 0 < pointer - self.image_base < self.size_of_image else None

    @property
    def import_directory(self) -> tuple[int, int] | None:
        """The import data directory (``rva``, ``size``), or None when the image imports nothing."""
        return self._directory(_DIR_IMPORT)

    @property
    def is_signed(self) -> bool:
        """Whether an Authenticode blob is attached: the security directory is present and lies inside the
        file (its address is a file offset, not an RVA). The signature itself is not verified."""
        directory = self._directory(_DIR_SECURITY)
        return directory is not None and directory[0] + directory[1] <= len(self._data)

    @property
    def debug_id(self) -> str | None:
        """symbolic's ``debug_id`` for the PDB that belongs to this image (``guid-age``), or None."""
        return self.codeview.debug_id if self.codeview else None

    @property
    def code_id(self) -> str:
        """The symbol-server image key: TimeDateStamp as ``%08X`` followed by SizeOfImage as ``%x``."""
        return f"{self.timestamp:08X}{self.size_of_image:x}"

    def section_at(self, rva: int) -> Section | None:
        """The section whose mapped range holds ``rva``, or None (headers, gaps, past the image)."""
        index = bisect.bisect_right(self._section_starts, rva) - 1
        if index >= 0 and self.sections[index].contains(rva):
            return self.sections[index]
        return None

    def function_at(self, rva: int) -> tuple[int, int] | None:
        """The ``.pdata`` range (begin, end) that holds ``rva``, or None."""
        index = bisect.bisect_right(self._function_starts, rva) - 1
        if index >= 0 and self.functions[index][0] <= rva < self.functions[index][1]:
            return self.functions[index]
        return None

    def read(self, rva: int, size: int) -> bytes:
        """The bytes the loader would map at ``rva``: file bytes, zero-filled past a section's raw data.

        Stops early (returns fewer bytes) at a gap between sections, the end of the image or the end of a
        truncated file; never raises.
        """
        size = max(0, min(size, MAX_FILE_BYTES))
        if size <= 0:
            return b""
        chunk, filled = self._read_run(rva, size, MAX_ZERO_FILL)
        if len(chunk) == size or not chunk:
            return chunk  # one run, the common case (a function inside one section): no copies
        out = bytearray(chunk)
        zeros = MAX_ZERO_FILL - (len(chunk) if filled else 0)
        rva += len(chunk)
        size -= len(chunk)
        while size > 0:
            chunk, filled = self._read_run(rva, size, zeros)
            if not chunk:
                break
            zeros -= len(chunk) if filled else 0
            out += chunk
            rva += len(chunk)
            size -= len(chunk)
        return bytes(out)

    def _read_run(self, rva: int, size: int, zeros: int) -> tuple[bytes, bool]:
        """One run of bytes from one section (or the headers), and whether it is zero fill; ``zeros`` is how
        many more zero-filled bytes this read may still return."""
        if rva < 0:
            return b"", False
        section = self.section_at(rva)
        if section is None:
            if rva < self.size_of_headers and (not self.sections or rva < self.sections[0].virtual_address):
                limit = self.size_of_headers
                if self.sections:
                    limit = min(limit, self.sections[0].virtual_address)
                return self._data[rva : min(rva + size, limit)], False
            return b"", False
        offset = rva - section.virtual_address
        size = min(size, section.mapped_size - offset)
        raw_start = _aligned_raw_offset(section.raw_offset, self.file_alignment)
        if offset < section.raw_size:
            take = min(size, section.raw_size - offset)
            start = raw_start + offset
            return self._data[
                start : start + take
            ], False  # shorter only when the file is truncated: stop there
        return bytes(min(size, zeros)), True


def read_image_file(path: str | Path) -> bytes:
    """A file's bytes for :meth:`PeImage.open`: only the first two when they are not ``MZ`` (a device such
    as ``/dev/zero`` never ends), else at most :data:`MAX_FILE_BYTES` + 1 (the excess tells it was cut)."""
    with open(path, "rb") as handle:
        head = handle.read(2)
        if head != b"MZ":
            return head
        return head + handle.read(MAX_FILE_BYTES - 1)


def _aligned_raw_offset(pointer: int, file_alignment: int) -> int:
    """The loader rounds PointerToRawData down to 512 when FileAlignment is at least 512 (as pefile does)."""
    if file_alignment >= 0x200:
        return pointer & ~0x1FF
    return pointer


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)
