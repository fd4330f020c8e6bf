"""PDB lookup: RVA -> function, displacement, file, line and inline frames.

Two readers work together. symbolic's symcache (built once per PDB, cached) gives function + file + line +
inline frames for code with line information, fast. For code without line information it answers ``[]``
(or a public name with a C-style leading underscore stripped, wrong on x64), while a debugger still names
it; there the PDB's own procedure records and public symbols, read by :mod:`symbols.msf`, answer with
``file=None``. Either reader may fail on a damaged PDB; the other still serves, and what failed is in
:attr:`PdbFile.notes`.
"""

from __future__ import annotations

import bisect
import os
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import msgspec

from symbols.demangle import demangle_name
from symbols.msf import MsfError, PdbTables, Procedure, Public, read_tables
from symbols.symcache import RawFrame, SymCacheReader

if TYPE_CHECKING:
    from symbols.pe import PeImage

#: PDBs larger than this are not read (a kernel PDB is ~10-30 MB; this only stops absurd inputs).
MAX_PDB_BYTES = 1024 * 1024 * 1024
#: How many PDBs stay loaded at once.
CACHE_SIZE = 32
#: symbolic reports "no symbol start" for inline frames as u32 -1.
_NO_ADDRESS = 0xFFFFFFFF
#: MSVC marks compiler-generated code with this line number ("hidden" line, 0xFEEFEE); it is not a line.
HIDDEN_LINE = 0xFEEFEE


#: Addresses whose answers one PDB remembers before it starts afresh.
LOOKUP_MEMO = 1 << 16


class PdbError(Exception):
    """The file cannot be used as a PDB at all (unreadable, not a PDB, or damaged beyond both readers)."""


class SourceFrame(msgspec.Struct, frozen=True):
    """One (inline) frame: bare function name, formatted signature, and where in the source."""

    function: str
    signature: str
    file: str | None
    line: int | None


class PdbSymbol(msgspec.Struct, frozen=True):
    """The answer for one RVA. ``function``/``file``/``line`` describe the outermost (physical) function;
    ``inlined`` lists the frames inlined into it at this address, innermost first. ``source`` says which
    reader answered: ``lines`` (symbolic, with line info), ``procedure`` (a procedure record without line
    info) or ``public`` (nearest public symbol)."""

    rva: int
    function: str
    signature: str
    function_rva: int
    file: str | None
    line: int | None
    inlined: tuple[SourceFrame, ...]
    source: str

    @property
    def displacement(self) -> int:
        return self.rva - self.function_rva


def bare_name(signature: str) -> str:
    """``Foo::bar<int>(char const *) const`` -> ``Foo::bar<int>``: drop the trailing parameter list (and
    qualifiers after it) without being fooled by ``operator()`` or function-pointer types in templates."""
    text = signature.rstrip()
    for qualifier in (" const", " volatile", " &&", " &", " __ptr64", " noexcept"):
        while text.endswith(qualifier):
            text = text[: -len(qualifier)].rstrip()
    if not text.endswith(")"):
        return signature
    depth = 0
    for index in range(len(text) - 1, -1, -1):
        char = text[index]
        if char == ")":
            depth += 1
        elif char == "(":
            depth -= 1
            if depth == 0:
                name = text[:index]
                return name if name else signature
    return signature


