"""On-demand benchmark of the triage view against batch ``analyze`` of the same file, in the same run.

Generates KD-style logs (noise with a pool-type crash every ~7 MB, plus one near the start), then for each:

- the reference: the whole ``hvci-triage analyze --format jsonl -q FILE -o /dev/null`` command, wall and
  CPU time;
- the view, headless (``App.run_test``): time to the first finding listed, time until the findings and the
  text are complete, and the ratio of that to the reference, wall and CPU (the view's process and its
  analysis child; issue 16's goals: first < 0.5 s, fully loaded <= 2x batch);
- the same load with a key pressed every 0.2 s: how long each key takes to have its effect (switching the
  Detail/Evidence tabs), median and worst (goal: worst < 100 ms), and the load time meanwhile;
- what a user sees who types ``hvci-triage FILE``: the whole command in a 120x32 pseudo-terminal, from the
  command's start to the frame that draws the first finding row and to the one with ``done`` in the
  status line (interpreter start-up and imports included), several runs. The frames are read from the
  terminal as the command writes them. (This was a tmux terminal whose screen was captured every 10 ms:
  a ``tmux capture-pane`` process every 10 ms took a share of the 2 CPUs from the command it measured.)

The headless figures leave out the interpreter's start-up and the imports (~0.3 s of the whole command,
which its analysis child overlaps); the whole command is what a user gets. ``--busy`` runs everything,
the reference included, with one CPU-bound loop beside it (issue 16's loaded machine).

    .venv/bin/python benchmarks/bench_tui.py [--sizes 1,100] [--runs 3] [--busy] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import pty
import resource
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from textual import events  # noqa: E402
from textual.widgets import TabbedContent  # noqa: E402

from tui.app import make_app  # noqa: E402
from tui.labels import category_name  # noqa: E402
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


def cpu_seconds() -> float:
    """CPU time of this process and of its children that ended (the analysis child, the batch command)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


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


def batch_seconds(path: Path) -> tuple[float, float]:
    """Wall and CPU time of the whole batch command on ``path`` (interpreter start-up and output included)."""
    command = [sys.executable, "-m", "cli", "analyze", "--format", "jsonl", "-q", str(path), "-o", os.devnull]
    start, cpu = time.monotonic(), cpu_seconds()
    subprocess.run(command, cwd=ROOT, check=False, stdout=subprocess.DEVNULL)
    return time.monotonic() - start, cpu_seconds() - cpu


#: The Category column of the generated logs' crashes, as the findings list shows it.
FIRST_ROW = category_name("execute-pool-type").encode()


def command_seconds(path: Path, root: Path = ROOT, timeout: float = 300.0) -> tuple[float, float]:
    """Seconds from the start of ``hvci-triage PATH`` (run from ``root``) in a 120x32 pseudo-terminal to
    the first frame with a finding row (its category) and to the first with ``, done`` in the status line,
    read from the terminal as the command writes them; then the command is quit (``Q``)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 32, 120, 0, 0))
    environment = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "32"}
    start = time.monotonic()
    command = subprocess.Popen(
        [sys.executable, "-m", "cli", str(path)],
        cwd=root,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=environment,
        start_new_session=True,
    )
    os.close(slave)
    written, first, full = b"", 0.0, 0.0
    try:
        while not full and select.select([master], [], [], timeout)[0]:
            data = os.read(master, 1 << 16)
            now = time.monotonic() - start
            written += data
            first = first or (now if FIRST_ROW in written else 0.0)
            full = now if b", done" in written else 0.0
        os.write(master, b"Q")
        while command.poll() is None and select.select([master], [], [], 1.0)[0]:
            os.read(master, 1 << 16)  # the last frames: a terminal reads all the command writes
    except OSError:  # the command ended and closed the terminal
        pass
    finally:
        if command.poll() is None:
            command.kill()
        command.wait()
        os.close(master)
    if not full:
        raise RuntimeError(f"hvci-triage {path} did not finish loading within {timeout:g} s")
    return first or full, full


@contextlib.contextmanager
def busy_loop(on: bool) -> Iterator[None]:
    """One CPU-bound process beside the measurements (when ``on``), ended by its own id afterwards."""
    loop = subprocess.Popen(["sh", "-c", "while :; do :; done"]) if on else None
    try:
        yield
    finally:
        if loop is not None:
            loop.kill()
            loop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,100", help="log sizes in MB, comma-separated")
    parser.add_argument("--keep", type=Path, help="write the generated logs here instead of a temp folder")
    parser.add_argument("--runs", type=int, default=3, help="runs of the whole command")
    parser.add_argument("--busy", action="store_true", help="with one CPU-bound loop beside everything")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, busy_loop(args.busy):
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        print(
            " ".join(
                f"{h:>8}"
                for h in ("size", "batch", "first", "loaded", "ratio", "cpu", "cpu ratio", "loaded*")
                + ("key med", "key max")
            )
        )
        for size_mb in (float(s) for s in args.sizes.split(",")):
            path = folder / f"bench-{size_mb:g}mb.log"
            generate(path, int(size_mb * 1_000_000))
            batch, batch_cpu = batch_seconds(path)
            cpu = cpu_seconds()
            first, full, _ = asyncio.run(measure(path, press_keys=False))
            cpu = cpu_seconds() - cpu
            _, full_pressed, latencies = asyncio.run(measure(path, press_keys=True))
            median = statistics.median(latencies) if latencies else 0.0
            worst = max(latencies) if latencies else 0.0
            print(
                f"{size_mb:>5g}MB {batch:>7.2f}s {first:>7.2f}s {full:>7.2f}s {full / batch:>7.2f}x "
                f"{cpu:>7.2f}s {cpu / batch_cpu:>8.2f}x {full_pressed:>7.2f}s {median * 1000:>6.0f}ms "
                f"{worst * 1000:>6.0f}ms"
            )
            if args.runs > 0:
                runs = [command_seconds(path) for _ in range(args.runs)]
                firsts = ", ".join(f"{f:.2f}" for f, _ in runs)
                loaded = statistics.median(full for _, full in runs)
                print(
                    f"{size_mb:>5g}MB whole command ({args.runs} runs): first finding on screen "
                    f"{firsts} s; loaded median {loaded:.2f} s = {loaded / batch:.2f}x batch"
                )
        print("batch: the whole analyze command (reference, same run); first: first finding listed;")
        print("loaded: findings and text complete, and its ratio to batch; cpu: CPU time of the view and its")
        print("analysis child until then (the app's start-up included), and its ratio to batch's CPU;")
        print("loaded*: same while a key is pressed every 0.2 s; key: time from key press to its effect (tab")
        print("switch) while loading. whole command: hvci-triage FILE in a 120x32 pseudo-terminal, from the")
        print("command's start (interpreter start-up and imports included) to the frames it writes.")
        if args.busy:
            print("all of it with one CPU-bound loop running beside it (--busy).")
        print("goals (issue 16): first < 0.5 s, loaded <= 2x batch, key max < 100 ms.")


if __name__ == "__main__":
    main()
