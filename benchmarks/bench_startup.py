"""Benchmark: start-up of whole commands a user types, against ``python -c 'import click'``.

Run on demand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_startup.py [--runs 15]

Each command runs ``--runs`` times as a child process; its CPU time (user + system, from ``wait4``) and
wall time are recorded, and the median of each is compared with the reference measured in the same run:
the interpreter importing click, the command-line library alone. The goal is 1.5x the reference or less.

Our packages are byte-compiled first (``__pycache__``, ignored by git), as any installed or once-run copy
is: click comes compiled from its wheel, and with ``PYTHONDONTWRITEBYTECODE`` set (as in some CI and agent
environments) every child would otherwise compile our sources again, about 90 ms that no user pays.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cli", "hvci", "parsers", "symbols", "tui")


def _measure(argv: list[str], runs: int) -> tuple[float, float]:
    cpu, wall = [], []
    for _ in range(runs):
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        _, _, usage = os.wait4(child.pid, 0)
        wall.append(time.perf_counter() - start)
        cpu.append(usage.ru_utime + usage.ru_stime)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    python = sys.executable
    for package in PACKAGES:
        compileall.compile_dir(ROOT / package, quiet=1)
    with tempfile.TemporaryDirectory() as folder:
        one_line = Path(folder) / "one-line.log"
        one_line.write_text("nothing to see here\n", encoding="utf-8")
        commands = {
            "hvci-triage --help": [python, "-m", "cli", "--help"],
            "hvci-triage explain 0x2000": [python, "-m", "cli", "explain", "0x2000"],
            "hvci-triage analyze one-line.log": [python, "-m", "cli", "analyze", str(one_line)],
        }
        ref_cpu, ref_wall = _measure([python, "-c", "import click"], runs)
        reference = "reference: python -c 'import click'"
        print(f"{reference:<34} cpu {ref_cpu * 1000:6.1f} ms          wall {ref_wall * 1000:6.1f} ms")
        for name, argv in commands.items():
            cpu, wall = _measure(argv, runs)
            print(
                f"{name:<34} cpu {cpu * 1000:6.1f} ms ({cpu / ref_cpu:4.2f}x)  "
                f"wall {wall * 1000:6.1f} ms ({wall / ref_wall:4.2f}x)"
            )


if __name__ == "__main__":
    main()
