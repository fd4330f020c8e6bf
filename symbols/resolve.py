"""Caller address -> module + offset -> function + displacement + file:line, as far as the files allow.

:class:`SymbolResolver` finds, per module, its image (image dirs by name, then the symbol stores by
``name.sys/<TIMESTAMP><SIZE>``) and its PDB (the CodeView name next to the image, then the symbol stores by
``name.pdb/<GUID><AGE>``, then plain folders), checks that the PDB belongs to the image (GUID + age), and
answers in the best way available, saying which in ``resolved_by``:

``pdb``      function, displacement, file, line and inline frames from the PDB;
``dwarf``    the same from DWARF inside the image itself (mingw and Wine builds carry no PDB);
``exports``  the nearest exported symbol at or below the address inside the same function;
``pdata``    the start of the ``.pdata`` function holding the address, named ``module+0xSTART``;
``module``   module + offset only;
``none``     no module holds the address.

When something is missing or wrong (no image, no PDB, a mismatched or damaged PDB), ``note`` says what and,
for a missing file, the exact store key and a ``symchk`` command to fetch it. Nothing here raises on bad
files, and nothing touches the network.

Return addresses: the address a stack (or 0xC4's "caller") gives is where execution *returns to*, i.e. the
instruction after the call, which can belong to the next source line or even the next function. With
``return_address=True`` the lookup uses ``address - 1`` (inside the call instruction) while the
displacement stays relative to the address given, the way WinDbg reports frames.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import msgspec

from symbols.modules import Module, ModuleMap, normalize_name
from symbols.msf import MSF_MAGIC
from symbols.pdb import PdbError, PdbFile, SourceFrame, load_pdb
from symbols.pe import PeError, PeImage
from symbols.store import Candidate, SymbolStore, check_pdb_match, file_name, image_key, pdb_key

SymbolSource = Literal["pdb", "dwarf", "exports", "pdata", "module", "none"]
#: Modules (image + PDB) kept resolved at once.
CONTEXT_CACHE_SIZE = 128
_IMAGE_EXTENSIONS = (".sys", ".dll", ".exe")


class Resolution(msgspec.Struct, frozen=True):
    """The answer for one address (see the module docstring for ``resolved_by``).

    ``inlined`` names the frames inlined at the address, innermost first (``inline_frames`` has their
    files and lines); ``function``/``file``/``line`` are the physical function's. ``signature`` is the
    formatted name with parameter types when the PDB has type information.
    """

    address: int
    module: str | None
    offset: int | None
    function: str | None
    displacement: int | None
    file: str | None
    line: int | None
    inlined: tuple[str, ...]
    resolved_by: SymbolSource
    note: str | None
    signature: str | None = None
    inline_frames: tuple[SourceFrame, ...] = ()

    @property
    def symbol(self) -> str:
        """WinDbg-style ``module!function+0xdisp`` (or ``module+0xoffset``, or the bare address)."""
        if self.module is None or self.offset is None:
            return f"{self.address:#x}"
        if self.function is None:
            return f"{module_label(self.module)}+{self.offset:#x}"
        name = (
            self.function if self.resolved_by == "pdata" else f"{module_label(self.module)}!{self.function}"
        )
        return f"{name}+{self.displacement:#x}" if self.displacement else name


def module_label(name: str) -> str:
    """A module as the debugger names it in symbols: no directory, no image extension, case kept."""
    base = file_name(name)
    return base[: -len(Path(base).suffix)] if base.lower().endswith(_IMAGE_EXTENSIONS) else base


class ImageSymbols(msgspec.Struct):
    """What is known about one module's files: its image and PDB (either may be missing) and notes.

    Build it with :meth:`from_path` for a file the user names, or let :class:`SymbolResolver` find the files
    for a module from a log.
    """

    name: str
    image: PeImage | None = None
    pdb: PdbFile | None = None
    notes: list[str] = msgspec.field(default_factory=list)
    _exports: list[tuple[int, str]] | None = None
    _export_starts: list[int] = msgspec.field(default_factory=list)

    @classmethod
    def from_path(cls, path: str | Path, store: SymbolStore | None = None) -> ImageSymbols:
        """From an image or a PDB on disk. Raises ``OSError`` if it cannot be read and ``ValueError`` if it is
        neither a PE image nor a readable PDB."""
        source = Path(path)
        with open(source, "rb") as handle:
            head = handle.read(len(MSF_MAGIC))
        if head == MSF_MAGIC:
            try:
                pdb = load_pdb(source)
            except PdbError as error:
                raise ValueError(str(error)) from None
            return cls(name=source.stem, pdb=pdb, notes=list(pdb.notes))
        try:
            image = PeImage.open(source)
        except PeError as error:
            raise ValueError(f"{error} and not an MSF PDB either") from None
        symbols = cls(name=source.name, image=image, notes=[f"{source}: {d}" for d in image.diagnostics])
        symbols.attach_pdb(store or SymbolStore(None), source.parent)
        return symbols

    def attach_pdb(self, store: SymbolStore, image_dir: Path | None) -> None:
        """Find this image's debug information: its PDB (by CodeView name next to the image, in the stores,
        then plain folders; mismatched or damaged candidates are skipped with a note, the first good one is
        used), else DWARF carried in the image itself (mingw and Wine builds)."""
        image = self.image
        if image is None:
            return
        missing = self._find_pdb(store, image_dir, image)
        if self.pdb is None:
            try:
                self.pdb = PdbFile.embedded(image)
            except PdbError:
                self.notes.extend(missing)

    def _find_pdb(self, store: SymbolStore, image_dir: Path | None, image: PeImage) -> list[str]:
        """Attach the image's PDB; what to say if there is none (and the image has no DWARF either)."""
        if image.codeview is None:
            return [f"{image.path} has no CodeView (RSDS) record: its PDB cannot be identified"]
        codeview = image.codeview
        name = file_name(codeview.pdb_name)
        candidates: list[Candidate] = []
        if image_dir is not None:
            candidates.extend(store.find_by_name(name, extra_dirs=[image_dir]))
        candidates.extend(store.find_by_key(pdb_key(codeview)))
        seen: set[Path] = set()
        for candidate in candidates:
            if candidate.path in seen:
                continue
            seen.add(candidate.path)
            if candidate.problem:
                self.notes.append(candidate.problem)
                continue
            try:
                pdb = load_pdb(candidate.path)
            except PdbError as error:
                self.notes.append(str(error))
                continue
            match = check_pdb_match(image, pdb.debug_id, str(candidate.path))
            if not match.ok:
                self.notes.append(str(match.message))
                continue
            self.pdb = pdb
            self.notes.extend(f"{candidate.path}: {note}" for note in pdb.notes)
            return []
        return [store.fetch_hint(pdb_key(codeview), image.path)]

    def resolve_rva(self, rva: int, *, return_address: bool = False, file_notes: bool = True) -> Resolution:
        """Resolve an offset from the module's base (see :class:`SymbolResolver` for the fallbacks).

        ``file_notes=False`` leaves the notes about the files (missing PDB ...) out of ``note``, for callers
        that show them once rather than per address."""
        lookup = rva - 1 if return_address and rva > 0 else rva
        notes = list(self.notes) if file_notes and self.notes else []
        image = self.image
        if image is not None and image.size_of_image and rva >= image.size_of_image:
            notes.append(
                f"offset {rva:#x} is beyond the image size {image.size_of_image:#x}: "
                "wrong module range or a different build of the image"
            )
        if self.pdb is not None:
            symbol = self.pdb.lookup(lookup)
            if symbol is not None:
                return Resolution(
                    address=rva,
                    module=self.name,
                    offset=rva,
                    function=symbol.function,
                    displacement=rva - symbol.function_rva,
                    file=symbol.file,
                    line=symbol.line,
                    inlined=tuple(frame.function for frame in symbol.inlined),
                    resolved_by=self.pdb.kind,
                    note=_join(notes) if notes else None,
                    signature=symbol.signature,
                    inline_frames=symbol.inlined,
                )
            notes.append(f"the PDB has no symbol at {lookup:#x}")
        if image is not None:
            found = self._from_image(image, lookup)
            if found is not None:
                function, start, how = found
                if how == "exports" and not image.functions:
                    notes.append(
                        "nearest export at or below the address: the image has no .pdata to show where "
                        "functions end, so the code may be an unexported function after it"
                    )
                return Resolution(
                    rva, self.name, rva, function, rva - start, None, None, (), how, _join(notes)
                )
        return Resolution(rva, self.name, rva, None, None, None, None, (), "module", _join(notes))

    def _from_image(self, image: PeImage, rva: int) -> tuple[str, int, SymbolSource] | None:
        """(name, start, how) from exports and ``.pdata`` for code without a usable PDB. An export names the
        address only when no ``.pdata`` function starts between the export and the address."""
        section = image.section_at(rva)
        if section is None:
            return None
        if self._exports is None:
            self._exports = sorted(
                (e.rva, e.name or f"#{e.ordinal}") for e in image.exports if e.forwarder is None
            )
            self._export_starts = [start for start, _ in self._exports]
        function = image.function_at(rva)
        index = bisect.bisect_right(self._export_starts, rva) - 1
        if index >= 0:
            start, name = self._exports[index]
            last = bisect.bisect_right(image.functions, (rva, 1 << 64)) - 1
            begin, end = image.functions[last] if last >= 0 else (-1, -1)
            # a .pdata function starting after the export, or the export's own function ending, lies between
            elsewhere = begin > start or begin <= start < end <= rva
            if not elsewhere and image.section_at(start) == section:
                return name, start, "exports"
        if function is not None:
            return f"{module_label(self.name)}+{function[0]:#x}", function[0], "pdata"
        return None


