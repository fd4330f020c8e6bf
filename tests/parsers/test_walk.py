"""Command-line paths -> files: nothing dropped silently (issue 10 item 8)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from parsers.walk import Entry, expand


def test_folders_patterns_and_what_cannot_be_read(tmp_path: Path) -> None:
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / "a" / "one.log").write_text("x")
    (tmp_path / "a" / "deep" / "two.log").write_text("x")
    (tmp_path / "a" / ".hidden.log").write_text("x")
    os.symlink(tmp_path / "nowhere", tmp_path / "a" / "dangling.log")
    os.symlink(tmp_path / "a" / "deep", tmp_path / "a" / "loop")
    found = list(expand([str(tmp_path / "a")]))
    assert found == [
        Entry(str(tmp_path / "a" / "dangling.log"), "a dangling link"),
        Entry(str(tmp_path / "a" / "one.log")),
        Entry(str(tmp_path / "a" / "loop"), "a link to a folder, not followed (name the folder itself)"),
        Entry(str(tmp_path / "a" / "deep" / "two.log")),
    ]
    pattern = list(expand([str(tmp_path / "a" / "**" / "*.log")]))
    assert {Path(e.name).name for e in pattern if e.problem is None} == {"one.log", "two.log"}
    assert list(expand([str(tmp_path / "*.none")])) == [
        Entry(str(tmp_path / "*.none"), "no file matches this pattern")
    ]
    (tmp_path / "empty").mkdir()
    assert list(expand([str(tmp_path / "empty")])) == [
        Entry(str(tmp_path / "empty"), "nothing to read in this folder")
    ]
    assert list(expand(["-"])) == [Entry("-")]


def test_a_fifo_is_read_when_named_and_not_when_found(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    os.mkfifo(tmp_path / "pipe.log")
    assert list(expand([str(tmp_path / "pipe.log")])) == [Entry(str(tmp_path / "pipe.log"))]
    assert list(expand([str(tmp_path)])) == [
        Entry(str(tmp_path / "pipe.log"), "a FIFO (named pipe), not read")
    ]
