"""Memory and CPU against the number of incidents: dense verifier-banner logs (issue 10 item 13).

A driver that trips Driver Verifier on every load fills a lab log with 5-line code-integrity banners: 63 MB
of them are 277,534 incidents, which took 1.2 GB and 103 s of CPU when the batch kept every incident until
the end. The logs here are made from the real banners of ``samples/logs/banner-only-log-mode.log``
(:mod:`tests.hvci.dense_banners`, generated, never committed), at 20k, 80k and 280k incidents by default.

For each size and each mode (``--format jsonl``, ``--format json``, ``--format jsonl --db``, and two copies of
the log as a folder with ``--jobs 2``) it runs the whole command and prints the peak resident set (of the
command and of any worker, from ``wait4``), the CPU seconds (user + system, workers included) and the wall
time; then ``wc -l`` and ``grep -c`` on the same file as references measured in the same run (what reading
the bytes costs at the least). Memory should stay flat from one size to the next; CPU should grow linearly.

Run: ``.venv/bin/python benchmarks/bench_incidents.py`` (quick look: ``--sizes 20000 80000``; add
``--modes jsonl`` to run one mode). A busy machine changes the wall times, not the memory or CPU columns.
The references' peak RSS is that of the forked benchmark process before it runs the tool (about 14 MB).

Measured on the shared 2-core machine (issue 10 item 13; before = the batch that kept every incident):

=====================  ==========  ======================  ======================
mode                   incidents   before: RSS, CPU        after: RSS, CPU
=====================  ==========  ======================  ======================
analyze (1 line)       0           25 MB                   25 MB, 0.2 s
jsonl                  20,000      100 MB, 5.1 s           52 MB, 3.5 s
jsonl                  280,000     842 MB, 88 s            74 MB, 67 s
json                   80,000      313 MB, 31 s            59 MB, 23 s
json                   280,000                             74 MB, 90 s
jsonl --db             80,000      316 MB, 34 s            63 MB, 22 s
jsonl --db             280,000                             78 MB, 90 s
two logs, --jobs 2     2 x 20,000  109 MB, 15 s            49 MB, 12 s
two logs, --jobs 2     2 x 280,000                         58 MB, 176 s
=====================  ==========  ======================  ======================

``wc -l`` and ``grep -c`` read the same files in 0.00-0.01 s of CPU: the cost is the analysis (about 4,000
incidents per CPU second), not the reading.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hvci.dense_banners import write_dense_log  # noqa: E402 - after the path set-up above

#: No time limit: on a busy machine a slow unit must not become a diagnostic (memory and CPU are measured).
TOOL = [sys.executable, "-m", "cli", "analyze", "-q", "--timeout", "0", "-o", os.devnull]

#: Mode name -> the arguments it adds, and whether it reads a folder of two copies.
MODES: dict[str, tuple[tuple[str, ...], bool]] = {
    "jsonl": (("--format", "jsonl"), False),
    "json": (("--format", "json"), False),
    "db": (("--format", "jsonl", "--db", "{db}"), False),
    "jobs2": (("--format", "jsonl", "--jobs", "2"), True),
}


def measured(command: list[str]) -> tuple[float, float, float]:
    """(peak RSS in MB, CPU seconds, wall seconds) of one command and the processes it waited for."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    assert child.stderr is not None
    error = child.stderr.read().decode(errors="replace")
    child.stderr.close()
    if os.waitstatus_to_exitcode(status) not in (0, 1, 3):
        raise SystemExit(f"{' '.join(command)} failed: {error[-500:]}")
    return usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, wall


def line(label: str, incidents: int, megabytes: float, figures: tuple[float, float, float]) -> None:
    rss, cpu, wall = figures
    print(
        f"{label:<22} {incidents:>8,} incidents {megabytes:7.1f} MB   peak RSS {rss:7.1f} MB   "
        f"cpu {cpu:7.2f} s   wall {wall:7.2f} s   {incidents / max(cpu, 1e-9):9,.0f} incidents/cpu-s"
    )


def run_size(incidents: int, modes: list[str], work: Path) -> None:
    folder = work / f"dense-{incidents}"
    folder.mkdir()
    log = write_dense_log(folder / "banners.log", incidents)
    megabytes = log.stat().st_size / 1e6
    pair = work / f"pair-{incidents}"
    for name in modes:
        args, two = MODES[name]
        if two and not pair.exists():
            pair.mkdir()
            for copy in ("a", "b"):
                shutil.copyfile(log, pair / f"{copy}.log")
        filled = [a.replace("{db}", str(work / f"{name}-{incidents}.db")) for a in args]
        target = pair if two else log
        count = incidents * (2 if two else 1)
        line(f"analyze {name}", count, megabytes * (2 if two else 1), measured([*TOOL, *filled, str(target)]))
    line("wc -l (reference)", incidents, megabytes, measured(["wc", "-l", str(log)]))
    line("grep -c (reference)", incidents, megabytes, measured(["grep", "-c", "Verifier Detected", str(log)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 80_000, 280_000])
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES), default=list(MODES))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hvci-bench-incidents-"))
    try:
        baseline = work / "one.log"
        baseline.write_text("nothing to see here\n", encoding="utf-8")
        line("analyze (1 line)", 0, 0.0, measured([*TOOL, str(baseline)]))
        for size in args.sizes:
            run_size(size, args.modes, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
