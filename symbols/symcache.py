"""symbolic's symcache behind a narrow, fast interface: RVA -> raw frames (innermost first).

symbolic's public ``SymCache.lookup`` builds a ``SourceLocation`` per frame and decodes every string (the
language too) on every call. A crash report looks up a handful of addresses, but ``symbolize`` and ``scan``
may look up hundreds of thousands, so this calls the same C function (``symbolic_symcache_lookup``) through
symbolic's own cffi handle, decodes only the symbol and path, and reuses the decoded symbol strings, which
live in the symcache's string table and so keep their address. If symbolic's low-level module is not
there (a future version), the public API is used instead: same answers, slower.
"""

from __future__ import annotations

import io
from typing import Any, NamedTuple

from symbols.isolate import IsolatedFailure, run_isolated


class RawFrame(NamedTuple):
    """One frame as the symcache stores it: function start, formatted name, source path, line (0: none)."""

    sym_addr: int
    symbol: str
    path: str | None
    line: int


class SymCacheReader:
    """A symcache built from PDB (or other debug file) bytes. Raises ``ValueError`` when symbolic cannot
    read them, with symbolic's message."""

    def __init__(self, data: bytes, *, embedded: bool = False) -> None:
        """``embedded``: ``data`` is a PE image carrying its own debug information (DWARF sections, as
        mingw and Wine builds have) rather than a PDB. The symcache is built in an isolated child
        (:mod:`symbols.isolate`): symbolic can crash in native code on a damaged file."""
        from symbolic.symcache import SymCache

        try:
            built = run_isolated("symcache", (b"E" if embedded else b"P") + data)
        except IsolatedFailure as error:
            raise ValueError(str(error)) from None
        debug_id, _, symcache = built.partition(b"\n")
        self.debug_id = debug_id.decode("ascii", "replace")
        try:
            self._cache: Any = SymCache.from_bytes(symcache)  # type: ignore[no-untyped-call]
        except Exception as error:  # a symcache we built ourselves; unreadable only if symbolic changed
            raise ValueError(f"{type(error).__name__}: {error}") from None
        self._names: dict[tuple[int, int], str] = {}
        try:
            from symbolic._lowlevel import ffi, lib

            self._ffi: Any = ffi
            self._lib: Any = lib
            self._pointer: Any = self._cache._objptr
        except (ImportError, AttributeError):
            self._lib = None

    def lookup(self, rva: int) -> list[RawFrame]:
        """The frames at ``rva``, innermost inline frame first; ``[]`` where the symcache has nothing."""
        if self._lib is None:
            return [
                RawFrame(loc.sym_addr, str(loc.symbol), loc.full_path or None, loc.line)
                for loc in self._cache.lookup(rva)
            ]
        ffi, lib = self._ffi, self._lib
        lib.symbolic_err_clear()
        result = lib.symbolic_symcache_lookup(self._pointer, rva)
        if lib.symbolic_err_get_last_code():
            return []
        frames = []
        try:
            for index in range(result.len):
                item = result.items[index]
                symbol = item.symbol
                key = (int(ffi.cast("uintptr_t", symbol.data)), symbol.len)
                name = self._names.get(key)
                if name is None:
                    name = (
                        ffi.unpack(symbol.data, symbol.len).decode("utf-8", "replace") if symbol.len else ""
                    )
                    if not symbol.owned:  # only strings borrowed from the cache keep their address
                        self._names[key] = name
                    else:
                        lib.symbolic_str_free(ffi.addressof(item, "symbol"))
                full_path = item.full_path
                path = (
                    ffi.unpack(full_path.data, full_path.len).decode("utf-8", "replace")
                    if full_path.len
                    else None
                )
                if full_path.owned:
                    lib.symbolic_str_free(ffi.addressof(item, "full_path"))
                frames.append(RawFrame(item.sym_addr, name, path, item.line))
        finally:
            lib.symbolic_lookup_result_free(ffi.addressof(result))
        return frames


def build_symcache(payload: bytes) -> bytes:
    """The isolated task: ``b"P"`` + PDB bytes or ``b"E"`` + image bytes -> debug id, newline, symcache.
    Raises ``ValueError`` with symbolic's message when the file is not what it should be."""
    from symbolic.debuginfo import Archive

    embedded, data = payload[:1] == b"E", payload[1:]
    try:
        obj = next(iter(Archive.from_bytes(data).iter_objects()), None)
        if obj is None:
            raise ValueError("no object in the file")
        if embedded and (obj.file_format != "pe" or "debug" not in obj.features):
            raise ValueError(f"a {obj.file_format} file without debug information")
        if not embedded and obj.file_format != "pdb":
            raise ValueError(f"a {obj.file_format} file, not a PDB")
        out = io.BytesIO()
        obj.make_symcache().dump_into(out)  # type: ignore[no-untyped-call]
    except ValueError:
        raise
    except Exception as error:  # symbolic raises one class per format problem
        raise ValueError(f"{type(error).__name__}: {error}") from None
    return str(obj.debug_id).encode("ascii") + b"\n" + out.getvalue()
