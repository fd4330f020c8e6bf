"""A 100 MB log loads in the background while the keyboard keeps answering."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual import events
from textual.widgets import TabbedContent

from tui.app import TriageApp, make_app
from tui.loading import Source
from tui.widgets.evidence_log import EvidenceLog
from tui.widgets.findings_table import FindingsTable

ROOT = Path(__file__).resolve().parents[2]
CRASH = (ROOT / "samples" / "logs" / "session-pool-type-haxm.log").read_text(encoding="utf-8")
NOISE = "".join(f"[VendorFilt] request {n} completed with status 0x00000000 in 12 us\n" for n in range(200))

#: A key press must be handled within this many seconds while the file loads (generous for slow CI).
KEY_BOUND = 1.0


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


async def answer_time(app: TriageApp, key: str, done: Callable[[], bool], limit: float = 30.0) -> float:
    """Seconds from a key reaching the app (as the terminal driver delivers it) to its visible effect.

    ``Pilot.press`` is not used for timing: it waits until the whole process is idle, which a loading
    app never is."""
    driver = app._driver
    assert driver is not None
    event = events.Key(key, key if len(key) == 1 else None)
    event.set_sender(app)
    start = time.monotonic()
    driver.send_message(event)
    while not done():
        assert time.monotonic() - start < limit, f"no answer to {key!r}"
        await asyncio.sleep(0.005)
    return time.monotonic() - start


@pytest.mark.slow
async def test_keys_answer_while_100_mb_loads(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    crashes = generate_log(path, 100_000_000)
    app = make_app([Source.file(path)], export_dir=tmp_path, keymap_file=tmp_path / "none.toml")
    latencies: list[float] = []
    first_finding_while_loading = False
    async with app.run_test(size=(120, 40)):
        tabs = app.triage.query_one(TabbedContent)
        start = time.monotonic()
        while not app.triage.all_loaded:
            assert time.monotonic() - start < 120, "loading took too long"
            key, tab = ("v", "evidence-tab") if tabs.active == "detail-tab" else ("d", "detail-tab")
            latencies.append(await answer_time(app, key, lambda tab=tab: tabs.active == tab))  # type: ignore[misc]
            if app.triage.query_one(FindingsTable).listed and not app.triage.all_loaded:
                first_finding_while_loading = True
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.3)
        table = app.triage.query_one(FindingsTable)
        (finding,) = table.listed  # the same crash repeated: one finding
        assert table.count_of(finding) == crashes
        assert app.triage.query_one(EvidenceLog).line_count > 1_000_000
    assert first_finding_while_loading, "the first finding must show before the file is fully read"
    assert len(latencies) >= 10
    assert max(latencies) < KEY_BOUND, f"slowest key took {max(latencies):.2f}s"
