"""Symbol paths and local symbol stores: where a module's image and PDB are on this machine.

A symbol path is what WinDbg takes in ``.sympath`` and ``_NT_SYMBOL_PATH``: ``;``-separated elements, each a
plain folder, ``srv*[cache*]...*URL`` (a symbol server with downstream stores), ``cache*DIR`` (a local
cache), or ``symsrv*symsrv.dll*...``. We are offline by design: URLs are kept only to tell the user where a
missing file could be fetched from; every local directory of the path is searched.

Store layout (SymStore, the symbol-server protocol): ``name.pdb/<GUID><AGE>/name.pdb`` with the GUID in
upper case without dashes and the age in hex, and ``name.sys/<TIMESTAMP><SIZEOFIMAGE>/name.sys`` with the
timestamp as 8 hex digits and the image size in hex. A store that has an ``index2.txt`` file uses the
two-tier layout, which inserts the first two characters of the file name: ``na/name.pdb/<KEY>/name.pdb``.
Plain folders hold files by name. Lookups are case-insensitive, as on the Windows machines these stores
come from.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:  # types only: reading the symbol path must not import pefile (start-up of every command)
    from symbols.pe import PeImage
    from symbols.pe_records import CodeView

MICROSOFT_SYMBOL_SERVER = "https://msdl.microsoft.com/download/symbols"


class SymbolPathEntry(msgspec.Struct, frozen=True):
    """One place to look. ``kind``: ``store`` (symbol-store layout), ``folder`` (files by name, plus a store
    layout if present) or ``remote`` (a URL or UNC server we do not contact)."""

    kind: str
    location: str


def parse_symbol_path(text: str | None) -> tuple[SymbolPathEntry, ...]:
    """Split a WinDbg symbol path into entries, in search order, without duplicates."""
    entries: list[SymbolPathEntry] = []
    for element in (text or "").split(";"):
        element = element.strip().strip('"')
        if not element:
            continue
        parts = [p.strip() for p in element.split("*")]
        head = parts[0].lower()
        if head in ("srv", "symsrv", "cache") and len(parts) > 1:
            rest = parts[1:]
            if head == "symsrv" and rest and rest[0].lower().endswith(".dll"):
                rest = rest[1:]
            for part in rest:
                if not part:
                    continue
                kind = "remote" if _is_remote(part) else "store"
                entries.append(SymbolPathEntry(kind, part))
        else:
            entries.append(SymbolPathEntry("remote" if _is_remote(element) else "folder", element))
    unique: list[SymbolPathEntry] = []
    for entry in entries:
        if entry not in unique:
            unique.append(entry)
    return tuple(unique)


def _is_remote(location: str) -> bool:
    lowered = location.lower()
    return lowered.startswith(("http://", "https://")) or location.startswith("\\\\")


def file_name(windows_or_posix_path: str) -> str:
    """The last component of a path written on Windows or POSIX (``C:\\a\\b.pdb`` -> ``b.pdb``)."""
    return windows_or_posix_path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def pdb_key(codeview: CodeView) -> str:
    """``name.pdb/<GUID><AGE>/name.pdb`` for a CodeView record (the relative path inside a store)."""
    name = file_name(codeview.pdb_name)
    return f"{name}/{codeview.store_key}/{name}"


def image_key(name: str, timestamp: int, size_of_image: int) -> str:
    """``name.sys/<TIMESTAMP><SIZE>/name.sys``: an image's store path, from ``lm``'s Timestamp and size."""
    return f"{name}/{timestamp:08X}{size_of_image:x}/{name}"


@lru_cache(maxsize=4096)
def _listing(directory: str) -> dict[str, str]:
    """Lower-case name -> actual name for one directory (cached: stores are read-only while we run)."""
    try:
        return {name.lower(): name for name in os.listdir(directory)}
    except OSError:
        return {}


def find_case_insensitive(base: Path, relative: str) -> Path | None:
    """``base/relative`` matching each component case-insensitively, or None when it does not exist."""
    current = base
    for part in relative.split("/"):
        exact = current / part
        if exact.exists():
            current = exact
            continue
        actual = _listing(str(current)).get(part.lower())
        if actual is None:
            return None
        current = current / actual
    return current


def clear_listing_cache() -> None:
    """Forget cached directory listings (tests that build stores on the fly, long-running sessions)."""
    _listing.cache_clear()


class Candidate(msgspec.Struct, frozen=True):
    """A file found for a key, with where it was found (for notes) and a problem if it cannot be used
    directly (a compressed ``.pd_`` or a ``file.ptr`` redirect)."""

    path: Path
    origin: str
    problem: str | None = None


class SymbolStore:
    """The local side of a symbol path: lookups by store key in stores and by name in folders."""

    def __init__(self, symbol_path: str | None, image_dirs: Sequence[str] = ()) -> None:
        self.entries = parse_symbol_path(symbol_path)
        self.image_dirs = tuple(image_dirs)

    @property
    def local_entries(self) -> tuple[SymbolPathEntry, ...]:
        return tuple(e for e in self.entries if e.kind != "remote")

    @property
    def remote_entries(self) -> tuple[SymbolPathEntry, ...]:
        return tuple(e for e in self.entries if e.kind == "remote")

    def missing_locations(self) -> tuple[str, ...]:
        """Local directories of the symbol path and image dirs that do not exist (typos to show the user)."""
        locations = [e.location for e in self.local_entries] + list(self.image_dirs)
        return tuple(loc for loc in locations if not Path(loc).is_dir())

    def find_by_key(self, key: str) -> Iterator[Candidate]:
        """Files stored under ``key`` (``name/INDEX/name``) in every local store or folder, in path order."""
        name = key.split("/", 1)[0]
        for entry in self.local_entries:
            base = Path(entry.location)
            if not base.is_dir():
                continue
            layouts = [key]
            if find_case_insensitive(base, "index2.txt") is not None:
                layouts.insert(0, f"{name[:2]}/{key}")
            for relative in layouts:
                found = _stored_file(base, relative)
                if found is not None:
                    path, problem = found
                    yield Candidate(path, f"symbol store {entry.location}", problem)

    def find_by_name(self, name: str, *, extra_dirs: Sequence[Path] = ()) -> Iterator[Candidate]:
        """Files called ``name`` in ``extra_dirs``, the image dirs and the symbol path's plain folders."""
        seen: set[Path] = set()
        directories = [(d, f"folder {d}") for d in extra_dirs]
        directories += [(Path(d), f"image dir {d}") for d in self.image_dirs]
        directories += [
            (Path(e.location), f"folder {e.location}") for e in self.entries if e.kind == "folder"
        ]
        for directory, origin in directories:
            found = find_case_insensitive(directory, name) if directory.is_dir() else None
            if found is not None and found.is_file() and found.resolve() not in seen:
                seen.add(found.resolve())
                yield Candidate(found, origin)

    def fetch_hint(self, key: str, image_path: str | None = None) -> str:
        """What to tell a user whose file is missing: the exact store key and a ``symchk`` line to get it."""
        stores = [e.location for e in self.entries if e.kind == "store"]
        remotes = [e.location for e in self.remote_entries]
        server = remotes[0] if remotes else MICROSOFT_SYMBOL_SERVER
        cache = stores[0] if stores else "C:\\symbols"
        target = image_path or file_name(key.split("/", 1)[0])
        return f"missing {key}; fetch it with: symchk /r {target} /s srv*{cache}*{server}"


