"""Call-site analysis: every call to an HVCI-affected API in a driver image, with the argument deciding it.

Driver Verifier reports Execute Pool Type / Page Protection / Page Mapping only when the code path runs. The
image shows the calls before anyone boots a lab machine: for each call (or tail jump) to an API of the
knowledge base's affected-API table, we recover the deciding argument (``AffectedApi.argument_index``) with a
small forward constant propagation inside the function, and decide it with :mod:`hvci.knowledge.decode`.

The three outcomes are kept apart on purpose: ``executable`` (a finding), ``safe`` (a pass) and ``unknown``
(the value comes from memory, a parameter, a call result, or differs between paths): unknown is never called
clean and never called bad. APIs the table lists without a deciding argument (``MmMapIoSpace``, ...) are
``banned`` findings with the table's note.

How calls are recognised (toolchain.md §2b): ``call/jmp [rip+IAT]`` (clang -O2 tail-calls imports), calls to
import thunks (``jmp [IAT]`` stubs as GNU ld writes them), ``mov reg,[rip+IAT]`` then ``call reg``, and
routine pointers from ``MmGetSystemRoutineAddress`` whose ``UNICODE_STRING`` name is visible (a constant
string, or one built with ``RtlInitUnicodeString``), including through a global they were stored in.

Cost is bounded: a cheap pass without operand details finds the functions that reference anything relevant,
only those are decoded in detail, and instructions are capped per function and per image.
"""

from __future__ import annotations

import heapq
import re
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import capstone
from capstone import x86 as cx86

from hvci.knowledge import decode, kb
from symbols.pe import PeImage

MAX_INSNS_PER_FUNCTION = 40_000
MAX_DETAILED_INSNS = 2_000_000
MAX_LITE_INSNS = 20_000_000
MAX_FUNCTION_BYTES = 1 << 20
MAX_VALUES = 8
MAX_FIXPOINT_ROUNDS = 8
MAX_NAME_CHARS = 256

ROUTINE_LOOKUP = "MmGetSystemRoutineAddress"
INIT_UNICODE = "RtlInitUnicodeString"

EXECUTABLE = "executable"
SAFE = "safe"
UNKNOWN = "unknown"
BANNED = "banned"

#: Which decoder judges which ``AffectedApi.argument_kind``.
DECODERS: Mapping[str, Callable[[int], decode.Decoded]] = {
    "pool-type": decode.pool_type,
    "pool-flags": decode.pool_flags,
    "page-protection": decode.page_protection,
    "mdl-priority": decode.mdl_priority,
    "lookaside-flags": decode.lookaside_flags,
    "cache-type": decode.cache_type,
}
#: Argument kinds whose C type is 32 bits wide (a register write may leave garbage above them).
NARROW_KINDS = frozenset({"pool-type", "page-protection", "mdl-priority", "lookaside-flags", "cache-type"})


# ---------------------------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class FunctionName:
    """Where a call site sits: the function (from the PDB, exports or ``.pdata``) and the source line."""

    name: str | None
    start: int | None
    resolved_by: str  # "pdb" | "exports" | "pdata" | "none"
    file: str | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class CallSite:
    """One call to an affected API and the verdict on its deciding argument."""

    rva: int
    api: str
    dll: str | None
    category: str
    how: str  # how the call reaches the API, e.g. "call [IAT]", "tail jump [IAT]", "call thunk 0x1200"
    instruction: str
    verdict: str  # EXECUTABLE | SAFE | UNKNOWN | BANNED
    argument_index: int | None
    argument_kind: str
    values: tuple[int, ...]  # the argument's possible constant values (empty when unknown)
    decoded: tuple[str, ...]  # decoder names of those values
    reason: str  # how the value was obtained, or why it could not be
    replacement: int | None = None
    function: FunctionName = field(default_factory=lambda: FunctionName(None, None, "none"))

    @property
    def displacement(self) -> int | None:
        return None if self.function.start is None else self.rva - self.function.start


@dataclass(frozen=True, slots=True)
class ImportedApi:
    """An affected API the image imports, and how many call sites the analysis found for it."""

    api: str
    dll: str
    category: str
    iat_rva: int
    call_sites: int


@dataclass(frozen=True, slots=True)
class CallSiteAnalysis:
    """The call-site analysis of one image. ``status`` is ``done``, ``partial`` (a cap was reached; see
    ``notes``), ``not-applicable`` (e.g. ARM64, header rules only) or ``could-not-analyse``."""

    status: str
    sites: tuple[CallSite, ...] = ()
    imported: tuple[ImportedApi, ...] = ()
    notes: tuple[str, ...] = ()
    instructions: int = 0
    code_bytes: int = 0


# --------------------------------------------------------------------------------------- abstract values


@dataclass(frozen=True, slots=True)
class Val:
    """An abstract value: ``const`` (a small set of possible ints), ``unknown`` (with the reason), ``fn``
    (the address of API ``ref``), ``addr`` (address of image data at RVA ``ref``), ``stack`` (address of
    the stack slot ``ref`` bytes above the stack pointer) or ``ustr`` (a UNICODE_STRING naming ``ref``).

    An ``unknown`` register whose low ``low_bits`` bits were then set (``mov dl, 1``) keeps them in
    ``consts``: enough for a narrow parameter such as a ``KPROCESSOR_MODE``."""

    kind: str
    consts: frozenset[int] = frozenset()
    ref: int | str | None = None
    reason: str = ""
    low_bits: int = 0


def const(value: int, mask: int = (1 << 64) - 1) -> Val:
    return Val("const", frozenset({value & mask}))


def unknown(reason: str) -> Val:
    return Val("unknown", reason=reason)


def merge(a: Val, b: Val) -> Val:
    if a is b or a == b:
        return a
    if a.kind == "unknown":
        return unknown(a.reason) if a.low_bits else a  # known low bits hold on one path only
    if b.kind == "unknown":
        return unknown(b.reason) if b.low_bits else b
    if a.kind == "const" and b.kind == "const":
        values = a.consts | b.consts
        if len(values) > MAX_VALUES:
            return unknown(f"more than {MAX_VALUES} possible values (computed in a loop?)")
        return Val("const", values)
    return unknown("differs between the paths that reach the call")


