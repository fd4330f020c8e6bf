"""Which module holds an address: a map of module ranges from whatever the input tells us.

Module ranges come from several places of different quality: an ``lm`` table (start and end, the best),
``!analyze`` fields (``FAULTING_MODULE: fffff80366350000 netebpfext`` gives a base but no size), stack
frames printed as ``Module+0xOFFSET`` next to their address (base = address - offset, size unknown), and
``NAME=BASE[:SIZE]`` given by the user. :class:`ModuleMap` merges them and answers :meth:`ModuleMap.lookup`
deterministically:

1. loaded modules with a known range that contain the address; when several overlap, the smallest wins
   (a driver inside a bogus huge range is the useful answer) and the overlap is reported in
   :attr:`ModuleMap.diagnostics`;
2. loaded modules with only a base: the nearest base below the address, if the address is below the next
   known module start and within :data:`UNKNOWN_SIZE_LIMIT`;
3. unloaded modules (``Unloaded modules:`` in ``lm``), only when no loaded module covers the address; the
   returned :class:`Module` has ``unloaded=True`` so callers can say so.

x86 targets print pointers sign-extended to 64 bits in some places (``ffffffff8a123456``) and not in others
(``8a123456``); on a 32-bit map both forms are normalised to 32 bits.
"""

from __future__ import annotations

import functools
import heapq
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import msgspec
from msgspec.structs import replace

from parsers.deferred import deferred_compile
from parsers.records import ModuleEntry, StackFrame

#: How far past a base an address may lie and still be attributed to a module whose size is unknown.
#: Large enough for big display drivers (~50 MB), small enough not to swallow unrelated kernel addresses.
UNKNOWN_SIZE_LIMIT = 0x4000000
MAX_OVERLAP_NOTES = 20  # overlapping pairs spelt out in ModuleMap.diagnostics; the rest are counted

_SIGN_EXTENSION = 0xFFFFFFFF00000000
_SPEC = deferred_compile(
    r"^(?P<name>[^=]+)=(?P<base>(?:0x)?[0-9a-fA-F`]+)(?::(?P<size>(?:0x)?[0-9a-fA-F]+))?$"
)
_FAULTING_MODULE = re.compile(r"^\s*(?P<base>[0-9a-fA-F`]{1,17})\s+(?P<name>\S+)\s*$")
_IMAGE_EXTENSIONS = (".sys", ".dll", ".exe", ".drv", ".efi")


class Module(msgspec.Struct, frozen=True):
    """One module range. ``end`` is the first address after it, or None when only the base is known.

    ``source`` says where the range came from (``lm``, a crash dump's list, ``analyze``, ``frame``,
    ``user``); ``image_name`` is the file name when the input gives one (``lmv``'s ``Image name``,
    ``IMAGE_NAME``).
    """

    name: str
    start: int
    end: int | None
    source: str
    unloaded: bool = False
    image_name: str | None = None
    timestamp: int | None = None
    image_size: int | None = None
    pdb_path: str | None = None

    @property
    def size(self) -> int | None:
        return None if self.end is None else self.end - self.start

    @property
    def file_name(self) -> str:
        """The best guess at the image's file name: ``image_name``, else the module name (extension kept)."""
        return self.image_name or self.name


class ModuleHit(NamedTuple):
    """The answer of :meth:`ModuleMap.lookup`; unpacks as ``(module, offset)``."""

    module: Module
    offset: int


def normalize_name(name: str) -> str:
    """A module's identity for matching: lower-case, without directory and without an image extension, so
    that ``WinDivert``, ``WinDivert.sys`` and ``\\SystemRoot\\...\\windivert.SYS`` are one module."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    for extension in _IMAGE_EXTENSIONS:
        if base.endswith(extension):
            return base[: -len(extension)]
    return base


def parse_address(text: str) -> int:
    """A debugger-printed hex address: ``fffff803`66350000``, ``0xfffff80366350000`` or bare hex."""
    cleaned = text.strip().replace("`", "")
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    if not cleaned or len(cleaned) > 16:
        raise ValueError(f"not an address: {text!r}")
    return int(cleaned, 16)


def parse_module_spec(spec: str) -> Module:
    """``NAME=BASE[:SIZE]`` (BASE and SIZE in hex, ``0x`` and WinDbg's backtick optional) as given with
    ``--module``. Raises ``ValueError`` with a message fit for the command line."""
    match = _SPEC.match(spec.strip())
    if match is None:
        raise ValueError(
            f"bad module spec {spec!r}: expected NAME=BASE[:SIZE] in hex, e.g. drv.sys=fffff80366350000:1c000"
        )
    base = parse_address(match.group("base"))
    size = int(match.group("size"), 16) if match.group("size") else None
    if size == 0:
        raise ValueError(f"bad module spec {spec!r}: SIZE must not be 0")
    name = match.group("name").strip()
    image_name = name if normalize_name(name) != name.lower() else None
    return Module(
        name=name, start=base, end=None if size is None else base + size, source="user", image_name=image_name
    )