def _join(notes: Sequence[str]) -> str | None:
    unique = list(dict.fromkeys(notes))
    return "; ".join(unique) if unique else None


class SymbolResolver:
    """Resolves addresses through a module map, finding and caching each module's image and PDB.

    ``symbol_path`` is a WinDbg symbol path (local stores and folders are searched; URLs only feed the
    hints); ``image_dirs`` are folders holding driver images by file name.
    """

    def __init__(self, symbol_path: str | None, image_dirs: Sequence[str] = ()) -> None:
        self.store = SymbolStore(symbol_path, image_dirs)
        self._contexts: OrderedDict[tuple[str, int | None, int | None], ImageSymbols] = OrderedDict()
        self._lock = threading.Lock()

    def resolve(self, address: int, modules: ModuleMap, *, return_address: bool = False) -> Resolution:
        """Resolve one address; never raises on missing or damaged files (see the module docstring)."""
        hit = modules.lookup(address)
        if hit is None:
            return Resolution(
                address,
                None,
                None,
                None,
                None,
                None,
                None,
                (),
                "none",
                f"no module in the module list holds {address:#x}",
            )
        module, offset = hit
        symbols = self.symbols_for(module)
        result = symbols.resolve_rva(offset, return_address=return_address)
        notes = [result.note] if result.note else []
        if module.unloaded:
            notes.insert(
                0, f"{module.name} was unloaded when this was recorded (from the unloaded-module list)"
            )
        if module.end is None:
            notes.insert(0, f"{module.name}'s size is unknown (base from {module.source}): range not checked")
        return Resolution(
            address=address,
            module=module.name,
            offset=offset,
            function=result.function,
            displacement=result.displacement,
            file=result.file,
            line=result.line,
            inlined=result.inlined,
            resolved_by=result.resolved_by,
            note=_join(notes) if notes else None,
            signature=result.signature,
            inline_frames=result.inline_frames,
        )

    def symbols_for(self, module: Module) -> ImageSymbols:
        """The image and PDB for a module (found once, then cached)."""
        key = (normalize_name(module.file_name), module.timestamp, module.image_size or module.size)
        with self._lock:
            if key in self._contexts:
                self._contexts.move_to_end(key)
                return self._contexts[key]
        symbols = self._find(module)
        with self._lock:
            self._contexts[key] = symbols
            while len(self._contexts) > CONTEXT_CACHE_SIZE:
                self._contexts.popitem(last=False)
        return symbols

    def _find(self, module: Module) -> ImageSymbols:
        symbols = ImageSymbols(name=module.name)
        names = _image_names(module)
        size = module.image_size or module.size
        candidates = [c for name in names for c in self.store.find_by_name(name)]
        if module.timestamp is not None and size:
            candidates += [
                c for name in names for c in self.store.find_by_key(image_key(name, module.timestamp, size))
            ]
        other_build = False
        for candidate in candidates:
            if candidate.problem:
                symbols.notes.append(candidate.problem)
                continue
            verdict = self._check_image(symbols, candidate.path, module)
            if verdict == "accepted":
                symbols.attach_pdb(self.store, candidate.path.parent)
                return symbols
            other_build |= verdict == "other-build"
        symbols.notes.append(
            self.store.fetch_hint(image_key(names[0], module.timestamp, size))
            if module.timestamp is not None and size
            else f"image {names[0]} not found in the image dirs or symbol path"
        )
        if not other_build:  # a wrong build's folder holds that build's PDB: never use it unverified
            self._unverified_pdb(symbols, module)
        return symbols

    def _check_image(self, symbols: ImageSymbols, path: Path, module: Module) -> str:
        """Use an image only if it is the build the log describes (timestamp, size when the log gives
        them): ``accepted``, ``unreadable`` or ``other-build``, with a note for the last two."""
        try:
            image = PeImage.open(path)
        except PeError as error:
            symbols.notes.append(str(error))
            return "unreadable"
        if module.timestamp is not None and module.timestamp != image.timestamp:
            symbols.notes.append(
                f"{path}: a different build (timestamp {image.timestamp:08X}, "
                f"the log says {module.timestamp:08X})"
            )
            return "other-build"
        if module.image_size is not None and module.image_size != image.size_of_image:
            symbols.notes.append(
                f"{path}: a different build (size {image.size_of_image:#x}, "
                f"the log says {module.image_size:#x})"
            )
            return "other-build"
        symbols.image = image
        symbols.notes.extend(f"{path}: {d}" for d in image.diagnostics)
        return "accepted"

    def _unverified_pdb(self, symbols: ImageSymbols, module: Module) -> None:
        """Without an image nothing says which PDB is right; a PDB named like the module in a plain folder is
        still used, with a note that it could not be verified."""
        names = [file_name(module.pdb_path)] if module.pdb_path else []
        names.append(normalize_name(module.file_name) + ".pdb")
        for name in names:
            for candidate in self.store.find_by_name(name):
                try:
                    symbols.pdb = load_pdb(candidate.path)
                except PdbError as error:
                    symbols.notes.append(str(error))
                    continue
                symbols.notes.append(
                    f"{candidate.path} used without the image: not verified to match this build"
                )
                return


def _image_names(module: Module) -> list[str]:
    """File names to try for a module: its image name, else its name with the usual extensions."""
    names = []
    for name in (module.image_name, module.name):
        if not name:
            continue
        base = file_name(name)
        if base.lower().endswith(_IMAGE_EXTENSIONS):
            names.append(base)
        else:
            names.extend(base + extension for extension in _IMAGE_EXTENSIONS)
    return list(dict.fromkeys(names))
