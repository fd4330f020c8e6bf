"""Per-image facts the call-site analysis needs: the IAT slots of interesting imports, import thunks,
routine pointers stored in globals, strings in the image's data, and the code regions to analyse."""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

import msgspec

from hvci.images.callsites.results import FunctionName
from hvci.images.callsites.values import Val
from hvci.knowledge import kb, kmdf, optin
from symbols.pe import PeImage

MAX_NAME_CHARS = 256
MAX_FUNCTION_BYTES = 1 << 20

ROUTINE_LOOKUP = "MmGetSystemRoutineAddress"
INIT_UNICODE = "RtlInitUnicodeString"


class Region(msgspec.Struct, frozen=True):
    """A range of code analysed as one function (decoded by :mod:`hvci.images.callsites.x86` or
    :mod:`hvci.images.callsites.arm64`)."""

    start: int
    end: int
    source: str  # "pdata" | "pdb" | "gap"


class Store(msgspec.Struct, frozen=True):
    """A write into the image's data seen in the code: ``size`` bytes of ``value`` at RVA ``rva`` by the
    instruction at ``address``; ``version_check`` is the address of an earlier call in the same function
    that asks which Windows runs (the NX opt-in pattern), if any."""

    rva: int
    size: int
    value: Val
    address: int
    version_check: tuple[str, int] | None


class WdfTable(msgspec.Struct, frozen=True):
    """A KMDF driver's WdfFunctions table: the global that holds its address (filled by WdfVersionBind), the
    number of functions it has and the KMDF version bound to, from the driver's WDF_BIND_INFO."""

    rva: int
    count: int
    version: str


class Target(msgspec.Struct, frozen=True):
    """What a call reaches: an API, the DLL it is imported from (when known) and how."""

    api: str
    dll: str | None
    how: str


class Image:
    """Per-image facts the analysis needs: code bytes, IAT slots of interesting imports, thunks."""

    def __init__(self, pe: PeImage, table: kb.KnowledgeBase) -> None:
        self.pe = pe
        self.bits = 32 if pe.machine == "x86" else 64
        self.kb = table
        self.slots: dict[int, Target] = {}
        self.imported: dict[str, tuple[str, int]] = {}
        for imp in pe.imports:
            if imp.name is None:
                continue
            if table.affected_api(imp.name) is not None:
                self.imported.setdefault(imp.name, (imp.dll, imp.iat_rva))
            if table.affected_api(imp.name) is not None or imp.name in (ROUTINE_LOOKUP, INIT_UNICODE):
                self.slots[imp.iat_rva] = Target(imp.name, imp.dll, "[IAT]")
        self.thunks: dict[int, Target] = {}
        self.wdf = wdf_table(pe, self.bits)
        #: ``__guard_dispatch_icall_fptr``: /guard:cf calls go through it with the target in rax
        self.guard_dispatch = pe.guard_dispatch_rva
        self.global_fns: dict[int, Target] = {}
        self.global_ustr: dict[int, str] = {}
        #: counts changes to ``global_fns`` and ``global_ustr``: a function run before one must run again
        self.facts = 0
        versions = optin.load().version_apis
        #: IAT slots of the calls that tell the Windows version (RtlGetVersion...)
        self.version_slots = {i.iat_rva: i.name for i in pe.imports if i.name in versions}
        #: writes into the image's data, by the address of the writing instruction
        self.stores: dict[int, Store] = {}
        #: RVA of data -> addresses of instructions that take its address (writes through it are not seen)
        self.address_taken: dict[int, set[int]] = {}
        self._globals: dict[tuple[int, int], Val] = {}

    def code(self, region: Region) -> tuple[bytes, bool]:
        """A region's bytes, at most :data:`MAX_FUNCTION_BYTES` (a hostile ``.pdata`` range can claim GBs),
        and whether they were cut to that."""
        size = region.end - region.start
        if size > MAX_FUNCTION_BYTES and region.source != "gap":
            return self.pe.read(region.start, MAX_FUNCTION_BYTES), True
        return self.pe.read(region.start, size), False

    def slot_target(self, rva: int) -> Target | None:
        return self.slots.get(rva) or self.global_fns.get(rva)

    def read_wide_string(self, rva: int, length: int | None = None) -> str | None:
        data = self.pe.read(rva, length if length is not None else MAX_NAME_CHARS * 2)
        if length is None:
            end = next((i for i in range(0, len(data) - 1, 2) if data[i : i + 2] == b"\0\0"), None)
            if end is None:
                return None
            data = data[:end]
        try:
            text = data.decode("utf-16-le")
        except UnicodeDecodeError:
            return None
        return text if text.isprintable() and text else None

    def read_unicode_string(self, rva: int) -> str | None:
        """A UNICODE_STRING in the image's data (``RTL_CONSTANT_STRING``): length + buffer pointer."""
        if rva in self.global_ustr:
            return self.global_ustr[rva]
        size = 16 if self.bits == 64 else 8
        raw = self.pe.read(rva, size)
        if len(raw) < size:
            return None
        length = struct.unpack_from("<H", raw, 0)[0]
        buffer = struct.unpack_from("<Q" if self.bits == 64 else "<I", raw, 8 if self.bits == 64 else 4)[0]
        target = buffer - self.pe.image_base
        if not 0 < length <= MAX_NAME_CHARS * 2 or not 0 <= target < self.pe.size_of_image:
            return None
        return self.read_wide_string(target, length)

    def global_value(self, rva: int, size: int) -> Val:
        """What a load of ``size`` bytes from the global at ``rva`` gives: known only at run time, with the
        file's initial value in the reason. Made once per global (loops load the same ones again)."""
        value = self._globals.get((rva, size))
        if value is None:
            initial = self.initial_value(rva, size)
            note = f" (initial value in the file: 0x{initial:x})" if initial is not None else ""
            reason = f"loaded at run time from the global at RVA 0x{rva:x}{note}"
            value = self._globals[(rva, size)] = Val("global", ref=rva, reason=reason, size=size)
        return value

    def initial_value(self, rva: int, size: int) -> int | None:
        raw = self.pe.read(rva, size)
        return int.from_bytes(raw, "little") if len(raw) == size and size in (1, 2, 4, 8) else None