class ModuleMap:
    """An immutable set of module ranges with deterministic lookup (see the module docstring)."""

    def __init__(self, modules: Iterable[Module] = (), notes: Iterable[str] = ()) -> None:
        kept, dedupe_notes = _dedupe(modules)
        self.modules: tuple[Module, ...] = tuple(kept)
        raw_starts = [m.start for m in self.modules if not m.unloaded]
        self.is_32bit = bool(raw_starts) and all(_fold32(s) < (1 << 32) for s in raw_starts)
        self._loaded = sorted(
            (self._normalized(m) for m in self.modules if not m.unloaded and m.end is not None),
            key=lambda m: (m.start, m.end),
        )
        self._open = sorted(
            (self._normalized(m) for m in self.modules if not m.unloaded and m.end is None),
            key=lambda m: m.start,
        )
        self._unloaded = [self._normalized(m) for m in self.modules if m.unloaded and m.end is not None]
        self._notes = tuple(notes)  # what the builder saw in its input; the rest is recomputed here
        self._dedupe_notes = tuple(dedupe_notes)

    @functools.cached_property
    def diagnostics(self) -> tuple[str, ...]:
        """What is wrong with the ranges: unusable ones, conflicting bases, overlaps (computed when asked:
        the analysis builds many maps and reads none of this)."""
        return (*self._notes, *self._dedupe_notes, *self._check())

    def _normalized(self, module: Module) -> Module:
        if not self.is_32bit:
            return module
        start = _fold32(module.start)
        end = None if module.end is None else start + (module.end - module.start)
        if start == module.start and end == module.end:
            return module
        return replace(module, start=start, end=end)

    def _check(self) -> list[str]:
        notes = []
        for module in self.modules:
            if module.end is not None and module.end <= module.start:
                notes.append(
                    f"module {module.name}: end {module.end:#x} is not after start {module.start:#x}"
                )
        # overlapping pairs by a sweep over the sorted ranges (n log n): 3,000 nested lm rows make 4.5
        # million pairs, so only the first few are spelt out
        pairs = 0
        open_ends: list[tuple[int, int]] = []  # (end, index) of the ranges that contain the sweep point
        for index, module in enumerate(self._loaded):
            assert module.end is not None
            while open_ends and open_ends[0][0] <= module.start:
                heapq.heappop(open_ends)
            shown = (
                sorted(other for _end, other in open_ends)[: MAX_OVERLAP_NOTES - pairs]
                if (pairs < MAX_OVERLAP_NOTES)
                else []
            )
            for other in shown:
                first = self._loaded[other]
                notes.append(
                    f"modules {first.name} [{first.start:#x}, {first.end:#x}) and {module.name} "
                    f"[{module.start:#x}, {module.end:#x}) overlap; shared addresses go to the smaller one"
                )
            pairs += len(open_ends)
            heapq.heappush(open_ends, (module.end, index))
        if pairs > MAX_OVERLAP_NOTES:
            notes.append(f"{pairs - MAX_OVERLAP_NOTES} more overlapping pairs of modules not listed")
        return notes

    def __len__(self) -> int:
        return len(self.modules)

    def __bool__(self) -> bool:
        return bool(self.modules)

    # ------------------------------------------------------------------------------------------ builders

    @classmethod
    def from_entries(cls, entries: Iterable[ModuleEntry]) -> ModuleMap:
        """From ``lm`` rows; an unusable range (end not after start) falls back to ``image_size`` or to an
        unknown size, and is noted in :attr:`diagnostics`."""
        modules = []
        notes = []
        for entry in entries:
            end: int | None = entry.end
            if entry.end <= entry.start:
                end = entry.start + entry.image_size if entry.image_size else None
                notes.append(
                    f"module {entry.name} (line {entry.line}): end {entry.end:#x} is not after start "
                    f"{entry.start:#x}; " + ("using its ImageSize" if end else "its size is unknown")
                )
            modules.append(
                Module(
                    name=entry.name,
                    start=entry.start,
                    end=end,
                    source=entry.source,
                    unloaded=entry.unloaded,
                    image_name=entry.image_name,
                    timestamp=entry.timestamp,
                    image_size=entry.image_size,
                    pdb_path=entry.pdb_path,
                )
            )
        return cls(modules, notes)

    @classmethod
    def from_analyze(cls, fields: Iterable[tuple[str, str]], frames: Sequence[StackFrame] = ()) -> ModuleMap:
        """From ``!analyze -v`` fields and its ``STACK_TEXT``.

        ``FAULTING_MODULE: <base> <name>`` gives a base; ``IMAGE_NAME`` names the file of ``MODULE_NAME``.
        Frames printed as ``Module+0xOFFSET`` (no symbols) give a base too: their code address is the
        previous frame's ``RetAddr`` (or the frame's own bare address), so base = address - offset.
        """
        values: dict[str, str] = {}
        for key, value in fields:
            values.setdefault(key, value.strip())
        image_names: dict[str, str] = {}
        if values.get("MODULE_NAME") and values.get("IMAGE_NAME"):
            image_names[normalize_name(values["MODULE_NAME"])] = values["IMAGE_NAME"]
        modules = []
        found = _FAULTING_MODULE.match(values.get("FAULTING_MODULE", ""))
        if found:
            name = found.group("name")
            modules.append(
                Module(
                    name=name,
                    start=parse_address(found.group("base")),
                    end=None,
                    source="analyze",
                    image_name=image_names.get(normalize_name(name)),
                )
            )
        modules.extend(cls.from_frames(frames, image_names).modules)
        return cls(modules)

    @classmethod
    def from_frames(
        cls, frames: Sequence[StackFrame], image_names: dict[str, str] | None = None
    ) -> ModuleMap:
        """Bases implied by unsymbolised ``Module+0xOFFSET`` frames (see :meth:`from_analyze`)."""
        modules = []
        for index, frame in enumerate(frames):
            if frame.module is None or frame.function is not None or frame.offset is None or frame.inline:
                continue
            address = frame.address
            if address is None and index > 0:
                address = frames[index - 1].return_address
            if address is None or address < frame.offset:
                continue
            image_name = (image_names or {}).get(normalize_name(frame.module))
            modules.append(
                Module(
                    name=frame.module,
                    start=address - frame.offset,
                    end=None,
                    source="frame",
                    image_name=image_name,
                )
            )
        return cls(modules)

    @classmethod
    def from_specs(cls, specs: Iterable[str]) -> ModuleMap:
        """From ``--module NAME=BASE[:SIZE]`` strings; raises ``ValueError`` on the first malformed one."""
        return cls(parse_module_spec(spec) for spec in specs)

    def merged(self, *others: ModuleMap) -> ModuleMap:
        """This map plus others. For a module known to several, a range beats a bare base, and otherwise the
        earlier map wins (give the user's map first, then ``lm``, then ``!analyze``)."""
        maps = (self, *others)
        return ModuleMap(
            (module for one in maps for module in one.modules), (note for one in maps for note in one._notes)
        )

    # ------------------------------------------------------------------------------------------- queries

    def normalize(self, address: int) -> int:
        """Fold an x86 sign-extended pointer to 32 bits when the map is 32-bit; otherwise unchanged."""
        return _fold32(address) if self.is_32bit else address

    def lookup(self, address: int) -> ModuleHit | None:
        """The module holding ``address`` and the offset into it, or None (see the module docstring)."""
        address = self.normalize(address)
        best: Module | None = None
        for module in self._loaded:
            if module.start > address:
                break
            assert module.end is not None
            if address < module.end and (best is None or module.end - module.start < _size(best)):
                best = module
        if best is not None:
            return ModuleHit(best, address - best.start)
        candidate = None
        for module in self._open:
            if module.start > address:
                break
            candidate = module
        if candidate is not None and address - candidate.start < UNKNOWN_SIZE_LIMIT:
            next_start = min((m.start for m in self._loaded if m.start > candidate.start), default=None)
            if next_start is None or address < next_start:
                return ModuleHit(candidate, address - candidate.start)
        for module in self._unloaded:
            assert module.end is not None
            if module.start <= address < module.end:
                return ModuleHit(module, address - module.start)
        return None

    def find(self, name: str) -> Module | None:
        """The loaded module called ``name`` (case-insensitive, with or without extension), else None."""
        wanted = normalize_name(name)
        for module in self.modules:
            if not module.unloaded and (
                normalize_name(module.name) == wanted
                or (module.image_name and normalize_name(module.image_name) == wanted)
            ):
                return self._normalized(module)
        return None