@dataclass(slots=True)
class State:
    """Registers (by family: ``a``, ``c``, ``r8``...) and stack slots keyed by offset above the stack
    pointer."""

    regs: dict[str, Val]
    slots: dict[int, Val]

    def copy(self) -> State:
        return State(dict(self.regs), dict(self.slots))

    def join(self, other: State) -> State:
        """Per register and slot, the merge of both; identical values (the common case) are kept as is."""
        return State(_join(self.regs, other.regs), _join(self.slots, other.slots))


def _join(a: dict[Any, Val], b: dict[Any, Val]) -> dict[Any, Val]:
    out = {}
    for key, value in a.items():
        theirs = b.get(key)
        if theirs is None:
            continue
        out[key] = value if value is theirs else merge(value, theirs)
    return out


def _register_table() -> dict[str, tuple[str, int, int]]:
    """Register name -> (family, width in bits, bit shift): ``ah`` -> (``a``, 8, 8)."""
    table: dict[str, tuple[str, int, int]] = {}
    for x in "abcd":
        table.update(
            {
                f"r{x}x": (x, 64, 0),
                f"e{x}x": (x, 32, 0),
                f"{x}x": (x, 16, 0),
                f"{x}l": (x, 8, 0),
                f"{x}h": (x, 8, 8),
            }
        )
    for x in ("si", "di", "bp", "sp"):
        table.update({f"r{x}": (x, 64, 0), f"e{x}": (x, 32, 0), x: (x, 16, 0), f"{x}l": (x, 8, 0)})
    for n in range(8, 16):
        table.update(
            {
                f"r{n}": (f"r{n}", 64, 0),
                f"r{n}d": (f"r{n}", 32, 0),
                f"r{n}w": (f"r{n}", 16, 0),
                f"r{n}b": (f"r{n}", 8, 0),
            }
        )
    return table


REGISTERS = _register_table()


def _register_ids() -> tuple[dict[int, tuple[str, int, int]], dict[int, str]]:
    """capstone register id -> (family, width, shift) and -> name, built once."""
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    names = {i: md.reg_name(i) for i in range(1, cx86.X86_REG_ENDING)}
    return {i: REGISTERS[n] for i, n in names.items() if n in REGISTERS}, {
        i: n for i, n in names.items() if n
    }


_REG_INFO, _REG_NAMES = _register_ids()
FAMILIES_64 = ("a", "b", "c", "d", "si", "di", "bp", "sp", *(f"r{n}" for n in range(8, 16)))
FAMILIES_32 = ("a", "b", "c", "d", "si", "di", "bp", "sp")
ARG_REGS_64 = ("c", "d", "r8", "r9")
ARG_NAMES_64 = ("rcx", "rdx", "r8", "r9")
VOLATILE_64 = ("a", "c", "d", "r8", "r9", "r10", "r11")
VOLATILE_32 = ("a", "c", "d")

_MEM_RE = re.compile(r"\[(?:rip ([+-]) )?(0x[0-9a-f]+|\d+)\]")
_BARRIERS = frozenset({"ret", "retf", "int3", "ud2", "hlt", "iretq", "iretd"})
#: Where a function in a gap (code no .pdata/PDB range covers) ends: the next one starts after these.
_CHUNK_ENDS = frozenset({"ret", "retf", "int3"})
#: What may precede a ``jmp [slot]`` import stub (nop padding aside): nothing falls through into it.
_STUB_AFTER = _BARRIERS | {"jmp"}


@dataclass(frozen=True, slots=True)
class _Region:
    start: int
    end: int
    source: str  # "pdata" | "pdb" | "gap"


class _Op(NamedTuple):
    """An x86 operand, copied out of capstone once (its attributes are slow ctypes reads)."""

    type: int
    size: int
    reg: int
    imm: int
    base: int
    index_reg: int
    scale: int
    disp: int
    access: int


class _Insn(NamedTuple):
    """An instruction with what the interpreter reads; ``raw`` for the rare ``regs_access`` query."""

    address: int
    size: int
    mnemonic: str
    op_str: str
    data: bool  # undecodable bytes kept by skipdata
    jump: bool
    ops: tuple[_Op, ...]
    raw: capstone.CsInsn

    @classmethod
    def of(cls, raw: capstone.CsInsn) -> _Insn:
        if raw.id == 0:
            return cls(raw.address, raw.size, raw.mnemonic, raw.op_str, True, False, (), raw)
        ops = tuple(
            _Op(
                o.type,
                o.size,
                o.reg if o.type == cx86.X86_OP_REG else 0,
                o.imm if o.type == cx86.X86_OP_IMM else 0,
                o.mem.base if o.type == cx86.X86_OP_MEM else 0,
                o.mem.index if o.type == cx86.X86_OP_MEM else 0,
                o.mem.scale if o.type == cx86.X86_OP_MEM else 1,
                o.mem.disp if o.type == cx86.X86_OP_MEM else 0,
                o.access,
            )
            for o in raw.operands
        )
        return cls(raw.address, raw.size, raw.mnemonic, raw.op_str, False, _is_jump(raw.mnemonic), ops, raw)


class _Scanned(NamedTuple):
    region: _Region
    mem: set[int]
    direct: set[int]
    stubs: list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class _Target:
    api: str
    dll: str | None
    how: str


# -------------------------------------------------------------------------------------------- analyser


