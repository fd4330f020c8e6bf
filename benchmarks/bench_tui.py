"""On-demand benchmark of the triage view: time to the first finding and to fully loaded.

Generates KD-style logs of 1 MB and 100 MB (noise with a pool-type crash every ~7 MB, plus one near the
start), opens each in the headless app (``App.run_test``), and prints the times, with the batch pipeline
(``hvci.logs.pipeline.analyze_inputs``) on the same file as the reference. While the file loads it also
measures how long a key takes to have its effect (switching the Detail/Evidence tabs).

    .venv/bin/python benchmarks/bench_tui.py [--sizes 1,100] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from textual import events  # noqa: E402
from textual.widgets import TabbedContent  # noqa: E402

from hvci.logs.pipeline import analyze_inputs  # noqa: E402
from parsers.stream import open_input  # noqa: E402
from tui.app import make_app  # noqa: E402
from tui.loading import Source  # noqa: E402
from tui.widgets.findings_table import FindingsTable  # noqa: E402

CRASH = (ROOT / "samples" / "logs" / "session-pool-type-haxm.log").read_text(encoding="utf-8")
NOISE = "".join(f"[VendorFilt] request {n} completed with status 0x00000000 in 12 us\n" for n in range(200))


def generate(path: Path, size: int, every: int = 500) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        written = block = 0
        while written < size:
            text = CRASH if block % every == 3 else NOISE
            handle.write(text)
            written += len(text)
            block += 1


async def _key_latency(app: object, tabs: TabbedContent) -> float:
    key, tab = ("v", "evidence-tab") if tabs.active == "detail-tab" else ("d", "detail-tab")
    driver = app._driver  # type: ignore[attr-defined]
    event = events.Key(key, key)
    event.set_sender(app)  # type: ignore[arg-type]
    start = time.monotonic()
    driver.send_message(event)
    while tabs.active != tab:
        await asyncio.sleep(0.002)
    return time.monotonic() - start


async def measure(path: Path, press_keys: bool) -> tuple[float, float, list[float]]:
    app = make_app([Source.file(path)], export_dir=path.parent, keymap_file=path.parent / "none.toml")
    first = full = 0.0
    latencies: list[float] = []
    start = time.monotonic()  # loading starts when the app mounts, inside run_test
    async with app.run_test(size=(160, 48)):
        table = app.triage.query_one(FindingsTable)
        tabs = app.triage.query_one(TabbedContent)
        while not (app.triage.all_loaded and table.listed):
            if not first and table.listed:
                first = time.monotonic() - start
            if press_keys:
                latencies.append(await _key_latency(app, tabs))
                await asyncio.sleep(0.2)
            else:
                await asyncio.sleep(0.005)
        full = time.monotonic() - start
        first = first or full
        app.exit()
    return first, full, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,100", help="log sizes in MB, comma-separated")
    parser.add_argument("--keep", type=Path, help="write the generated logs here instead of a temp folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        print(
            " ".join(f"{h:>8}" for h in ("size", "batch", "first", "loaded", "loaded*", "key med", "key max"))
        )
        for size_mb in (float(s) for s in args.sizes.split(",")):
            path = folder / f"bench-{size_mb:g}mb.log"
            generate(path, int(size_mb * 1_000_000))
            start = time.monotonic()
            analyze_inputs([open_input(path)])
            batch = time.monotonic() - start
            first, full, _ = asyncio.run(measure(path, press_keys=False))
            _, full_pressed, latencies = asyncio.run(measure(path, press_keys=True))
            median = statistics.median(latencies) if latencies else 0.0
            worst = max(latencies) if latencies else 0.0
            print(
                f"{size_mb:>5g}MB {batch:>7.2f}s {first:>7.2f}s {full:>7.2f}s {full_pressed:>7.2f}s "
                f"{median:>7.3f}s {worst:>7.3f}s"
            )
        print("first: first finding listed; loaded: findings and text complete; loaded*: same while a key")
        print("is pressed every 0.2 s; key: time from key press to its effect (tab switch) while loading.")


if __name__ == "__main__":
    main()
