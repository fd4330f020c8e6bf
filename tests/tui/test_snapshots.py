"""Snapshots of the main screens at 80x24, 120x32 and 200x50 (`pytest --snapshot-update`, then review).

Built from the hand-made fixture incidents, so that a change in the engine's wording does not show up as a
TUI regression; the end-to-end tests cover the real pipeline. Paths are fixed, there is no clock, and
cursor blinking is off. Each capture waits for events (the view caught up with its loaders, the keys'
effect shown, the app quiet), never for a time: a busy machine only makes it take longer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, TabbedContent, TextArea

from tests.tui.conftest import (
    LOG_NAME,
    LOG_TEXT,
    FixtureFeed,
    fixture_app,
    quiet,
    sample_incidents,
    settle,
    wait_for,
)
from tui.app import TriageApp
from tui.loading import Source
from tui.screens.help import HelpScreen
from tui.widgets.findings_table import FindingsTable

SIZES = [(80, 24), (120, 32), (200, 50)]


def _app(tmp_path: Path, with_input: bool = True) -> TriageApp:
    feed = FixtureFeed({LOG_NAME: LOG_TEXT}, {LOG_NAME: sample_incidents()})
    sources = [Source(LOG_NAME, data=LOG_TEXT.encode())] if with_input else []
    return fixture_app(feed, tmp_path, sources)


async def _steady(pilot: Pilot[None]) -> None:
    """Everything loaded and shown, cursors steady, nothing left to do."""
    await settle(pilot)
    _no_blinking(pilot)
    await quiet(pilot)


def _no_blinking(pilot: Pilot[None]) -> None:
    for widget in pilot.app.screen.query("Input, TextArea"):
        assert isinstance(widget, Input | TextArea)
        widget.cursor_blink = False


async def _shown(pilot: Pilot[None], condition: Callable[[], bool], what: str) -> None:
    """The keys just pressed have had their effect, and the app has settled after it."""
    await wait_for(pilot, condition, what)
    await quiet(pilot)


def _current(pilot: Pilot[None]) -> str | None:
    current = getattr(pilot.app.screen, "current", None)
    return current.id if current is not None else None


SnapCompare = Callable[..., bool]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen_detail(snap_compare: SnapCompare, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(_app(tmp_path), terminal_size=size, run_before=_steady)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen_evidence(snap_compare: SnapCompare, tmp_path: Path, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await _steady(pilot)
        await pilot.press("e", "v")
        tabs = pilot.app.screen.query_one(TabbedContent)
        await _shown(
            pilot, lambda: tabs.active == "evidence-tab" and _current(pilot) == f"{LOG_NAME}:16", "e, v"
        )

    assert snap_compare(_app(tmp_path), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_paste_screen(snap_compare: SnapCompare, tmp_path: Path, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await _steady(pilot)
        pilot.app.screen.query_one(TextArea).insert(LOG_TEXT.splitlines()[4] + "\n")
        await quiet(pilot)

    assert snap_compare(_app(tmp_path, with_input=False), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help_screen(snap_compare: SnapCompare, tmp_path: Path, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await _steady(pilot)
        await pilot.press("question_mark")
        await _shown(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), "help")

    assert snap_compare(_app(tmp_path), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_detail_zoomed(snap_compare: SnapCompare, tmp_path: Path, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await _steady(pilot)
        await pilot.press("d", "z")
        await _shown(
            pilot, lambda: pilot.app.screen.maximized is pilot.app.screen.query_one(TabbedContent), "zoom"
        )

    assert snap_compare(_app(tmp_path), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_empty_input(snap_compare: SnapCompare, tmp_path: Path, size: tuple[int, int]) -> None:
    feed = FixtureFeed({LOG_NAME: "nothing to see\n"}, {})
    app = fixture_app(feed, tmp_path, [Source(LOG_NAME, data=b"nothing to see\n")])
    assert snap_compare(app, terminal_size=size, run_before=_steady)


def test_grouped_by_category_with_search_open(snap_compare: SnapCompare, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await _steady(pilot)
        await pilot.press("S", "slash", *"caller")
        _no_blinking(pilot)
        search = pilot.app.screen.query_one("#search", Input)
        table = pilot.app.screen.query_one(FindingsTable)
        grouped = lambda: table.grouping == "category"  # noqa: E731
        await _shown(pilot, lambda: grouped() and search.value == "caller" and search.has_focus, "S, /caller")

    assert snap_compare(_app(tmp_path), terminal_size=(120, 32), run_before=run_before)
