"""The prefilter's anchors come back from the user's cache as they were worked out, and only from an entry
made from the same triggers by the same code."""

from __future__ import annotations

from pathlib import Path

import pytest

from parsers import prefilter
from parsers.registry import PARSERS

TRIGGERS = tuple(p.trigger for p in PARSERS)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HVCI_TRIAGE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(prefilter, "_REMEMBERED", {})
    return tmp_path


def _derived() -> list[tuple[prefilter.Anchor, ...] | None]:
    return [prefilter.anchors_for(t) for t in TRIGGERS]


def _not_derived(monkeypatch: pytest.MonkeyPatch) -> None:
    def derive(trigger: str) -> None:
        raise AssertionError(f"worked out again: {trigger}")

    monkeypatch.setattr(prefilter, "_REMEMBERED", {})
    monkeypatch.setattr(prefilter, "anchors_for", derive)


def test_a_later_process_reads_the_anchors_back(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _derived()
    prefilter.remember_anchors(TRIGGERS)
    assert [p.name for p in cache.iterdir()] and all(p.name.startswith("anchors-") for p in cache.iterdir())
    _not_derived(monkeypatch)  # as a new process: nothing remembered, and nothing may be worked out
    prefilter.remember_anchors(TRIGGERS)
    assert [prefilter.known_anchors(t) for t in TRIGGERS] == expected


def test_a_damaged_entry_is_worked_out_again(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _derived()
    prefilter.remember_anchors(TRIGGERS)
    (entry,) = cache.iterdir()
    data = bytearray(entry.read_bytes())
    data[-5] ^= 0xFF
    entry.write_bytes(bytes(data))
    monkeypatch.setattr(prefilter, "_REMEMBERED", {})
    prefilter.remember_anchors(TRIGGERS)
    assert [prefilter.known_anchors(t) for t in TRIGGERS] == expected
    _not_derived(monkeypatch)  # and written anew: the next process reads it
    prefilter.remember_anchors(TRIGGERS)


def test_other_triggers_are_not_read_from_an_entry_of_these(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefilter.remember_anchors(TRIGGERS)
    _not_derived(monkeypatch)
    with pytest.raises(AssertionError, match="worked out again"):
        prefilter.remember_anchors((*TRIGGERS[:-1], r"^\s*Something else entirely"))


def test_no_cache_folder_works_them_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HVCI_TRIAGE_CACHE_DIR", "")
    monkeypatch.setattr(prefilter, "_REMEMBERED", {})
    prefilter.remember_anchors(TRIGGERS)
    assert [prefilter.known_anchors(t) for t in TRIGGERS] == _derived()