class PdbFile:
    """One loaded PDB. Use :func:`load_pdb` (cached) rather than the constructor."""

    def __init__(
        self, path: str, data: bytes, *, embedded: bool = False, exact_names: dict[int, str] | None = None
    ) -> None:
        """``exact_names``: RVA -> function name as the image's symbol table spells it (embedded DWARF)."""
        self.path = path
        self._exact_names = exact_names or {}
        #: where the answers come from: "pdb", or "dwarf" for debug information inside the image itself
        self.kind: Literal["pdb", "dwarf"] = "dwarf" if embedded else "pdb"
        notes: list[str] = []
        self._lines: SymCacheReader | None = None
        try:
            self._lines = SymCacheReader(data, embedded=embedded)
        except ValueError as error:
            notes.append(f"line information unreadable ({error})")
        tables: PdbTables | None = None
        if not embedded:  # procedures and publics are MSF streams: a PDB's alone
            try:
                tables = read_tables(data)
                notes.extend(tables.notes)
            except MsfError as error:
                notes.append(f"procedures and publics unreadable ({error})")
        if self._lines is None and tables is None:
            what = "debug information in the image" if embedded else "PDB"
            raise PdbError(f"{path}: not a readable {what} ({'; '.join(notes)})")
        self.notes: tuple[str, ...] = tuple(notes)
        self.x86 = tables is not None and tables.machine == 0x014C
        if tables is not None and tables.guid is not None and tables.age is not None:
            self.debug_id: str | None = f"{tables.guid.lower()}-{tables.age:x}"
        else:
            self.debug_id = self._lines.debug_id if self._lines else None
        procedures = sorted(tables.procedures, key=lambda p: (p.rva, -p.size)) if tables else []
        self._procedures: list[Procedure] = procedures
        self._procedure_starts = [p.rva for p in procedures]
        self._procedure_at: dict[int, Procedure] = {}
        for procedure in procedures:
            self._procedure_at.setdefault(procedure.rva, procedure)
        code = [s for s in tables.sections if s.executable] if tables else []
        publics = sorted(
            (
                p
                for p in (tables.publics if tables else ())
                if any(s.rva <= p.rva < s.rva + s.size for s in code)
            ),
            key=lambda p: p.rva,
        )
        self._publics: list[Public] = publics
        self._public_starts = [p.rva for p in publics]
        self._code = code
        self._function_names: dict[tuple[int, str], tuple[str, str]] = {}
        self._memo: dict[int, PdbSymbol | None] = {}

    @classmethod
    def embedded(cls, image: PeImage) -> PdbFile:
        """The debug information an image carries in its own sections (DWARF from mingw, Wine builds).
        Raises :class:`PdbError` when there is none that symbolic can read."""
        if not image.has_long_section_names:
            # symbolic finds DWARF by its ``.debug_info`` section, a name longer than a section header's 8
            # bytes (``/4``...): without one there is none to read, and no child need be forked to learn it
            raise PdbError(f"{image.path}: no debug information in the image (no .debug_info section)")
        return cls(image.path, image.data, embedded=True, exact_names=image.coff_functions)

    @property
    def procedure_ranges(self) -> tuple[tuple[int, int], ...]:
        """(start, end) RVAs of the procedure records that have a size, in order: function boundaries
        ``.pdata`` lacks (leaf functions), read with the PDB rather than from the file again."""
        return tuple(sorted((p.rva, p.rva + p.size) for p in self._procedures if p.size > 0))

    def lookup(self, rva: int) -> PdbSymbol | None:
        """What the PDB says about ``rva`` (an offset from the image base), or None when it names nothing.

        Answers are remembered (up to :data:`LOOKUP_MEMO` addresses): batches of crash logs and stacks
        ask for the same return addresses again and again, and each fresh answer costs a call into
        symbolic."""
        memo = self._memo
        if rva in memo:
            return memo[rva]
        if len(memo) >= LOOKUP_MEMO:
            memo.clear()
        answer = memo[rva] = self._lookup(rva)
        return answer

    def _lookup(self, rva: int) -> PdbSymbol | None:
        if rva < 0:
            return None
        if self._lines is not None:
            frames = self._lines.lookup(rva)
            # a PDB's symcache entry without a line is weaker than its procedure records (below); an image's
            # DWARF has no such records, so there its symbol-table name is the best answer
            if frames and (frames[-1].path or frames[-1].line or self.kind == "dwarf"):
                return self._from_lines(rva, frames)
        procedure = self._procedure_containing(rva)
        if procedure is not None:
            return PdbSymbol(rva, procedure.name, procedure.name, procedure.rva, None, None, (), "procedure")
        public = self._public_before(rva)
        if public is not None:
            name = demangle_name(public.name, x86=self.x86)
            return PdbSymbol(rva, name, name, public.rva, None, None, (), "public")
        return None

    def _from_lines(self, rva: int, frames: list[RawFrame]) -> PdbSymbol:
        outer = frames[-1]
        start = outer.sym_addr if outer.sym_addr != _NO_ADDRESS else rva
        function, signature = self._names(start, outer.symbol)
        inlined = tuple(
            SourceFrame(_bare_name_cached(f.symbol), f.symbol, f.path, _line(f.line)) for f in frames[:-1]
        )
        return PdbSymbol(rva, function, signature, start, outer.path, _line(outer.line), inlined, "lines")

    def _names(self, start: int, signature: str) -> tuple[str, str]:
        """(bare name, signature) of the function at ``start``, computed once per function.

        symbolic strips a leading underscore it takes for C decoration (wrong on x64), so when the
        procedure record (or, for embedded DWARF, the COFF symbol) at the same address spells the name
        differently, that spelling wins."""
        key = (start, signature)
        known = self._function_names.get(key)
        if known is not None:
            return known
        function = bare_name(signature)
        procedure = self._procedure_at.get(start)
        exact = procedure.name if procedure is not None else self._exact_names.get(start)
        if procedure is None and exact is not None and exact.lstrip("_") != function.lstrip("_"):
            exact = None  # a COFF symbol only corrects the underscores, it never renames (aliases)
        if exact is not None and exact != function:
            if signature.startswith(function):
                signature = exact + signature[len(function) :]
            function = exact
        self._function_names[key] = (function, signature)
        return function, signature

    def _procedure_containing(self, rva: int) -> Procedure | None:
        index = bisect.bisect_right(self._procedure_starts, rva) - 1
        # procedures do not nest, but zero-size records may sit just before: look back a few
        for candidate in self._procedures[max(0, index - 4) : index + 1][::-1]:
            if candidate.rva <= rva < candidate.rva + max(candidate.size, 1):
                return candidate
        return None

    def _public_before(self, rva: int) -> Public | None:
        """The nearest public at or below ``rva`` in the same code section (a public has no size)."""
        index = bisect.bisect_right(self._public_starts, rva) - 1
        if index < 0:
            return None
        public = self._publics[index]
        procedure = self._procedure_at.get(public.rva)
        if procedure is not None and rva >= procedure.rva + max(procedure.size, 1):
            return None  # past the end of the function the public names: padding or unnamed code
        for section in self._code:
            if section.rva <= public.rva < section.rva + section.size:
                return public if rva < section.rva + section.size else None
        return None


