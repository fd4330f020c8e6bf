"""The resolver end to end: module map -> image + PDB found on disk -> Resolution, and every fallback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from parsers.records import ModuleEntry
from symbols.modules import ModuleMap
from symbols.pdb import load_pdb
from symbols.pe import PeImage
from symbols.resolve import ImageSymbols, SymbolResolver
from symbols.store import pdb_key
from tests.conftest import realworld
from tests.symbols.conftest import SAMPLE_BUILD

BASE = 0xFFFFF80366350000


def _sample(name: str) -> Path:
    path = SAMPLE_BUILD / name
    if not path.exists():
        pytest.skip(f"sample driver not built: {path}")
    return path


def _folder(tmp_path: Path, *files: tuple[Path, str]) -> Path:
    folder = tmp_path / "images"
    folder.mkdir(exist_ok=True)
    for source, name in files:
        shutil.copyfile(source, folder / name)
    return folder


def _map(name: str, size: int = 0x8000, **extra: int) -> ModuleMap:
    entry = ModuleEntry(line=1, name=name, start=BASE, end=BASE + size, **extra)  # type: ignore[arg-type]
    return ModuleMap.from_entries([entry])


@pytest.fixture
def api_misuse(tmp_path: Path) -> Path:
    return _folder(
        tmp_path, (_sample("api_misuse.sys"), "api_misuse.sys"), (_sample("api_misuse.pdb"), "api_misuse.pdb")
    )


def test_resolves_through_the_pdb_next_to_the_image(api_misuse: Path) -> None:
    resolver = SymbolResolver(None, [str(api_misuse)])
    result = resolver.resolve(BASE + 0x1005, _map("api_misuse"))
    assert (result.module, result.offset, result.function, result.displacement) == (
        "api_misuse",
        0x1005,
        "bad_pool_nonpaged",
        5,
    )
    assert result.file is not None and result.file.endswith("api_misuse.c") and result.line == 26
    assert result.resolved_by == "pdb" and result.note is None
    assert result.symbol == "api_misuse!bad_pool_nonpaged+0x5"
    assert result.signature == "bad_pool_nonpaged(unsigned long long)"


def test_return_address_looks_up_the_call(api_misuse: Path) -> None:
    """Find an address whose own line differs from the line of the byte before it, in the same function."""
    pdb = load_pdb(api_misuse / "api_misuse.pdb")
    pe = PeImage.open(api_misuse / "api_misuse.sys")
    address = next(
        a
        for begin, end in pe.functions
        for a in range(begin + 1, end)
        if (here := pdb.lookup(a))
        and (before := pdb.lookup(a - 1))
        and here.function == before.function
        and here.line != before.line
    )
    before = pdb.lookup(address - 1)
    assert before is not None
    resolver = SymbolResolver(None, [str(api_misuse)])
    plain = resolver.resolve(BASE + address, _map("api_misuse"))
    corrected = resolver.resolve(BASE + address, _map("api_misuse"), return_address=True)
    assert corrected.line == before.line != plain.line
    assert corrected.displacement == plain.displacement == address - before.function_rva


def test_return_address_at_the_start_of_the_next_function(api_misuse: Path) -> None:
    """A call as the last instruction (noreturn) returns to the next function's first byte."""
    pe = PeImage.open(api_misuse / "api_misuse.sys")
    ends = {end for _, end in pe.functions}
    boundary = next(begin for begin, _ in pe.functions if begin in ends)
    pdb = load_pdb(api_misuse / "api_misuse.pdb")
    previous = pdb.lookup(boundary - 1)
    assert previous is not None
    result = SymbolResolver(None, [str(api_misuse)]).resolve(
        BASE + boundary, _map("api_misuse"), return_address=True
    )
    assert result.function == previous.function and result.displacement == boundary - previous.function_rva


def test_image_and_pdb_from_symbol_stores(tmp_path: Path) -> None:
    image = PeImage.open(_sample("clean.sys"))
    assert image.codeview is not None
    store = tmp_path / "store"
    for relative, source in (
        (f"clean.sys/{image.code_id}/clean.sys", _sample("clean.sys")),
        (pdb_key(image.codeview), _sample("clean.pdb")),
    ):
        (store / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, store / relative)
    modules = _map("clean", image.size_of_image, timestamp=image.timestamp, image_size=image.size_of_image)
    begin = image.functions[0][0]
    result = SymbolResolver(f"srv*{store}*https://msdl.microsoft.com/download/symbols", []).resolve(
        BASE + begin + 2, modules
    )
    assert result.resolved_by == "pdb" and result.displacement == 2 and result.file is not None


def test_missing_pdb_falls_back_to_pdata_and_names_the_store_key(tmp_path: Path) -> None:
    folder = _folder(tmp_path, (realworld("drivers", "WinDivert64-1.3.sys"), "WinDivert64.sys"))
    pe = PeImage.open(folder / "WinDivert64.sys")
    begin, _ = pe.functions[3]
    result = SymbolResolver(
        f"srv*{tmp_path / 'cache'}*https://msdl.microsoft.com/download/symbols", [str(folder)]
    ).resolve(BASE + begin + 0x10, _map("WinDivert64", pe.size_of_image))
    assert result.resolved_by == "pdata"
    assert result.function == f"WinDivert64+{begin:#x}" and result.displacement == 0x10
    assert result.symbol == f"WinDivert64+{begin:#x}+0x10"
    assert result.note is not None
    assert "WinDivert64.pdb/5EB305B72EAE48AE9B07F718F663A4731/WinDivert64.pdb" in result.note
    assert f"symchk /r {folder / 'WinDivert64.sys'} /s srv*{tmp_path / 'cache'}*https://" in result.note


