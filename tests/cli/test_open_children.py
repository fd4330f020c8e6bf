"""``hvci-triage FILE`` starts a large input's analysis child before the view exists, the view adopts it (no
second child for the same input), and no child outlives the command however the view ends: it fails to
start, Ctrl+C before it runs, ``Q``, ``q`` or Ctrl+Q.

The input is followed (``--follow``): its child never ends by itself, so a child still running after the
command is one the command leaked, whatever the machine's speed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from textual.pilot import Pilot

import hvci.logs.worker
import tui.app
import tui.engine_feed
from cli.commands.open import command
from hvci.logs.worker import Child, Request
from tests.tui.conftest import wait_for
from tui.engine_feed import PROCESS_THRESHOLD

ROOT = Path(__file__).resolve().parents[2]
CRASH = (ROOT / "samples" / "logs" / "session-pool-type-haxm.log").read_text(encoding="utf-8")
NOISE = "[VendorFilt] request 7 completed with status 0x00000000 in 12 us\n"


def _large_log(tmp_path: Path) -> Path:
    path = tmp_path / "big.log"
    path.write_text(CRASH + NOISE * (PROCESS_THRESHOLD // len(NOISE) + 1), encoding="utf-8")
    return path


def _recording(start: Callable[[Request], Child], children: list[Child]) -> Callable[[Request], Child]:
    def recorded(request: Request) -> Child:
        child = start(request)
        children.append(child)
        return child

    return recorded


def _open(
    monkeypatch: pytest.MonkeyPatch, path: Path, run_view: Callable[[Any], None]
) -> tuple[Result, list[Child]]:
    """``hvci-triage --follow PATH`` with the view's ``run`` replaced by ``run_view(app)``; every analysis
    child started on the way, by the command line or by the view."""
    children: list[Child] = []
    monkeypatch.setattr(hvci.logs.worker, "start", _recording(hvci.logs.worker.start, children))
    monkeypatch.setattr(tui.engine_feed, "start", _recording(tui.engine_feed.start, children))
    monkeypatch.setattr("cli.commands.open.reattach_keyboard", lambda: None)
    make_app = tui.app.make_app

    class View:
        def __init__(self, sources: list[Any], **options: Any) -> None:
            assert [child.poll() for child in children] == [None]  # started before the view, running
            self.app = make_app(sources, keymap_file=path.with_name("keys.toml"), **options)

        def run(self) -> None:
            run_view(self.app)

    monkeypatch.setattr(tui.app, "make_app", View)
    result = CliRunner().invoke(command, ["--follow", str(path)])
    return result, children


def _ended(children: list[Child]) -> bool:
    return all(child.poll() is not None for child in children)


def test_an_error_before_the_view_mounts_leaves_no_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(app: Any) -> None:
        raise RuntimeError("no terminal")

    result, children = _open(monkeypatch, _large_log(tmp_path), fail)
    assert isinstance(result.exception, RuntimeError)
    assert len(children) == 1 and _ended(children)


def test_ctrl_c_before_the_view_runs_leaves_no_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(app: Any) -> None:
        raise KeyboardInterrupt

    result, children = _open(monkeypatch, _large_log(tmp_path), interrupt)
    assert result.exit_code != 0
    assert len(children) == 1 and _ended(children)


@pytest.mark.parametrize("key", ["Q", "q", "ctrl+q"])
def test_quitting_the_view_leaves_no_child_and_the_view_used_the_early_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    seen: list[int] = []

    def quit_with_key(app: Any) -> None:
        async def press(pilot: Pilot[None]) -> None:
            await wait_for(pilot, lambda: bool(app.triage.loads and app.triage.loads[0].incidents))
            seen.append(len(app.triage.loads[0].incidents))
            await pilot.press(key)

        app.run(headless=True, auto_pilot=press)

    result, children = _open(monkeypatch, _large_log(tmp_path), quit_with_key)
    assert result.exit_code == 0, result.output
    assert seen and seen[0] >= 1
    assert len(children) == 1 and _ended(children)  # the view started no child of its own
