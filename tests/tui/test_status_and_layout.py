"""What the status line, the empty detail pane and the list's columns say, and how export asks."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from textual.widgets import Static

from hvci.findings import group_findings
from parsers.records import Diagnostic, InputInfo, Span
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
from tui.loading import Load, Source
from tui.screens import triage
from tui.screens.prompt import PromptScreen
from tui.status import counts_text, empty_text, load_text
from tui.widgets.findings_table import CELL_PADDING, COLUMNS, Filter, fit_columns


def test_columns_fit_80_columns_keeping_category_driver_and_a_whole_address() -> None:
    natural = {"category": 36, "driver": 30, "function": 18, "confidence": 8, "count": 5, "line": 4}
    widths = fit_columns(natural, 76)
    assert list(widths)[:3] == ["category", "driver", "function"]
    assert widths["function"] == 18  # 0xfffff80547b4a1c4, never cut
    assert sum(widths.values()) + CELL_PADDING * len(widths) <= 76
    assert all(widths[key] >= min(COLUMNS[key].narrowest, natural[key]) for key in widths)


def test_columns_are_as_wide_as_their_content_when_there_is_room() -> None:
    natural = {
        "input": 12,
        "category": 20,
        "driver": 11,
        "function": 19,
        "confidence": 7,
        "count": 5,
        "line": 4,
    }
    assert fit_columns(natural, 200) == natural
    assert "input" in fit_columns(natural, 100)  # with several inputs, the Input column stays


def test_progress_says_read_analysed_and_found_so_far() -> None:
    load = Load(Source.memory(b"x" * 2_000_000, "big.log"))
    load.bytes_read, load.bytes_parsed = 1_500_000, 700_000
    load.add(sample_incidents()[0])
    text = load_text(load).plain
    assert text == "big.log read 1.4 MB / 1.9 MB, analysed 683.6 KB, 1 incident so far"
    load.incidents_done = load.lines_done = True
    assert load_text(load).plain.endswith("0 lines, 1 incident, done")


def test_counts_never_look_clean_when_an_input_was_not_read() -> None:
    assert counts_text([], Filter(), 0, incomplete=True).plain == "0 HVCI (incomplete)"
    findings = [f.incident for f in group_findings(sample_incidents())]
    assert counts_text(findings, Filter(show_other=False), 2).plain == "2 HVCI · 1 other (hidden: o)"


def test_empty_detail_says_what_was_read_and_shows_the_diagnostics() -> None:
    load = Load(Source.memory(b"\xff\xfe junk", "odd.log"))
    warning = Diagnostic(Span("odd.log", 1, 1), "bytes that are not valid cp1252 replaced", "warning")
    load.finish(InputInfo("odd.log", "text", "cp1252", 1, 8, (warning,)))
    load.incidents_done = load.lines_done = True
    text = empty_text([load], 0, Filter()).plain
    assert "No incidents found." in text
    assert "odd.log: read as text, cp1252, 1 lines" in text
    assert "warning: line 1: bytes that are not valid cp1252 replaced" in text
    assert "press p and paste" in text
    assert "hidden by the filter" in empty_text([load], 3, Filter(category="execute-pool-type")).plain
    assert "No input yet." in empty_text([], 0, Filter()).plain


async def test_export_proposes_a_path_and_never_replaces_a_file_without_asking(tmp_path: Path) -> None:
    log = tmp_path / "crash.log"
    log.write_text(LOG_TEXT, encoding="utf-8")
    feed = FixtureFeed({str(log): LOG_TEXT}, {str(log): sample_incidents(str(log))})
    app = fixture_app(feed, tmp_path, [Source.file(log)])
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.action_export("json")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press("enter")  # the proposed path: beside the input
        written = tmp_path / "crash.hvci.json"
        await wait_for(pilot, lambda: written.exists())
        written.write_text("mine", encoding="utf-8")
        app.action_export("json")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: isinstance(app.screen, PromptScreen) and "exists" in app.screen.question
        )
        await pilot.press("n", "enter")
        await wait_for(pilot, lambda: app.screen is app.triage)
        assert written.read_text(encoding="utf-8") == "mine"
        app.action_export("json")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: isinstance(app.screen, PromptScreen) and "exists" in app.screen.question
        )
        await pilot.press("y", "enter")
        await wait_for(pilot, lambda: written.read_text(encoding="utf-8").startswith("{"))


def test_no_animations_unless_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tab switch moves at once (an animated underline re-draws the screen while a large input loads);
    TEXTUAL_ANIMATIONS chooses otherwise."""
    feed = FixtureFeed({}, {})
    monkeypatch.delenv("TEXTUAL_ANIMATIONS", raising=False)
    assert fixture_app(feed, tmp_path, []).animation_level == "none"
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "full")
    assert fixture_app(feed, tmp_path, []).animation_level != "none"


class _EndHeld(FixtureFeed):
    """Hands out the first incident, waits for ``release``, hands out the rest (``rest_added``), waits for
    ``end``, then ends the analysis: the end comes while the wake-up for the last findings is waiting."""

    def __init__(self) -> None:
        super().__init__({LOG_NAME: LOG_TEXT}, {LOG_NAME: sample_incidents()})
        self.rest_added = threading.Event()
        self.end = threading.Event()

    def read_incidents(self, load: Load) -> None:
        first, *rest = self.incidents.get(load.source.name, ())
        load.add(first)
        self.release.wait()
        for incident in rest:
            load.add(incident)
        self.rest_added.set()
        self.end.wait()
        load.incidents_done = True


async def test_done_is_shown_when_the_load_ends_not_at_the_next_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(triage, "POLL_INTERVAL", 3600.0)  # no timer tick within the test
    monkeypatch.setattr(triage, "WAKE_INTERVAL", 3600.0)  # news after the first wait an hour
    feed = _EndHeld()
    app = fixture_app(feed, tmp_path)
    try:
        async with app.run_test() as pilot:
            progress = app.triage.query_one("#progress", Static)
            await wait_for(pilot, lambda: len(app.triage.findings) == 1, "the first finding taken in")
            await wait_for(pilot, lambda: app.triage.loads[0].lines_done, "the text read")
            feed.release.set()
            await wait_for(pilot, feed.rest_added.is_set, "the other findings added")
            await quiet(pilot)  # their wake-up was handled: it waits (an hour)
            feed.end.set()
            await wait_for(pilot, lambda: ", done" in str(progress.content), "done in the status line")
            assert len(app.triage.findings) == 3  # the findings that came last are taken in with the end
    finally:
        feed.release.set()
        feed.end.set()


async def test_the_progress_timer_stops_once_everything_is_read(tmp_path: Path) -> None:
    """An idle view does not wake up: the screen's timer runs while an input is read and stops once every
    input is read and shown; opening another starts it again."""
    app = fixture_app(FixtureFeed({LOG_NAME: LOG_TEXT}, {LOG_NAME: sample_incidents()}), tmp_path)
    async with app.run_test() as pilot:
        await settle(pilot)
        assert not app.triage.polling
        app.triage.open_source(Source("more.log", data=LOG_TEXT.encode()))
        assert app.triage.polling
        await settle(pilot)
        assert not app.triage.polling and ", done" in str(app.triage.query_one("#progress", Static).content)
