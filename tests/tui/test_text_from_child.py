"""The view's side of the text child (tui.engine_feed): what it sends lands in the load; a child that ends
before the end of the text leaves the load marked incomplete, never silently short."""

from __future__ import annotations

import io
import pickle
import zlib
from pathlib import Path
from typing import Any

import pytest

from tui import engine_feed
from tui.engine_feed import PipelineFeed
from tui.linestore import Stored
from tui.loading import Load, Source

#: Where the first two lines of the test's file lie, as the text child says it: offset, length, CRC-32.
FIRST_TWO = (0, 8, zlib.crc32(b"one\ntwo\n"))


class _Sent:
    """A child that has sent ``messages`` and exited with ``code``."""

    def __init__(self, messages: list[tuple[str, Any]], code: int) -> None:
        out = io.BytesIO()
        for message in messages:
            pickle.dump(message, out)
        out.seek(0)
        self.stdout = out
        self.returncode = code
        self.waited = False

    def poll(self) -> int:
        return self.returncode

    def wait(self) -> int:
        self.waited = True
        return self.returncode

    def terminate(self) -> None:
        pass


def _read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, messages: list[tuple[str, Any]], code: int
) -> Load:
    path = tmp_path / "big.log"
    path.write_bytes(b"one\ntwo\nthree\n")
    child = _Sent(messages, code)
    monkeypatch.setattr(engine_feed, "start", lambda request: child)
    load = Load(Source.file(path))
    PipelineFeed(options=None, process_threshold=0).read_lines(load)  # type: ignore[arg-type]
    assert child.waited  # read to its end and reaped, not left behind
    return load


def test_what_the_text_child_sends_lands_in_the_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = [("text", (FIRST_TWO, 2, 10, "utf-8")), ("text", (b"three\n", 1, 14, "utf-8")), ("end", 14)]
    load = _read(tmp_path, monkeypatch, sent, 0)
    assert list(load.lines) == ["one", "two", "three"] and isinstance(load.lines._chunks[0], Stored)
    assert (load.lines_done, load.bytes_read, load.error) == (True, 14, None)


def test_a_text_child_that_ends_early_leaves_the_load_incomplete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load = _read(tmp_path, monkeypatch, [("text", (FIRST_TWO, 2, 10, "utf-8"))], -9)
    assert list(load.lines) == ["one", "two"] and load.lines_done
    assert load.error == "the text reader process ended early (exit code -9)"
    load = _read(tmp_path, monkeypatch, [("error", "cannot read: Permission denied")], 0)
    assert load.error == "cannot read: Permission denied"
