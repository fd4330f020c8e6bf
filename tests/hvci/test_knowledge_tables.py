"""The small knowledge tables (kmdf.toml, nx_optin.toml) come back from the user's cache as the files give
them, and an edited file, an edited reader or a damaged entry is read anew."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hvci.knowledge import kmdf, optin
from hvci.knowledge.tables import cached_table


class Pair(msgspec.Struct, frozen=True):
    name: str
    values: frozenset[int]


class Counted:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, data: dict[str, Any]) -> Pair:
        self.calls += 1
        if not isinstance(data.get("name"), str):
            raise ValueError("name must be text")
        return Pair(data["name"], frozenset(data["values"]))


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    cache = tmp_path / "cache"
    monkeypatch.setenv("HVCI_TRIAGE_CACHE_DIR", str(cache))
    table, reader = tmp_path / "pair.toml", tmp_path / "reader.py"
    table.write_text('name = "one"\nvalues = [1, 2]\n', encoding="utf-8")
    reader.write_text("# builds Pair\n", encoding="utf-8")
    return table, reader, cache


def test_a_later_run_reads_the_table_back(files: tuple[Path, Path, Path]) -> None:
    table, reader, cache = files
    build = Counted()
    first = cached_table(str(table), str(reader), Pair, build)
    again = cached_table(str(table), str(reader), Pair, build)
    assert first == again == Pair("one", frozenset({1, 2}))
    assert build.calls == 1
    assert [p.name.startswith("table-") for p in cache.iterdir()] == [True]


def test_an_edited_file_or_reader_is_read_anew(files: tuple[Path, Path, Path]) -> None:
    table, reader, _ = files
    build = Counted()
    cached_table(str(table), str(reader), Pair, build)
    table.write_text('name = "two"\nvalues = [3]\n', encoding="utf-8")
    assert cached_table(str(table), str(reader), Pair, build) == Pair("two", frozenset({3}))
    reader.write_text("# builds Pair, differently\n", encoding="utf-8")
    cached_table(str(table), str(reader), Pair, build)
    assert build.calls == 3


def test_a_damaged_entry_is_read_anew(files: tuple[Path, Path, Path]) -> None:
    table, reader, cache = files
    build = Counted()
    cached_table(str(table), str(reader), Pair, build)
    (entry,) = cache.iterdir()
    data = bytearray(entry.read_bytes())
    data[-1] ^= 0xFF
    entry.write_bytes(bytes(data))
    assert cached_table(str(table), str(reader), Pair, build) == Pair("one", frozenset({1, 2}))
    assert build.calls == 2


def test_a_bad_file_is_an_error_and_not_kept(files: tuple[Path, Path, Path]) -> None:
    table, reader, cache = files
    table.write_text("name = 1\nvalues = []\n", encoding="utf-8")
    with pytest.raises(ValueError, match="name must be text"):
        cached_table(str(table), str(reader), Pair, Counted())
    assert not cache.exists() or not list(cache.iterdir())


def test_the_real_tables_are_the_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Cold and warm, through each table's own loader: what its TOML file says."""
    monkeypatch.setenv("HVCI_TRIAGE_CACHE_DIR", str(tmp_path))
    folder = Path(kmdf.__file__).parent
    functions = tomllib.loads((folder / "kmdf.toml").read_text("utf-8"))["functions"]
    apis = tomllib.loads((folder / "nx_optin.toml").read_text("utf-8"))["version_apis"]
    for _ in range(2):
        kmdf.load.cache_clear()
        optin.load.cache_clear()
        assert kmdf.load().by_index == {index: name for name, index in functions.items()}
        assert optin.load().version_apis == frozenset(apis)
    kmdf.load.cache_clear()
    optin.load.cache_clear()
