"""The start-up cache of the knowledge base gives the knowledge of the files as they are now, or none at all.

Each test works on a copy of the knowledge folder and a cache folder of its own; the truth is always
``kb.read_files`` on the folder as it is when the cached load runs.
"""

from __future__ import annotations

import os
import shutil
import time
import zlib
from pathlib import Path

import msgspec
import pytest

from hvci.knowledge import cache, files, kb


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    copy = tmp_path / "knowledge"
    shutil.copytree(kb.KNOWLEDGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _entry(folder: Path) -> Path:
    (entry,) = folder.glob("knowledge-*.bin")
    return entry


def _no_toml(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: object) -> None:
        raise AssertionError(f"read {path} although the cache holds it")

    monkeypatch.setattr(files, "_toml", refuse)


def test_a_warm_cache_gives_the_files_without_reading_them(
    knowledge: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "cache"
    cold = cache.cached_files(knowledge, folder)
    assert _entry(folder).stat().st_size > 0
    assert cold == kb.read_files(knowledge, remediations=True)
    _no_toml(monkeypatch)
    warm = cache.cached_files(knowledge, folder)
    assert warm == cold
    base = kb.assemble(warm, knowledge)
    assert base.categories["execute-pool-type"].remediation == cold.remediations["execute-pool-type.toml"]
    monkeypatch.undo()
    assert base == kb.load_from(knowledge)


def test_an_edited_file_is_read_again(knowledge: Path, tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    before = cache.cached_files(knowledge, folder)
    apis = knowledge / "apis.toml"
    text = apis.read_text(encoding="utf-8")
    name = before.apis.api[0].name
    apis.write_text(text.replace(f'name = "{name}"', f'name = "{name}Renamed"', 1), encoding="utf-8")
    after = cache.cached_files(knowledge, folder)
    assert after.apis.api[0].name == f"{name}Renamed"
    assert after == kb.read_files(knowledge, remediations=True)
    assert cache.cached_files(knowledge, folder) == after  # the entry was written anew


def test_an_edited_remediation_is_read_again(knowledge: Path, tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    cache.cached_files(knowledge, folder)
    remediation = knowledge / "remediation" / "execute-pool-type.toml"
    text = remediation.read_text(encoding="utf-8")
    assert "The driver allocated pool" in text
    remediation.write_text(text.replace("The driver allocated pool", "The driver edited pool", 1), "utf-8")
    after = cache.cached_files(knowledge, folder)
    assert after.remediations["execute-pool-type.toml"].what.startswith("The driver edited pool")


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # cut short
        lambda data: data[:-10] + bytes(b ^ 0x55 for b in data[-10:]),  # payload changed
        lambda data: data.replace(b"apis.toml", b"apis.tomm", 1),  # key changed
        lambda data: b"",
    ],
    ids=["cut", "payload", "key", "empty"],
)
def test_a_damaged_entry_is_never_used(
    knowledge: Path, tmp_path: Path, damage: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "cache"
    truth = cache.cached_files(knowledge, folder)
    entry = _entry(folder)
    entry.write_bytes(damage(entry.read_bytes()))  # type: ignore[operator]
    read: list[object] = []
    original = files._toml
    monkeypatch.setattr(files, "_toml", lambda path: read.append(path) or original(path))
    assert cache.cached_files(knowledge, folder) == truth
    assert read, "a damaged entry was decoded instead of the files"


def test_a_whole_entry_of_other_records_is_not_used(knowledge: Path, tmp_path: Path) -> None:
    """An entry with the right key and CRC whose payload does not decode into the records (another
    version's layout, a forged file) is read as a miss."""
    folder = tmp_path / "cache"
    truth = cache.cached_files(knowledge, folder)
    entry = _entry(folder)
    data = entry.read_bytes()
    head = data.index(b"\n\n") + 2
    payload = msgspec.msgpack.encode({"categories": "not a table"})
    entry.write_bytes(data[:head] + zlib.crc32(payload).to_bytes(4, "big") + payload)
    assert cache.cached_files(knowledge, folder) == truth


def test_a_folder_that_cannot_be_written_costs_only_speed(knowledge: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder", encoding="utf-8")
    assert cache.cached_files(knowledge, blocked / "cache") == kb.read_files(knowledge, remediations=True)


def test_the_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HVCI_TRIAGE_CACHE_DIR", str(tmp_path))
    assert cache.cache_dir() == str(tmp_path)
    monkeypatch.setenv("HVCI_TRIAGE_CACHE_DIR", "")
    assert cache.cache_dir() is None
    monkeypatch.delenv("HVCI_TRIAGE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    if cache.sys.platform != "win32":
        assert cache.cache_dir() == str(tmp_path / "hvci-triage")


def test_with_the_cache_off_the_files_are_read(
    knowledge: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HVCI_TRIAGE_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cached_files(knowledge) == kb.read_files(knowledge)
    assert not list(tmp_path.rglob("knowledge-*.bin"))


def test_writing_an_entry_prunes_other_installs_stale_entries(knowledge: Path, tmp_path: Path) -> None:
    """Each install location has its own entry; one whose install is gone is removed at the next write
    once it is older than the stale age, and a recent one of another install is kept."""
    folder = tmp_path / "cache"
    folder.mkdir()
    stale, recent = folder / "knowledge-00000001.bin", folder / "knowledge-00000002.bin"
    unrelated = folder / "notes.txt"
    for path in (stale, recent, unrelated):
        path.write_bytes(b"x")
    long_ago = time.time() - cache.STALE_SECONDS - 60
    os.utime(stale, (long_ago, long_ago))
    os.utime(unrelated, (long_ago, long_ago))
    cache.cached_files(knowledge, folder)
    assert not stale.exists()
    assert recent.exists() and unrelated.exists()
    assert len(list(folder.glob("knowledge-*.bin"))) == 2  # the recent one and this install's new entry