class _Image:
    """Per-image facts the analysis needs: code bytes, IAT slots of interesting imports, thunks."""

    def __init__(self, pe: PeImage, table: kb.KnowledgeBase) -> None:
        self.pe = pe
        self.bits = 64 if pe.machine == "x64" else 32
        self.kb = table
        self.slots: dict[int, _Target] = {}
        self.imported: dict[str, tuple[str, int]] = {}
        for imp in pe.imports:
            if imp.name is None:
                continue
            if table.affected_api(imp.name) is not None:
                self.imported.setdefault(imp.name, (imp.dll, imp.iat_rva))
            if table.affected_api(imp.name) is not None or imp.name in (ROUTINE_LOOKUP, INIT_UNICODE):
                self.slots[imp.iat_rva] = _Target(imp.name, imp.dll, "[IAT]")
        self.thunks: dict[int, _Target] = {}
        self.global_fns: dict[int, _Target] = {}
        self.global_ustr: dict[int, str] = {}

    def slot_target(self, rva: int) -> _Target | None:
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

    def initial_value(self, rva: int, size: int) -> int | None:
        raw = self.pe.read(rva, size)
        return int.from_bytes(raw, "little") if len(raw) == size and size in (1, 2, 4, 8) else None


def analyse_calls(
    pe: PeImage,
    *,
    extra_functions: Sequence[tuple[int, int]] = (),
    namer: Callable[[int], FunctionName] | None = None,
    table: kb.KnowledgeBase | None = None,
) -> CallSiteAnalysis:
    """Find and judge every call to an affected API in ``pe``.

    ``extra_functions`` are function ranges from the PDB (leaf functions have no ``.pdata``); ``namer`` maps
    a call-site RVA to its function (PDB, exports, ``.pdata``), defaulting to ``.pdata`` ranges.
    """
    if pe.machine not in ("x64", "x86"):
        return CallSiteAnalysis(
            "not-applicable",
            notes=(f"call-site analysis covers x64 and x86; {pe.machine}: header rules only",),
        )
    image = _Image(pe, table or kb.load())
    namer = namer or _pdata_namer(pe)
    if not pe.imports and pe.import_directory is not None:
        return CallSiteAnalysis(
            "could-not-analyse", notes=("the import directory could not be read: calls to the APIs unknown",)
        )
    if not image.slots:
        return CallSiteAnalysis("done", notes=("the image imports none of the affected APIs",), imported=())
    analyser = _Analyser(image)
    regions = _regions(pe, extra_functions)
    sites, notes = analyser.run(regions)
    named = tuple(replace(s, function=namer(s.rva)) for s in sites)
    counts: dict[str, int] = {}
    for s in named:
        counts[s.api] = counts.get(s.api, 0) + 1
    imported = []
    for name, (dll, iat) in sorted(image.imported.items()):
        api = image.kb.affected_api(name)
        assert api is not None
        imported.append(ImportedApi(name, dll, api.category, iat, counts.get(name, 0)))
    return CallSiteAnalysis(
        "partial" if analyser.capped else "done",
        named,
        tuple(imported),
        tuple(notes),
        analyser.detailed,
        analyser.code_bytes,
    )


def _pdata_namer(pe: PeImage) -> Callable[[int], FunctionName]:
    exports = {e.rva: e.name for e in pe.exports if e.name}

    def name(rva: int) -> FunctionName:
        span = pe.function_at(rva)
        if span is None:
            return FunctionName(None, None, "none")
        if span[0] in exports:
            return FunctionName(exports[span[0]], span[0], "exports")
        return FunctionName(f"sub_{span[0]:x}", span[0], "pdata")

    return name


def _regions(pe: PeImage, extra: Sequence[tuple[int, int]]) -> list[_Region]:
    """Function ranges from ``.pdata`` and the PDB, plus the uncovered parts of executable sections (leaf
    stubs, thunks and x86 code, which has no ``.pdata``): those are cut into functions at barriers later."""
    code = [s for s in pe.sections if s.executable and s.raw_size]
    known: list[_Region] = [_Region(b, e, "pdata") for b, e in pe.functions]
    covered = sorted((b, e) for b, e in pe.functions)
    for begin, end in sorted(extra):
        if pe.function_at(begin) is None and begin < end:
            known.append(_Region(begin, end, "pdb"))
            covered.append((begin, end))
    covered.sort()
    regions = [r for r in known if any(s.contains(r.start) for s in code)]
    for section in code:
        cursor = section.virtual_address
        end = section.virtual_address + min(
            section.mapped_size, max(section.raw_size, 0) or section.mapped_size
        )
        for begin, stop in covered:
            if stop <= cursor or begin >= end:
                continue
            if begin > cursor:
                regions.append(_Region(cursor, begin, "gap"))
            cursor = max(cursor, stop)
        if cursor < end:
            regions.append(_Region(cursor, end, "gap"))
    regions.sort(key=lambda r: r.start)
    return regions


