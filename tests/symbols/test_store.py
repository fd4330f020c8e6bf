"""Symbol paths, symbol-store layouts built in temporary folders, and PDB <-> image matching."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from symbols.environment import symbol_path_from_environment
from symbols.pdb import load_pdb
from symbols.pe import PeImage
from symbols.store import (
    SymbolPathEntry,
    SymbolStore,
    check_pdb_match,
    clear_listing_cache,
    file_name,
    image_key,
    parse_symbol_path,
    pdb_key,
)
from tests.conftest import realworld
from tests.symbols.conftest import SAMPLE_BUILD

MS = "https://msdl.microsoft.com/download/symbols"


def _sample(name: str) -> Path:
    path = SAMPLE_BUILD / name
    if not path.exists():
        pytest.skip(f"sample driver not built: {path}")
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"srv*C:\\cache*{MS}", [("store", "C:\\cache"), ("remote", MS)]),
        (f"SRV*{MS}", [("remote", MS)]),
        ("SRV*c:\\symbols", [("store", "c:\\symbols")]),
        (f"cache*C:\\x;srv*{MS}", [("store", "C:\\x"), ("remote", MS)]),
        (f"symsrv*symsrv.dll*c:\\s*{MS}", [("store", "c:\\s"), ("remote", MS)]),
        ("C:\\mysyms; D:\\other ;", [("folder", "C:\\mysyms"), ("folder", "D:\\other")]),
        ("\\\\server\\share\\symbols", [("remote", "\\\\server\\share\\symbols")]),
        (f"srv*/cache*{MS};srv*/cache*{MS}", [("store", "/cache"), ("remote", MS)]),
        ('"C:\\with space"', [("folder", "C:\\with space")]),
        ("", []),
        (None, []),
    ],
)
def test_parse_symbol_path(text: str | None, expected: list[tuple[str, str]]) -> None:
    assert parse_symbol_path(text) == tuple(SymbolPathEntry(kind, where) for kind, where in expected)


def test_symbol_path_from_environment() -> None:
    env = {"_NT_SYMBOL_PATH": f"srv*C:\\s*{MS}", "_NT_ALT_SYMBOL_PATH": "C:\\private"}
    assert symbol_path_from_environment(env) == f"C:\\private;srv*C:\\s*{MS}"
    assert symbol_path_from_environment({}) is None


def test_keys() -> None:
    image = PeImage.open(realworld("drivers", "WinDivert64-1.3.sys"))
    assert image.codeview is not None
    assert pdb_key(image.codeview) == "WinDivert64.pdb/5EB305B72EAE48AE9B07F718F663A4731/WinDivert64.pdb"
    assert image_key("WinDivert64.sys", image.timestamp, image.size_of_image) == (
        f"WinDivert64.sys/{image.timestamp:08X}{image.size_of_image:x}/WinDivert64.sys"
    )
    assert image_key("a.sys", 0x59CBBE56, 0xE000) == "a.sys/59CBBE56e000/a.sys"
    assert file_name("c:\\build\\amd64\\drv.pdb") == "drv.pdb" and file_name("/x/y.pdb") == "y.pdb"


def _put(root: Path, relative: str, source: Path) -> Path:
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


@pytest.fixture
def clean() -> tuple[PeImage, Path]:
    image = PeImage.open(_sample("clean.sys"))
    assert image.codeview is not None
    return image, _sample("clean.pdb")


def test_store_layout(tmp_path: Path, clean: tuple[PeImage, Path]) -> None:
    image, pdb = clean
    assert image.codeview is not None
    stored = _put(tmp_path / "store", pdb_key(image.codeview), pdb)
    found = list(SymbolStore(f"srv*{tmp_path / 'store'}*{MS}").find_by_key(pdb_key(image.codeview)))
    assert [c.path for c in found] == [stored] and found[0].problem is None


def test_two_tier_store(tmp_path: Path, clean: tuple[PeImage, Path]) -> None:
    image, pdb = clean
    assert image.codeview is not None
    root = tmp_path / "two"
    root.mkdir()
    (root / "index2.txt").write_text("")
    key = pdb_key(image.codeview)
    stored = _put(root, f"{key[:2]}/{key}", pdb)
    assert [c.path for c in SymbolStore(f"cache*{root}").find_by_key(key)] == [stored]


def test_lookup_ignores_case(tmp_path: Path, clean: tuple[PeImage, Path]) -> None:
    image, pdb = clean
    assert image.codeview is not None
    name, index, _ = pdb_key(image.codeview).split("/")
    stored = _put(tmp_path / "s", f"{name.upper()}/{index.lower()}/{name.capitalize()}", pdb)
    clear_listing_cache()
    assert [c.path for c in SymbolStore(f"SRV*{tmp_path / 's'}").find_by_key(pdb_key(image.codeview))] == [
        stored
    ]


def test_compressed_and_pointer_files_are_reported(tmp_path: Path, clean: tuple[PeImage, Path]) -> None:
    image, pdb = clean
    assert image.codeview is not None
    key = pdb_key(image.codeview)
    name, index, _ = key.split("/")
    _put(tmp_path / "a", f"{name}/{index}/{name[:-1]}_", pdb)
    (tmp_path / "b" / name / index).mkdir(parents=True)
    (tmp_path / "b" / name / index / "file.ptr").write_text("PATH:\\\\server\\share\\clean.pdb")
    found = list(SymbolStore(f"srv*{tmp_path / 'a'};srv*{tmp_path / 'b'}").find_by_key(key))
    assert len(found) == 2
    assert "compressed" in str(found[0].problem) and "expand" in str(found[0].problem)
    assert "points elsewhere" in str(found[1].problem) and "server" in str(found[1].problem)


def test_plain_folders_and_image_dirs(tmp_path: Path) -> None:
    source = _sample("clean.sys")
    _put(tmp_path / "images", "Clean.SYS", source)
    _put(tmp_path / "folder", "other.pdb", _sample("clean.pdb"))
    clear_listing_cache()
    store = SymbolStore(str(tmp_path / "folder"), [str(tmp_path / "images")])
    assert [c.path.name for c in store.find_by_name("clean.sys")] == ["Clean.SYS"]
    assert [c.path.name for c in store.find_by_name("OTHER.pdb")] == ["other.pdb"]
    assert list(store.find_by_name("absent.pdb")) == []


def test_missing_locations_and_fetch_hint(tmp_path: Path, clean: tuple[PeImage, Path]) -> None:
    image, _ = clean
    assert image.codeview is not None
    store = SymbolStore(f"srv*{tmp_path / 'nope'}*{MS};{tmp_path}", [str(tmp_path / "gone")])
    assert store.missing_locations() == (str(tmp_path / "nope"), str(tmp_path / "gone"))
    hint = store.fetch_hint(pdb_key(image.codeview), "clean.sys")
    assert f"missing clean.pdb/{image.codeview.store_key}/clean.pdb" in hint
    assert f"symchk /r clean.sys /s srv*{tmp_path / 'nope'}*{MS}" in hint


def test_pdb_match_and_mismatch(clean: tuple[PeImage, Path]) -> None:
    image, pdb = clean
    assert check_pdb_match(image, load_pdb(pdb).debug_id, str(pdb)).ok
    other = load_pdb(_sample("api_misuse.pdb"))
    result = check_pdb_match(image, other.debug_id, "api_misuse.pdb")
    assert not result.ok and result.message is not None
    assert image.codeview is not None and image.codeview.guid in result.message
    assert str(other.debug_id).upper().rsplit("-", 1)[0] in result.message
    assert "expects clean.pdb" in result.message and "age 1" in result.message


def test_age_alone_makes_a_mismatch(clean: tuple[PeImage, Path]) -> None:
    image, pdb = clean
    debug_id = str(load_pdb(pdb).debug_id)
    newer = debug_id.rsplit("-", 1)[0] + "-2"
    result = check_pdb_match(image, newer, "clean.pdb")
    assert not result.ok and "age 2" in str(result.message) and "age 1" in str(result.message)