def pdata_namer(pe: PeImage) -> Callable[[int], FunctionName]:
    """Names call sites by their ``.pdata`` function, with the export's name when one starts there."""
    exports = {e.rva: e.name for e in pe.exports if e.name}

    def name(rva: int) -> FunctionName:
        span = pe.function_at(rva)
        if span is None:
            return FunctionName(None, None, "none")
        if span[0] in exports:
            return FunctionName(exports[span[0]], span[0], "exports")
        return FunctionName(f"sub_{span[0]:x}", span[0], "pdata")

    return name


def function_ranges(pe: PeImage, extra: Sequence[tuple[int, int]]) -> tuple[list[Region], int]:
    """Known functions, ``.pdata`` then PDB procedures it does not cover, none overlapping another: of two
    that overlap, the smaller is kept (a hostile ``.pdata`` can list thousands of ranges over the same code,
    or one over all of it), so each byte of code is analysed once. Returns the ranges and how many were
    dropped."""
    candidates = [Region(b, e, "pdata") for b, e in pe.functions]
    candidates += [Region(b, e, "pdb") for b, e in extra if b < e and pe.function_at(b) is None]
    candidates.sort(key=lambda r: (r.start, r.end))
    kept: list[Region] = []
    dropped = 0
    for region in candidates:
        if kept and region.start < kept[-1].end:
            dropped += 1
            last = kept[-1]
            if region.end - region.start < last.end - last.start:
                kept[-1] = region  # it starts after the one before ``last`` ends: still no overlap
            continue
        kept.append(region)
    return kept, dropped


def regions(pe: PeImage, known: Sequence[Region]) -> list[Region]:
    """The known functions in executable sections, plus the uncovered parts of those sections (leaf stubs,
    thunks and x86 code, which has no ``.pdata``): those are cut into functions at barriers later."""
    code = [s for s in pe.sections if s.executable and s.raw_size]
    out = [r for r in known if any(s.contains(r.start) for s in code)]
    for section in code:
        cursor = section.virtual_address
        end = section.virtual_address + min(
            section.mapped_size, max(section.raw_size, 0) or section.mapped_size
        )
        for region in known:
            if region.end <= cursor or region.start >= end:
                continue
            if region.start > cursor:
                out.append(Region(cursor, region.start, "gap"))
            cursor = max(cursor, region.end)
        if cursor < end:
            out.append(Region(cursor, end, "gap"))
    out.sort(key=lambda r: r.start)
    return out


def wdf_table(pe: PeImage, bits: int) -> WdfTable | None:
    """The WdfFunctions table of a KMDF driver, found through its WDF_BIND_INFO (``Size``, ``Component`` =
    L"KmdfLibrary", ``Version``, ``FuncCount``, ``FuncTable``): the struct that points at that string."""
    name = kmdf.load().component.encode("utf-16-le") + b"\0\0"
    word = bits // 8
    data = [s for s in pe.sections if not s.executable and s.raw_size]
    for section in data:
        at = pe.read(section.virtual_address, section.raw_size).find(name)
        if at < 0:
            continue
        pointer = (pe.image_base + section.virtual_address + at).to_bytes(word, "little")
        for holder in data:
            raw = pe.read(holder.virtual_address, holder.raw_size)
            where = raw.find(pointer)
            while where >= word:
                found = _bind_info(pe, raw[where - word : where - word + 6 * word], word)
                if found is not None:
                    return found
                where = raw.find(pointer, where + 1)
    return None


def _bind_info(pe: PeImage, raw: bytes, word: int) -> WdfTable | None:
    """WDF_BIND_INFO at the start of ``raw`` (its Component field checked by the caller), if it is one."""
    version_at = 2 * word  # Size (padded to a word), Component
    if len(raw) < version_at + 16 + word:
        return None
    major, minor, _build, count = struct.unpack_from("<IIII", raw, version_at)
    table = int.from_bytes(raw[version_at + 16 : version_at + 16 + word], "little") - pe.image_base
    if not (0 < count <= 10_000 and 0 < table < pe.size_of_image and major < 100 and minor < 1000):
        return None
    return WdfTable(table, count, f"{major}.{minor}")
