"""The view's first frames have the interpreter to themselves: what the list's first frame does not show is
neither imported nor read before it (start-up time itself is measured by ``benchmarks/bench_tui.py``)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from rich.markdown import Markdown
from rich.text import Text
from textual.widgets import Static

from hvci.knowledge import kb
from tests.conftest import HANG_SECONDS, modules_loaded_after
from tests.tui.conftest import LOG_NAME, FixtureFeed, fixture_app, sample_incidents, wait_for
from tui import engine_feed
from tui.engine_feed import TEXT_HEAD_BYTES, PipelineFeed
from tui.loading import Load, Source
from tui.screens import triage
from tui.widgets import detail_pane
from tui.widgets.detail_pane import DetailPane
from tui.widgets.findings_table import FindingsTable

#: Screens, widgets and renderers the list's first frame does not draw; each is imported on first use.
NOT_BEFORE_THE_FIRST_FRAME = (
    "tui.screens.paste",
    "tui.screens.help",
    "tui.screens.prompt",
    "textual.widgets._text_area",
    "rich.markdown",
    "rich.syntax",
    "tomllib",
)


def test_the_view_imports_only_what_its_first_frame_draws() -> None:
    loaded = modules_loaded_after("import tui.app")
    assert "tui.screens.triage" in loaded  # the listing is of a real import
    assert sorted(loaded.intersection(NOT_BEFORE_THE_FIRST_FRAME)) == []


class _WaitSeen(threading.Event):
    """``Load.view_up`` that says when the reader starts waiting on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waiting.set()
        return super().wait(timeout)


def test_the_text_reader_stops_after_the_head_until_the_view_is_up() -> None:
    line = b"[VendorFilt] request 1 completed with status 0x00000000 in 12 us\n"
    data = line * (3 * TEXT_HEAD_BYTES // len(line))
    load = Load(Source.memory(data, "big.log"))
    load.view_up = _WaitSeen()
    reader = threading.Thread(target=PipelineFeed(options=None).read_lines, args=(load,))  # type: ignore[arg-type]
    reader.start()
    try:
        assert load.view_up.waiting.wait(HANG_SECONDS), "the reader never waited for the view"
        assert TEXT_HEAD_BYTES <= load.bytes_read < len(data)
        assert not load.lines_done
    finally:
        load.view_up.set()
        reader.join(HANG_SECONDS)
    assert load.lines_done and load.error is None
    assert len(load.lines) == data.count(b"\n")


def test_a_load_without_a_view_reads_on() -> None:
    assert Load(Source.memory(b"", "x.log")).view_up.is_set()


async def test_the_view_is_up_once_its_first_finding_is_drawn(tmp_path: Path) -> None:
    feed = FixtureFeed({LOG_NAME: "line\n"}, {LOG_NAME: sample_incidents()}, hold_after=1)
    app = fixture_app(feed, tmp_path)
    load = app.triage._pending_loads[0]
    assert not load.view_up.is_set()  # made before the view: waits for it
    try:
        async with app.run_test() as pilot:
            table = app.triage.query_one(FindingsTable)
            await wait_for(pilot, lambda: bool(table.listed), "the first finding listed")
            assert not load.incidents_done  # up for the finding, not for the end of the analysis
            await wait_for(pilot, load.view_up.is_set, "the view up")
            verdict = app.triage.query_one(DetailPane).query_one("#verdict", Static)
            title = table.listed[0].title
            await wait_for(pilot, lambda: title in str(verdict.render()), "the first finding's detail")
            later = app.triage.open_source(Source.memory(b"x\n", "later.log"))
            assert later.view_up.is_set()  # opened once the view is up: nothing to wait for
    finally:
        feed.release.set()


async def test_a_remediation_shown_before_its_renderers_load_is_rendered_once_they_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = threading.Event()  # as if nothing had loaded the renderers in this process yet
    go = threading.Event()
    monkeypatch.setattr(detail_pane, "RENDERERS_LOADED", loaded)

    def warm_up() -> None:
        go.wait(HANG_SECONDS)
        loaded.set()

    monkeypatch.setattr(triage, "warm_up_detail", warm_up)
    app = fixture_app(FixtureFeed({LOG_NAME: "line\n"}, {LOG_NAME: sample_incidents()}), tmp_path)
    try:
        async with app.run_test() as pilot:
            detail = app.triage.query_one(DetailPane)
            await wait_for(pilot, lambda: bool(detail.query("#fix")), "a finding's detail")
            fix = detail.query_one("#fix", Static)
            await wait_for(pilot, lambda: isinstance(fix.content, Text) and bool(str(fix.content)))
            what = kb.load().categories[sample_incidents()[0].category or ""].remediation.what
            assert what[:40] in str(fix.content)  # the plain text meanwhile, not nothing
            go.set()
            await wait_for(pilot, lambda: isinstance(fix.content, Markdown), "the remediation rendered")
    finally:
        go.set()


async def test_a_finding_shown_while_the_app_closes_is_dropped_quietly(tmp_path: Path) -> None:
    app = fixture_app(FixtureFeed({LOG_NAME: "line\n"}, {}), tmp_path)
    async with app.run_test():
        detail = app.triage.query_one(DetailPane)
        assert not detail.query("#fix")  # no finding yet: the pane is its message alone
        detail._closing = True  # as while the app exits: nothing mounts any more
        detail.show(sample_incidents()[0], lambda path, number: None)
        assert not detail.query("#fix")
        detail._closing = False


async def test_focusing_the_detail_pane_restyles_the_pane_not_its_sections(tmp_path: Path) -> None:
    app = fixture_app(FixtureFeed({LOG_NAME: "line\n"}, {LOG_NAME: sample_incidents()}), tmp_path)
    async with app.run_test() as pilot:
        detail = app.triage.query_one(DetailPane)
        await wait_for(pilot, lambda: bool(detail.query("#fix")), "a finding's detail")
        await pilot.press("v")
        restyled: list[object] = []
        update_nodes = app.stylesheet.update_nodes

        def recording(nodes, animate=False):  # type: ignore[no-untyped-def]
            nodes = list(nodes)
            restyled.extend(nodes)
            update_nodes(nodes, animate=animate)

        app.stylesheet.update_nodes = recording  # type: ignore[method-assign]
        await pilot.press("d")
        assert detail.has_focus and detail in restyled
        assert not set(restyled).intersection(detail.walk_children())  # a tab switch, not 25 sections


async def test_what_the_readers_found_before_the_mount_is_in_the_first_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    added = threading.Event()

    class Feed(FixtureFeed):
        def read_incidents(self, load: Load) -> None:
            load.add(sample_incidents()[0])
            added.set()
            super().read_incidents(load)

    listed_at_mount: list[int] = []
    on_mount = triage.TriageScreen.on_mount

    def mounting(screen: triage.TriageScreen) -> None:
        assert added.wait(HANG_SECONDS), "the inputs are read only once the view is mounted"
        on_mount(screen)
        listed_at_mount.append(screen.query_one(FindingsTable).row_count)

    monkeypatch.setattr(triage.TriageScreen, "on_mount", mounting)
    app = fixture_app(Feed({LOG_NAME: "line\n"}, {LOG_NAME: sample_incidents()[1:]}), tmp_path)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: bool(listed_at_mount), "the mount")
        assert listed_at_mount[0] >= 1  # listed before the first layout and frame


