"""A 100 MB log loads in the background while the keyboard keeps answering."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from textual import events
from textual.app import App, ComposeResult
from textual.widgets import TabbedContent

from hvci.logs.pipeline import AnalyzeOptions
from tests.conftest import HANG_SECONDS
from tests.tui.conftest import quiet, settle
from tui.app import TriageApp, make_app
from tui.engine_feed import PipelineFeed
from tui.linestore import LineStore
from tui.loading import Load, Source
from tui.widgets.evidence_log import EvidenceLog
from tui.widgets.findings_table import FindingsTable

ROOT = Path(__file__).resolve().parents[2]
CRASH = (ROOT / "samples" / "logs" / "session-pool-type-haxm.log").read_text(encoding="utf-8")
NOISE = "".join(f"[VendorFilt] request {n} completed with status 0x00000000 in 12 us\n" for n in range(200))


def generate_log(path: Path, size: int, every: int = 500) -> int:
    """A KD-style log of about ``size`` bytes: noise with a pool-type crash every ``every`` blocks; returns
    how many crashes it holds."""
    crashes = 0
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        written = block = 0
        while written < size:
            text = CRASH if block % every == 0 else NOISE
            crashes += text is CRASH
            handle.write(text)
            written += len(text)
            block += 1
    return crashes


async def answer(app: TriageApp, key: str, tab: str) -> None:
    """Deliver a key as the terminal driver does and wait until the tab it asks for is shown.

    ``Pilot.press`` is not used: it waits until the whole process is idle, which a loading app never is.
    How long the answer takes is measured by ``benchmarks/bench_tui.py``, not here: a test on a loaded
    machine cannot tell slow code from a busy CPU."""
    tabs = app.triage.query_one(TabbedContent)
    shown = asyncio.Event()
    app.triage.watch(tabs, "active", lambda active: shown.set() if active == tab else None, init=False)
    driver = app._driver
    assert driver is not None
    event = events.Key(key, key if len(key) == 1 else None)
    event.set_sender(app)
    driver.send_message(event)
    await asyncio.wait_for(shown.wait(), HANG_SECONDS)


#: Keys pressed at most while the input loads (then the test waits for the load to end, however long).
KEYS = 50


class _HeldFeed(PipelineFeed):
    """The product's feed, with the reader of the evidence text held back until ``release``: the input is
    certainly still loading when the first key is answered, however fast or busy the machine."""

    def __init__(self, options: AnalyzeOptions, release: threading.Event) -> None:
        super().__init__(options)
        self.release = release

    def read_lines(self, load: Load) -> None:
        self.release.wait()
        super().read_lines(load)


@pytest.mark.slow
async def test_keys_answer_while_100_mb_loads(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    crashes = generate_log(path, 100_000_000)
    release = threading.Event()
    app = make_app(
        [Source.file(path)],
        export_dir=tmp_path,
        keymap_file=tmp_path / "none.toml",
        feed_factory=lambda options: _HeldFeed(options, release),
    )
    answered_loading = 0
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            tabs = app.triage.query_one(TabbedContent)
            for _ in range(KEYS):
                if app.triage.all_loaded:
                    break
                key, tab = ("v", "evidence-tab") if tabs.active == "detail-tab" else ("d", "detail-tab")
                await answer(app, key, tab)
                answered_loading += not app.triage.all_loaded
                release.set()  # the text loads now, while the keys go on
                # A user's pace between keys (a key per frame would be no user); nothing asserted below
                # depends on how many keys fit in the load.
                await asyncio.sleep(0.2)
            await settle(pilot)  # the view takes in the last findings
            table = app.triage.query_one(FindingsTable)
            (finding,) = table.listed  # the same crash repeated: one finding
            assert table.count_of(finding) == crashes
            assert app.triage.query_one(EvidenceLog).line_count > 1_000_000
    finally:
        release.set()
    assert answered_loading >= 1, "keys are answered while the file loads"


class _LogApp(App[None]):
    def compose(self) -> ComposeResult:
        yield EvidenceLog()


async def test_lines_arriving_out_of_view_repaint_nothing() -> None:
    """While a large input loads, the evidence view grows ten times a second: the scroll area grows, but
    the lines on screen are repainted only when new ones come into view (or the line numbers widen), and
    the screen is laid out again only when a scrollbar appears."""
    store = LineStore()
    app = _LogApp()
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(EvidenceLog)
        log.show_lines(store, "big.log")
        await pilot.pause()
        repaints: list[object] = []
        layouts: list[object] = []
        real_refresh = log.refresh

        def spy(*args: object, layout: bool = False, **kwargs: object) -> object:
            (layouts if layout else repaints).append(args)
            return real_refresh(*args, layout=layout, **kwargs)

        log.refresh = spy  # type: ignore[method-assign]

        def add(count: int) -> tuple[int, int]:
            repaints.clear()
            layouts.clear()
            store.append_chunk("".join(f"line {n}\n" for n in range(count)))
            log.lines_added()
            return len(repaints), len(layouts)

        assert add(10) == (1, 0)  # the first lines: in view
        assert add(190)[0] == 1  # 200 lines, from line 11 on screen (the scrollbar appears: a layout)
        assert add(100) == (0, 0)  # 300 lines, all below the screen
        assert log.virtual_size.height == 300 and log.max_scroll_y > 0
        assert add(1000) == (1, 0)  # 1,300 lines: the line numbers are one digit wider


async def test_the_scroll_area_widens_as_wider_lines_are_drawn() -> None:
    """A stored chunk is decoded when its lines are drawn; the longest line known grows as the view is
    scrolled through the text, and the scroll area with it (also once the input is read, when the screen no
    longer asks for new lines)."""
    store = LineStore()
    store.append_chunk("".join(f"short {n}\n" for n in range(100)))
    store.append_chunk("wide " + "x" * 300 + "\n")
    app = _LogApp()
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(EvidenceLog)
        log.show_lines(store, "big.log")
        await quiet(pilot)
        assert log.virtual_size.width < 80
        log.jump_to(101)
        await quiet(pilot)
        assert log.virtual_size.width > 300