_bare_name_cached = lru_cache(maxsize=65536)(bare_name)


def _line(value: int) -> int | None:
    return value if value and value != HIDDEN_LINE else None


_lock = threading.Lock()
_loaded: OrderedDict[tuple[str, int, int], PdbFile] = OrderedDict()


def load_pdb(path: str | Path) -> PdbFile:
    """Load a PDB once per (path, size, mtime) and keep the last :data:`CACHE_SIZE` loaded.

    Raises :class:`PdbError` when it cannot be read at all; a partly readable PDB loads with ``notes``.
    """
    name = str(path)
    try:
        stat = os.stat(name)
    except OSError as error:
        raise PdbError(f"{name}: cannot read ({error.strerror or error})") from None
    key = (os.path.realpath(name), stat.st_size, stat.st_mtime_ns)
    with _lock:
        if key in _loaded:
            _loaded.move_to_end(key)
            return _loaded[key]
    if stat.st_size > MAX_PDB_BYTES:
        raise PdbError(f"{name}: larger than {MAX_PDB_BYTES} bytes; not read")
    try:
        with open(name, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise PdbError(f"{name}: cannot read ({error.strerror or error})") from None
    pdb = PdbFile(name, data)
    with _lock:
        _loaded[key] = pdb
        while len(_loaded) > CACHE_SIZE:
            _loaded.popitem(last=False)
    return pdb