def _size(module: Module) -> int:
    return (module.end or module.start) - module.start


def _fold32(value: int) -> int:
    """``ffffffff8a123456`` -> ``8a123456``: undo x86 sign extension (only a high half of all ones)."""
    if value & _SIGN_EXTENSION == _SIGN_EXTENSION and value & 0x80000000:
        return value & 0xFFFFFFFF
    return value


def _dedupe(modules: Iterable[Module]) -> tuple[list[Module], list[str]]:
    """One entry per loaded module name: the first with a range, else the first base-only one (a range is
    better evidence than a base). Conflicting bases for one name are reported. Unloaded entries are kept
    per (name, start): a driver may have been unloaded several times."""
    items = list(modules)
    chosen: dict[str, Module] = {}
    for module in items:
        key = normalize_name(module.name)
        if module.unloaded:
            continue
        current = chosen.get(key)
        if current is None or (current.end is None and module.end is not None):
            chosen[key] = module
    kept: list[Module] = []
    notes: list[str] = []
    seen_unloaded: set[tuple[str, int]] = set()
    for module in items:
        key = normalize_name(module.name)
        if module.unloaded:
            if (key, module.start) not in seen_unloaded:
                seen_unloaded.add((key, module.start))
                kept.append(module)
        elif chosen[key] is module:
            kept.append(module)
        elif module.start != chosen[key].start:
            winner = chosen[key]
            notes.append(
                f"module {module.name}: base {module.start:#x} ({module.source}) disagrees with "
                f"{winner.start:#x} ({winner.source}); using {winner.start:#x}"
            )
    return kept, notes