class _Analyser:
    def __init__(self, image: _Image) -> None:
        self.image = image
        self.bits = image.bits
        mode = capstone.CS_MODE_64 if self.bits == 64 else capstone.CS_MODE_32
        self.lite = capstone.Cs(capstone.CS_ARCH_X86, mode)
        self.lite.skipdata = True
        self.md = capstone.Cs(capstone.CS_ARCH_X86, mode)
        self.md.detail = True
        self.md.skipdata = True
        self.detailed = 0
        self.lite_count = 0
        self.code_bytes = 0
        self.capped = False
        self.stack_escapes = False
        self.notes: list[str] = []

    # --- pass 0: cheap scan for references ------------------------------------------------------------

    def _code(self, region: _Region) -> bytes:
        """A region's bytes, at most :data:`MAX_FUNCTION_BYTES` (a hostile ``.pdata`` range can claim GBs)."""
        size = region.end - region.start
        if size > MAX_FUNCTION_BYTES and region.source != "gap":
            self.capped = True
            size = MAX_FUNCTION_BYTES
        return self.image.pe.read(region.start, size)

    def _scan(self, region: _Region) -> list[_Scanned]:
        """The cheap pass: memory RVAs and direct call/jump targets each function references, and the
        ``jmp [slot]`` stubs. Gaps between known functions are cut into functions after a ``ret``/``int3``
        that no earlier jump of the same function reaches past (MSVC puts blocks after the ``ret``)."""
        out: list[_Scanned] = []
        current = _Scanned(_Region(region.start, region.end, region.source), set(), set(), [])
        previous = before_stub = None
        reach = region.start
        for address, size, mnemonic, op_str in self.lite.disasm_lite(self._code(region), region.start):
            self.lite_count += 1
            if self.lite_count > MAX_LITE_INSNS:
                self.capped = True
                break
            if (
                region.source == "gap"
                and previous in _CHUNK_ENDS
                and mnemonic not in _CHUNK_ENDS
                and address > reach
            ):
                out.append(_Scanned(_Region(current.region.start, address, "gap"), *current[1:]))
                current = _Scanned(_Region(address, region.end, "gap"), set(), set(), [])
            match = _MEM_RE.search(op_str) if "[" in op_str else None
            if match:
                rva = self._mem_rva(address, size, match)
                if rva is not None:
                    current.mem.add(rva)
                    if mnemonic == "jmp" and (before_stub is None or before_stub in _STUB_AFTER):
                        current.stubs.append((address, rva))
            elif op_str.startswith("0x") and (mnemonic == "call" or mnemonic.startswith("j")):
                target = int(op_str, 16)
                current.direct.add(target)
                if mnemonic != "call" and target < region.end:
                    reach = max(reach, target)  # a block of this function lies there: not a new function
            previous = mnemonic
            if mnemonic != "nop":  # GNU ld pads its import stubs with nops: look through them
                before_stub = mnemonic
        out.append(current)
        return out

    def _mem_rva(self, address: int, size: int, match: re.Match[str]) -> int | None:
        sign, number = match.group(1), match.group(2)
        value = int(number, 0)
        if self.bits == 64:
            if sign is None:
                return None  # absolute addressing in x64 code is not an image reference we follow
            return address + size + (value if sign == "+" else -value)
        return (value - self.image.pe.image_base) & 0xFFFFFFFF

    # --- driver -------------------------------------------------------------------------------------

    def run(self, regions: list[_Region]) -> tuple[list[CallSite], list[str]]:
        scanned = [chunk for region in regions for chunk in self._scan(region)]
        # a stub nothing branches to stays a plain tail jump (its own site), so no call is lost
        branched_to = set().union(*(chunk.direct for chunk in scanned))
        for chunk in scanned:
            for stub, rva in chunk.stubs:
                target = self.image.slots.get(rva)
                if target is not None and stub in branched_to:
                    self.image.thunks[stub] = _Target(
                        target.api, target.dll, f"call thunk 0x{stub:x} -> [IAT]"
                    )
        interesting = set(self.image.slots)
        thunks = set(self.image.thunks)
        results: dict[int, list[CallSite]] = {}
        for index, chunk in enumerate(scanned):
            if chunk.mem & interesting or chunk.direct & thunks:
                results[index] = self._analyse(chunk.region)
        if self.image.global_fns:
            again = set(self.image.global_fns)
            for index, chunk in enumerate(scanned):
                if chunk.mem & again:
                    results[index] = self._analyse(chunk.region)
        sites = [s for index in sorted(results) for s in results[index]]
        unique = {s.rva: s for s in sites}
        if self.capped:
            self.notes.append(
                f"analysis capped (at most {MAX_DETAILED_INSNS} decoded instructions per image, "
                f"{MAX_INSNS_PER_FUNCTION} per function): some call sites may be missing"
            )
        return [unique[rva] for rva in sorted(unique)], self.notes

    # --- pass 1: dataflow over one function -----------------------------------------------------------

    def _analyse(self, region: _Region) -> list[CallSite]:
        data = self._code(region)
        insns: list[_Insn] = []
        for raw in self.md.disasm(data, region.start):
            insns.append(_Insn.of(raw))
            if len(insns) >= MAX_INSNS_PER_FUNCTION or self.detailed + len(insns) >= MAX_DETAILED_INSNS:
                self.capped = True
                break
        self.detailed += len(insns)
        self.code_bytes += len(data)
        if not insns:
            return []
        # Does the function hand out stack addresses (lea reg,[rsp+X])? Then writes through pointers and
        # calls may change stack variables, and they are forgotten at each such write.
        self.stack_escapes = any(
            i.mnemonic == "lea" and len(i.ops) == 2 and self._is_stack(i, i.ops[1]) for i in insns
        )
        blocks = _blocks(insns, region)
        by_start = {b[0].address: b for b in blocks}
        order = [b[0].address for b in blocks]
        entry_state = self._entry_state()
        states: dict[int, State] = {}
        visits: dict[int, int] = {}
        # blocks waiting to be (re)run, taken in address order: close to reverse post-order for compiled
        # code, so most blocks see all their predecessors first
        work: list[int] = []
        queued: set[int] = set()

        def reach(start: int, state: State) -> None:
            old = states.get(start)
            new = state if old is None else old.join(state)
            if new != old:
                states[start] = new
                if start not in queued:
                    queued.add(start)
                    heapq.heappush(work, start)

        # Worklist from the entry; then each block still unreached starts afresh: in .pdata/PDB functions
        # it is reached indirectly (a switch), in the gaps between them (leaf stubs, x86) a function starts.
        seeds = iter(order)
        reach(order[0], entry_state)
        while True:
            while work:
                start = heapq.heappop(work)
                queued.discard(start)
                visits[start] = visits.get(start, 0) + 1
                if visits[start] > MAX_FIXPOINT_ROUNDS:
                    continue
                if visits[start] == MAX_FIXPOINT_ROUNDS:  # still changing: a loop; give up its values
                    states[start] = self._orphan_state("a value that changes in a loop")
                out, succs = self._run_block(by_start[start], states[start], None)
                for succ in succs:
                    if succ in by_start:
                        reach(succ, out)
            seed = next((b for b in seeds if b not in states), None)
            if seed is None:
                break
            reach(seed, entry_state.copy() if region.source == "gap" else self._orphan_state())
        sites: list[CallSite] = []
        for start in order:
            self._run_block(by_start[start], states[start], sites)
        return sites

    def _entry_state(self) -> State:
        regs: dict[str, Val] = {}
        families = FAMILIES_64 if self.bits == 64 else FAMILIES_32
        for family in families:
            regs[family] = unknown("a value the function received from its caller")
        if self.bits == 64:
            for family, name in zip(ARG_REGS_64, ARG_NAMES_64, strict=True):
                regs[family] = unknown(f"a parameter of the enclosing function ({name} on entry)")
        return State(regs, {})

    def _orphan_state(
        self, reason: str = "code reached only by an indirect jump or from outside the function"
    ) -> State:
        families = FAMILIES_64 if self.bits == 64 else FAMILIES_32
        return State({f: unknown(reason) for f in families}, {})

    def _run_block(
        self, block: list[_Insn], state: State, sites: list[CallSite] | None
    ) -> tuple[State, list[int]]:
        st = state.copy()
        for insn in block:
            self._step(insn, st, sites)
        return st, _successors(block[-1])

    # --- one instruction ------------------------------------------------------------------------------

    def _step(self, insn: _Insn, st: State, sites: list[CallSite] | None) -> None:
        mnemonic = insn.mnemonic
        if insn.data:  # skipdata: bytes that do not decode
            return
        ops = insn.ops
        if mnemonic == "call" or (mnemonic == "jmp" and ops and ops[0].type != cx86.X86_OP_IMM):
            self._call(insn, st, sites, tail=mnemonic == "jmp")
            return
        if mnemonic == "jmp" and ops and ops[0].type == cx86.X86_OP_IMM:
            target = self.image.thunks.get(ops[0].imm)
            if target is not None:
                self._call(insn, st, sites, tail=True)
            return
        if insn.jump and ops and ops[0].type == cx86.X86_OP_IMM and ops[0].imm in self.image.thunks:
            self._call(insn, st.copy(), sites, tail=True)  # a conditional tail call; the fall-through goes on
            return
        if mnemonic == "push" and ops:
            value = self._read(insn, ops[0], st)
            self._shift(st, self.bits // 8)
            st.slots[0] = value
            return
        if mnemonic == "pop" and ops:
            value = st.slots.get(0, unknown("a value popped from the stack"))
            self._shift(st, -(self.bits // 8))
            if ops[0].type == cx86.X86_OP_REG:
                self._write(insn, ops[0], value, st)
            return
        if len(ops) == 2 and ops[0].type == cx86.X86_OP_REG and self._reg_family(insn, ops[0]) == "sp":
            if mnemonic in ("sub", "add") and ops[1].type == cx86.X86_OP_IMM:
                self._shift(st, ops[1].imm if mnemonic == "sub" else -ops[1].imm)
                return
            st.slots.clear()  # the stack pointer moved by an amount we do not track
            return
        if not self._compute(insn, st):
            self._clobber(insn, st)

    def _compute(self, insn: _Insn, st: State) -> bool:
        """Apply an instruction we model; False when it is not one of them."""
        m, ops = insn.mnemonic, insn.ops
        if m in ("mov", "movabs", "movzx", "movsx", "movsxd") and len(ops) == 2:
            value = self._read(insn, ops[1], st)
            if m in ("movsx", "movsxd") and value.kind == "const":
                width = ops[1].size * 8
                value = Val(
                    "const", frozenset(_sign_extend(v, width) & ((1 << 64) - 1) for v in value.consts)
                )
            self._write(insn, ops[0], value, st)
            return True
        if m == "lea" and len(ops) == 2:
            self._write(insn, ops[0], self._address(insn, ops[1], st), st)
            return True
        if (
            m == "xor"
            and len(ops) == 2
            and ops[0].type == ops[1].type == cx86.X86_OP_REG
            and ops[0].reg == ops[1].reg
        ):
            self._write(insn, ops[0], const(0), st)
            return True
        if m in _BINARY and len(ops) == 2:
            left = self._read(insn, ops[0], st)
            right = self._read(insn, ops[1], st)
            width = ops[0].size * 8
            if m == "and" and right.kind == "const" and right.consts == {0}:
                result = const(0)
            elif (
                left.kind == "const" and right.kind == "const" and len(left.consts) * len(right.consts) <= 64
            ):
                result = _fold(left.consts, right.consts, _BINARY[m], width)
            else:
                result = unknown(_derived(left, right, insn))
            self._write(insn, ops[0], result, st)
            return True
        if m in _UNARY and len(ops) == 1:
            value = self._read(insn, ops[0], st)
            width = ops[0].size * 8
            if value.kind == "const":
                value = _fold(value.consts, frozenset({0}), _UNARY[m], width)
            elif value.kind != "unknown":
                value = unknown(f"computed by `{m} {insn.op_str}` at 0x{insn.address:x}")
            self._write(insn, ops[0], value, st)
            return True
        if m.startswith("cmov") and len(ops) == 2:
            self._write(insn, ops[0], merge(self._read(insn, ops[0], st), self._read(insn, ops[1], st)), st)
            return True
        return m in ("cmp", "test", "bt", "nop") or insn.jump
        return False

    def _clobber(self, insn: _Insn, st: State) -> None:
        """An instruction we do not model: whatever it writes becomes unknown."""
        reason = f"set by `{insn.mnemonic} {insn.op_str}` at 0x{insn.address:x}"
        try:
            _, written = insn.raw.regs_access()
        except capstone.CsError:
            written = []
        for reg in written:
            info = _REG_INFO.get(reg)
            if info is None:
                continue
            if info[0] == "sp":
                st.slots.clear()
            st.regs[info[0]] = unknown(reason)
        for op in insn.ops:
            if op.type != cx86.X86_OP_MEM or not op.access & capstone.CS_AC_WRITE:
                continue
            if self._is_stack(insn, op):
                st.slots[op.disp] = unknown(reason)
            elif self._mem_target(insn, op) is None and self.stack_escapes:
                self._forget_stack(st)

    def _forget_stack(self, st: State) -> None:
        """Stack variables are no longer known, except the UNICODE_STRINGs a routine lookup reads."""
        st.slots = {k: v for k, v in st.slots.items() if v.kind == "ustr"}

    # --- operands ---------------------------------------------------------------------------------------

    def _reg_family(self, insn: _Insn, op: _Op) -> str | None:
        info = _REG_INFO.get(op.reg)
        return info[0] if info else None

    def _is_stack(self, insn: _Insn, op: _Op) -> bool:
        if op.base == 0 or op.index_reg != 0:
            return False
        info = _REG_INFO.get(op.base)
        return info is not None and info[0] == "sp"

    def _mem_target(self, insn: _Insn, op: _Op) -> int | None:
        """The image RVA a memory operand names (rip-relative in x64, absolute in x86), or None."""
        if op.index_reg != 0:
            return None
        disp: int = op.disp
        if op.base == cx86.X86_REG_RIP:
            return int(insn.address + insn.size + disp)
        if op.base == 0 and self.bits == 32:
            return (disp - self.image.pe.image_base) & 0xFFFFFFFF
        return None

    def _read(self, insn: _Insn, op: _Op, st: State) -> Val:
        width = op.size * 8
        if op.type == cx86.X86_OP_IMM:
            imm = op.imm & ((1 << width) - 1) if width else op.imm
            if self.bits == 32 and 0 <= imm - self.image.pe.image_base < self.image.pe.size_of_image:
                return Val("addr", ref=imm - self.image.pe.image_base, consts=frozenset({imm}))
            return const(imm)
        if op.type == cx86.X86_OP_REG:
            info = _REG_INFO.get(op.reg)
            if info is None:
                return unknown(f"register {_REG_NAMES.get(op.reg, '?')}")
            family, bits, shift = info
            value = st.regs.get(family, unknown("a value the function received from its caller"))
            if value.kind == "const" and (bits < 64 or shift):
                mask = (1 << bits) - 1
                return Val("const", frozenset((v >> shift) & mask for v in value.consts))
            return value
        if op.type == cx86.X86_OP_MEM:
            if self._is_stack(insn, op):
                slot = st.slots.get(op.disp)
                if slot is None:
                    return unknown(
                        f"a stack variable [{_REG_NAMES.get(op.base, '?')}+0x{op.disp:x}] not "
                        "written in the visible code"
                    )
                if slot.kind == "const" and width < 64:
                    return Val("const", frozenset(v & ((1 << width) - 1) for v in slot.consts))
                return slot
            rva = self._mem_target(insn, op)
            if rva is not None:
                target = self.image.slot_target(rva)
                if target is not None:
                    return Val("fn", ref=target.api, reason=f"{target.how} slot at RVA 0x{rva:x}")
                initial = self.image.initial_value(rva, op.size)
                note = f" (initial value in the file: 0x{initial:x})" if initial is not None else ""
                return unknown(f"loaded at run time from the global at RVA 0x{rva:x}{note}")
            return unknown(f"loaded from memory `{insn.op_str.split(',')[-1].strip()}` at 0x{insn.address:x}")
        return unknown("an operand we do not model")

    def _address(self, insn: _Insn, op: _Op, st: State) -> Val:
        """``lea``: an image address, a stack address, or base + index * scale + disp when all are known."""
        rva = self._mem_target(insn, op)
        if rva is not None:
            return Val("addr", ref=rva)
        if self._is_stack(insn, op):
            return Val("stack", ref=op.disp)
        total: frozenset[int] = frozenset({op.disp})
        for reg, scale in ((op.base, 1), (op.index_reg, op.scale)):
            if reg == 0:
                continue
            info = _REG_INFO.get(reg)
            value = st.regs.get(info[0]) if info else None
            if value is None or value.kind != "const" or len(total) * len(value.consts) > MAX_VALUES:
                return unknown(f"an address computed by `lea {insn.op_str}` at 0x{insn.address:x}")
            total = frozenset(t + v * scale for t in total for v in value.consts)
        return Val("const", frozenset(t & ((1 << 64) - 1) for t in total))

    def _write(self, insn: _Insn, op: _Op, value: Val, st: State) -> None:
        if op.type == cx86.X86_OP_REG:
            info = _REG_INFO.get(op.reg)
            if info is None:
                return
            family, bits, shift = info
            if family == "sp":
                st.slots.clear()
            if bits >= 32:  # a 32-bit write zero-extends to 64 bits
                if value.kind == "const":
                    value = Val("const", frozenset(v & ((1 << bits) - 1) for v in value.consts))
                st.regs[family] = value
                return
            old = st.regs.get(family, unknown(""))
            if (
                old.kind == "const"
                and value.kind == "const"
                and len(old.consts) * len(value.consts) <= MAX_VALUES
            ):
                mask = ((1 << bits) - 1) << shift
                st.regs[family] = Val(
                    "const",
                    frozenset((o & ~mask) | ((v << shift) & mask) for o in old.consts for v in value.consts),
                )
            else:
                reason = f"partly written by `{insn.mnemonic} {insn.op_str}` at 0x{insn.address:x}"
                low = value.kind == "const" and shift == 0 and len(value.consts) <= MAX_VALUES
                st.regs[family] = (
                    Val("unknown", frozenset(v & ((1 << bits) - 1) for v in value.consts), None, reason, bits)
                    if low
                    else unknown(reason)
                )
            return
        if op.type == cx86.X86_OP_MEM:
            if self._is_stack(insn, op):
                if value.kind == "const" and op.size < 8:
                    value = Val("const", frozenset(v & ((1 << (op.size * 8)) - 1) for v in value.consts))
                st.slots[op.disp] = value
                return
            rva = self._mem_target(insn, op)
            if rva is None and self.stack_escapes:
                self._forget_stack(st)  # a write through a pointer may land in a stack variable
            if rva is not None and value.kind == "fn" and isinstance(value.ref, str):
                api = self.image.kb.affected_api(value.ref)
                if api is not None:
                    self.image.global_fns[rva] = _Target(
                        value.ref, None, f"call through the pointer stored at RVA 0x{rva:x}"
                    )

    def _shift(self, st: State, delta: int) -> None:
        """The stack pointer moved down by ``delta`` bytes: slots are now that much further above it."""
        st.slots = {offset + delta: v for offset, v in st.slots.items() if offset + delta >= 0}

    # --- calls --------------------------------------------------------------------------------------

    def _call_target(self, insn: _Insn, st: State) -> _Target | None:
        op = insn.ops[0] if insn.ops else None
        if op is None:
            return None
        if op.type == cx86.X86_OP_IMM:
            return self.image.thunks.get(op.imm)
        if op.type == cx86.X86_OP_MEM:
            rva = self._mem_target(insn, op)
            if rva is not None:
                return self.image.slot_target(rva)
            value = self._read(insn, op, st)
        else:
            value = self._read(insn, op, st)
        if value.kind == "fn" and isinstance(value.ref, str):
            return _Target(value.ref, None, f"call {insn.op_str} holding {value.ref} ({value.reason})")
        return None

    def _call(self, insn: _Insn, st: State, sites: list[CallSite] | None, tail: bool) -> None:
        target = self._call_target(insn, st)
        result = unknown(f"the return value of the call at 0x{insn.address:x}")
        if target is not None:
            if target.api == INIT_UNICODE:
                self._init_unicode(insn, st, tail)
            elif target.api == ROUTINE_LOOKUP:
                name = self._routine_name(insn, st, tail)
                if name is not None and self.image.kb.affected_api(name) is not None:
                    result = Val(
                        "fn", ref=name, reason=f'MmGetSystemRoutineAddress("{name}") at 0x{insn.address:x}'
                    )
            else:
                api = self.image.kb.affected_api(target.api)
                # an import thunk's own jump is not a call site: the calls to the thunk are
                if api is not None and sites is not None and insn.address not in self.image.thunks:
                    sites.append(self._site(insn, st, target, api, tail))
        volatile = VOLATILE_64 if self.bits == 64 else VOLATILE_32
        for family in volatile:
            st.regs[family] = unknown(f"clobbered by the call at 0x{insn.address:x}")
        st.regs["a"] = result
        # the callee may write any stack variable whose address it was given, and pops stdcall arguments
        self._forget_stack(st)

    def _arg(self, st: State, index: int, tail: bool) -> Val:
        word = self.bits // 8
        if self.bits == 64 and index < 4:
            return st.regs.get(ARG_REGS_64[index], unknown("an argument register not set here"))
        offset = (0x20 + 8 * (index - 4)) if self.bits == 64 else word * index
        if tail:
            offset += word  # a tail jump leaves the return address at the stack pointer
        value = st.slots.get(offset)
        if value is None:
            return unknown(f"the stack argument at [sp+0x{offset:x}] is not written in the visible code")
        return value

    def _init_unicode(self, insn: _Insn, st: State, tail: bool) -> None:
        dest, source = self._arg(st, 0, tail), self._arg(st, 1, tail)
        if source.kind != "addr" or not isinstance(source.ref, int):
            return
        name = self.image.read_wide_string(source.ref)
        if name is None:
            return
        if dest.kind == "stack" and isinstance(dest.ref, int):
            st.slots[dest.ref] = Val("ustr", ref=name)
        elif dest.kind == "addr" and isinstance(dest.ref, int):
            self.image.global_ustr[dest.ref] = name

    def _routine_name(self, insn: _Insn, st: State, tail: bool) -> str | None:
        arg = self._arg(st, 0, tail)
        if arg.kind == "stack" and isinstance(arg.ref, int):
            slot = st.slots.get(arg.ref)
            return (
                slot.ref if slot is not None and slot.kind == "ustr" and isinstance(slot.ref, str) else None
            )
        if arg.kind == "addr" and isinstance(arg.ref, int):
            return self.image.read_unicode_string(arg.ref)
        return None

    def _site(self, insn: _Insn, st: State, target: _Target, api: kb.AffectedApi, tail: bool) -> CallSite:
        how = target.how
        if how == "[IAT]":
            how = ("tail jump " if tail else "call ") + "[IAT]"
        elif tail and not how.startswith("tail"):
            how = f"tail jump: {how}"
        text = f"{insn.mnemonic} {insn.op_str}"

        def make(
            verdict: str,
            reason: str,
            values: tuple[int, ...] = (),
            decoded: tuple[str, ...] = (),
            replacement: int | None = None,
        ) -> CallSite:
            return CallSite(
                insn.address,
                api.name,
                target.dll or api.module,
                api.category,
                how,
                text,
                verdict,
                api.argument_index,
                api.argument_kind,
                values,
                decoded,
                reason,
                replacement,
            )

        index = api.binary_argument_index
        if index is None or api.argument_kind not in DECODERS:
            return make(BANNED, api.note or "no argument decides whether the memory is executable")
        if api.safe_when is not None:
            guard = api.safe_when
            guard_index = guard.argument_index + api.implicit_args
            guard_slot = guard_index if self.bits == 64 else x86_stack_word(api, guard.argument_index)
            condition = self._arg(st, guard_slot, tail)
            partial = condition.kind == "unknown" and condition.low_bits >= guard.bits
            known = condition.kind == "const" or partial
            low = (1 << guard.bits) - 1
            if known and condition.consts and {v & low for v in condition.consts} == {guard.value}:
                return make(SAFE, f"{self._where(guard_index)}: {guard.reason}")
        slot = index if self.bits == 64 else x86_stack_word(api)
        value = self._arg(st, slot, tail)
        where = self._where(index)
        if value.kind != "const":
            return make(UNKNOWN, f"{where}: {value.reason or f'the argument is {value.kind}, not a number'}")
        mask = 0xFFFFFFFF if api.argument_kind in NARROW_KINDS else (1 << 64) - 1
        values = tuple(sorted({v & mask for v in value.consts}))
        decoder = DECODERS[api.argument_kind]
        decoded = [decoder(v) for v in values]
        names = tuple(d.name for d in decoded)
        shown = ", ".join(f"0x{v:x} ({n})" for v, n in zip(values, names, strict=True))
        if any(d.executable for d in decoded):
            some = "" if all(d.executable for d in decoded) else " on some paths"
            replacement = next(
                (
                    decode.safe_replacement(api.argument_kind, v)
                    for v, d in zip(values, decoded, strict=True)
                    if d.executable
                ),
                None,
            )
            return make(EXECUTABLE, f"{where} is {shown}: executable{some}", values, names, replacement)
        if all(d.executable is False for d in decoded):
            return make(SAFE, f"{where} is {shown}: not executable", values, names)
        return make(UNKNOWN, f"{where} is {shown}: whether that is executable is not known", values, names)

    def _where(self, index: int) -> str:
        if self.bits == 64 and index < 4:
            return f"argument {index + 1} ({ARG_NAMES_64[index]})"
        return f"argument {index + 1} (stack)"


_MASK64 = (1 << 64) - 1
_BINARY: Mapping[str, Callable[[int, int], int]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "and": lambda a, b: a & b,
    "or": lambda a, b: a | b,
    "xor": lambda a, b: a ^ b,
    "shl": lambda a, b: a << (b & 63),
    "sal": lambda a, b: a << (b & 63),
    "shr": lambda a, b: a >> (b & 63),
    "bts": lambda a, b: a | (1 << (b & 63)),
    "btr": lambda a, b: a & ~(1 << (b & 63)),
    "btc": lambda a, b: a ^ (1 << (b & 63)),
}
_UNARY: Mapping[str, Callable[[int, int], int]] = {
    "inc": lambda a, _: a + 1,
    "dec": lambda a, _: a - 1,
    "not": lambda a, _: ~a,
    "neg": lambda a, _: -a,
}


#: By-value parameter types that take two 4-byte stack words in an x86 stdcall call.
_WIDE_TYPES = frozenset(
    {
        "PHYSICAL_ADDRESS",
        "LARGE_INTEGER",
        "ULARGE_INTEGER",
        "ULONG64",
        "ULONGLONG",
        "LONGLONG",
        "LONG64",
        "DWORD64",
        "UINT64",
        "INT64",
        "POOL_FLAGS",
        "__int64",
    }
)


def x86_stack_word(api: kb.AffectedApi, index: int | None = None) -> int:
    """The stack word (from the stack pointer at the call) of an argument (by default the deciding one) in
    an x86 call: 64-bit by-value parameters before it (``PHYSICAL_ADDRESS`` in ``MmMapIoSpaceEx``) take two
    words each."""
    index = (api.argument_index or 0) if index is None else index
    params = [p.strip() for p in api.prototype.strip().strip("()").split(",")] if api.prototype else []
    words = api.implicit_args
    for param in params[:index]:
        tokens = param.replace("*", " * ").split()
        wide = "*" not in tokens and any(t in _WIDE_TYPES for t in tokens)
        words += 2 if wide else 1
    return words + max(0, index - len(params))


def _fold(left: frozenset[int], right: frozenset[int], op: Callable[[int, int], int], width: int) -> Val:
    mask = (1 << width) - 1 if width else _MASK64
    return Val("const", frozenset(op(a & mask, b & mask) & mask for a in left for b in right))


def _derived(left: Val, right: Val, insn: _Insn) -> str:
    """Why a value computed from an unknown one is unknown: where the unknown came from, then the operation
    (``loaded from the global at RVA 0x12130, then `or eax, 0x10```), so the reader sees both halves."""
    step = f"`{insn.mnemonic} {insn.op_str}` at 0x{insn.address:x}"
    base = left if left.kind == "unknown" else right
    if base.kind == "unknown" and base.reason:
        origin, _, before = base.reason.partition(", then ")
        if step in before:
            return base.reason
        return f"{origin}, then {'operations ending with ' if before else ''}{step}"
    return f"computed by {step}"


def _sign_extend(value: int, width: int) -> int:
    if width and value & (1 << (width - 1)):
        return value - (1 << width)
    return value


def _is_jump(mnemonic: str) -> bool:
    """Jumps (``jmp``, ``jcc``, ``jecxz``, ``loop*``), from the mnemonic: cheaper than capstone's groups."""
    return mnemonic.startswith(("j", "loop"))


def _successors(insn: _Insn) -> list[int]:
    m = insn.mnemonic
    after = insn.address + insn.size
    if insn.data:  # undecodable bytes (skipdata): nothing sensible follows
        return []
    if m in _BARRIERS or m.startswith("ret"):
        return []
    if m == "jmp":
        op = insn.ops[0] if insn.ops else None
        return [op.imm] if op is not None and op.type == cx86.X86_OP_IMM else []
    if insn.jump:
        op = insn.ops[0] if insn.ops else None
        targets = [after]
        if op is not None and op.type == cx86.X86_OP_IMM:
            targets.append(op.imm)
        return targets
    return [after]


def _blocks(insns: list[_Insn], region: _Region) -> list[list[_Insn]]:
    """Split a function into basic blocks at jump targets and after branches and barriers."""
    leaders = {insns[0].address}
    for insn in insns:
        m = insn.mnemonic
        if insn.data:
            leaders.add(insn.address + insn.size)
            continue
        if m == "jmp" or m in _BARRIERS or m.startswith("ret") or insn.jump:
            leaders.add(insn.address + insn.size)
            if insn.ops and insn.ops[0].type == cx86.X86_OP_IMM:
                target = insn.ops[0].imm
                if region.start <= target < region.end:
                    leaders.add(target)
    blocks: list[list[_Insn]] = []
    for insn in insns:
        if insn.address in leaders or not blocks:
            blocks.append([insn])
        else:
            blocks[-1].append(insn)
    return blocks