def _stored_file(base: Path, relative: str) -> tuple[Path, str | None] | None:
    """The file at ``relative`` in a store, or its compressed twin / pointer file with what to do about it."""
    found = find_case_insensitive(base, relative)
    if found is not None and found.is_file():
        return found, None
    directory, name = relative.rsplit("/", 1)
    compressed = find_case_insensitive(base, f"{directory}/{name[:-1]}_")
    if compressed is not None and compressed.is_file():
        return compressed, f"{compressed} is compressed; expand it first (expand -r {compressed.name})"
    pointer = find_case_insensitive(base, f"{directory}/file.ptr")
    if pointer is not None and pointer.is_file():
        try:
            target = pointer.read_text("utf-8", "replace").strip()
        except OSError:
            target = "?"
        return pointer, f"{pointer} points elsewhere ({target[:200]}); copy that file here"
    return None


class Match(msgspec.Struct, frozen=True):
    """Whether a PDB belongs to an image: ``ok`` and, when not, what was expected and what was found."""

    ok: bool
    message: str | None = None


def check_pdb_match(image: PeImage, pdb_debug_id: str | None, pdb_path: str) -> Match:
    """A PDB matches an image when its GUID and age equal the image's CodeView record (as the debuggers
    require; a newer age means a later link of a different binary)."""
    codeview = image.codeview
    if codeview is None:
        return Match(False, f"{image.path} has no CodeView record, so {pdb_path} cannot be verified")
    if pdb_debug_id is None:
        return Match(
            False, f"{pdb_path}: its GUID could not be read, so it cannot be matched to {image.path}"
        )
    if pdb_debug_id.lower() == codeview.debug_id:
        return Match(True)
    guid, _, age = pdb_debug_id.upper().rpartition("-")
    return Match(
        False,
        f"PDB mismatch: {image.path} expects {file_name(codeview.pdb_name)} GUID {codeview.guid} age "
        f"{codeview.age:X}, but {pdb_path} has GUID {guid} age {age}",
    )