async def test_the_first_frame_is_laid_out_as_the_window_wants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Side by side in a wide window from the first frame on, whether or not a finding is listed at the
    mount: the first resize (after the first frame) changes no class, which would restyle and lay out the
    whole screen again before the first finding is drawn."""
    classes_at_resize: list[frozenset[str]] = []
    on_resize = triage.TriageScreen.on_resize

    def resizing(screen: triage.TriageScreen) -> None:
        classes_at_resize.append(frozenset(screen.classes))
        on_resize(screen)

    monkeypatch.setattr(triage.TriageScreen, "on_resize", resizing)
    app = fixture_app(FixtureFeed({LOG_NAME: "line\n"}, {LOG_NAME: []}), tmp_path)  # nothing found yet
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: bool(classes_at_resize), "the first resize")
        assert "-wide" in classes_at_resize[0]


class _Running:
    """A child that runs until its stop watcher ends it."""

    stdout = None
    returncode = None

    def poll(self) -> None:
        return None

    def terminate(self) -> None:
        pass


def test_a_large_inputs_children_start_before_any_thread_of_theirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads_seen: list[int] = []

    def start(request: object) -> _Running:
        threads_seen.append(threading.active_count())  # a fork needs this process to have no other thread
        return _Running()

    monkeypatch.setattr(engine_feed, "start", start)
    path = tmp_path / "big.log"
    path.write_bytes(b"line\n" * (engine_feed.PROCESS_THRESHOLD // 5 + 1))
    load = Load(Source.file(path))
    before = threading.active_count()
    try:
        PipelineFeed(options=None).begin(load)  # type: ignore[arg-type]
        assert threads_seen == [before, before]  # the analysis and the text child
    finally:
        load.stop.set()  # their watchers end