def test_exports_fallback(tmp_path: Path) -> None:
    folder = _folder(tmp_path, (realworld("msvc-pdb", "attach_amd64.dll"), "attach_amd64.dll"))
    pe = PeImage.open(folder / "attach_amd64.dll")
    export = next(e for e in pe.exports if pe.function_at(e.rva) is not None)
    result = SymbolResolver(None, [str(folder)]).resolve(
        BASE + export.rva + 4, _map("attach_amd64.dll", pe.size_of_image)
    )
    assert (result.function, result.displacement, result.resolved_by) == (export.name, 4, "exports")


def test_module_only_and_none(tmp_path: Path) -> None:
    resolver = SymbolResolver(None, [str(tmp_path)])
    result = resolver.resolve(BASE + 0x1234, _map("nothere"))
    assert (result.module, result.offset, result.function, result.resolved_by) == (
        "nothere",
        0x1234,
        None,
        "module",
    )
    assert result.note is not None and "nothere.sys" in result.note
    assert result.symbol == "nothere+0x1234"
    outside = resolver.resolve(0x1000, _map("nothere"))
    assert outside.resolved_by == "none" and outside.module is None and "no module" in str(outside.note)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_pdb_gives_a_note_and_the_best_fallback(tmp_path: Path, damage: str) -> None:
    pdb_bytes = _sample("api_misuse.pdb").read_bytes()
    data = {"truncated": pdb_bytes[: len(pdb_bytes) // 4], "garbage": b"\x00garbage" * 512, "empty": b""}[
        damage
    ]
    folder = _folder(tmp_path, (_sample("api_misuse.sys"), "api_misuse.sys"))
    (folder / "api_misuse.pdb").write_bytes(data)
    pe = PeImage.open(folder / "api_misuse.sys")
    begin, _ = pe.functions[0]
    result = SymbolResolver(None, [str(folder)]).resolve(BASE + begin + 1, _map("api_misuse"))
    assert result.resolved_by == "pdata" and result.displacement == 1
    assert result.note is not None and "api_misuse.pdb" in result.note


def test_mismatched_pdb_is_refused_with_expected_and_found(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path, (_sample("api_misuse.sys"), "api_misuse.sys"), (_sample("clean.pdb"), "api_misuse.pdb")
    )
    image = PeImage.open(folder / "api_misuse.sys")
    assert image.codeview is not None
    begin, _ = image.functions[0]
    result = SymbolResolver(None, [str(folder)]).resolve(BASE + begin, _map("api_misuse"))
    assert result.resolved_by == "pdata"
    assert result.note is not None and "PDB mismatch" in result.note
    assert image.codeview.guid in result.note
    assert str(load_pdb(_sample("clean.pdb")).debug_id).upper().rsplit("-", 1)[0] in result.note


def test_a_different_build_of_the_image_is_not_used(api_misuse: Path) -> None:
    result = SymbolResolver(None, [str(api_misuse)]).resolve(
        BASE + 0x1005, _map("api_misuse", timestamp=0x12345678)
    )
    assert result.resolved_by != "pdb"
    assert result.note is not None and "different build" in result.note and "12345678" in result.note


def test_pdb_without_image_is_used_but_flagged(tmp_path: Path) -> None:
    folder = _folder(tmp_path, (_sample("api_misuse.pdb"), "api_misuse.pdb"))
    result = SymbolResolver(None, [str(folder)]).resolve(BASE + 0x1005, _map("api_misuse"))
    assert result.resolved_by == "pdb" and result.function == "bad_pool_nonpaged"
    assert result.note is not None and "not verified" in result.note


def test_unloaded_and_unknown_size_are_said(api_misuse: Path) -> None:
    resolver = SymbolResolver(None, [str(api_misuse)])
    unloaded = ModuleMap.from_entries(
        [ModuleEntry(line=1, name="api_misuse.sys", start=BASE, end=BASE + 0x8000, unloaded=True)]
    )
    result = resolver.resolve(BASE + 0x1005, unloaded)
    assert result.resolved_by == "pdb" and "unloaded" in str(result.note)
    open_ended = ModuleMap.from_analyze([("FAULTING_MODULE", f"{BASE:x} api_misuse")])
    result = resolver.resolve(BASE + 0x1005, open_ended)
    assert result.resolved_by == "pdb" and "size is unknown" in str(result.note)


def test_offset_beyond_the_image_is_flagged(api_misuse: Path) -> None:
    result = SymbolResolver(None, [str(api_misuse)]).resolve(BASE + 0x7F000, _map("api_misuse", 0x80000))
    assert "beyond the image size" in str(result.note)


def test_module_context_is_cached(api_misuse: Path) -> None:
    resolver = SymbolResolver(None, [str(api_misuse)])
    modules = _map("api_misuse")
    first = resolver.symbols_for(modules.modules[0])
    assert resolver.symbols_for(modules.modules[0]) is first


def test_image_symbols_from_a_pdb_alone() -> None:
    symbols = ImageSymbols.from_path(realworld("msvc-pdb", "attach_amd64.pdb"))
    assert symbols.image is None and symbols.pdb is not None
    result = symbols.resolve_rva(0x1038)
    assert result.function == "printf" and result.inlined == ("_vfprintf_l",)


def test_image_symbols_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(ValueError, match="not a PE image"):
        ImageSymbols.from_path(path)
