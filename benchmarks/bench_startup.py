"""Benchmark: start-up of whole commands a user types, against ``python -c 'import click'``.

Run on demand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_startup.py [--runs 15]

Each command runs ``--runs`` times as a child process, the commands taking turns with the reference (so that
a machine whose load changes during the run weighs on all alike); its CPU time (user + system, from
``wait4``) and wall time are recorded, and the median of each is compared with the reference's:
the interpreter importing click, the command-line library alone. The goal (issue 16) is 1.5x the reference
or less, for the commands that do next to nothing (``--help``, ``explain``, ``analyze`` of a line of noise)
and for ``analyze`` of what users actually paste: one ``!analyze -v`` output, one short KD session, one
Driver Verifier banner (``samples/logs``, 64 to 172 lines each), which classify a crash and so import and
compile what a line of noise never needs.

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
GOAL = 1.5
#: Real-shaped inputs: what a user pastes or saves from one debugger session (samples/logs).
PASTES = ("analyze-c4-2000-modern.txt", "session-pool-type-haxm.log", "banner-only-log-mode.log")


def _measure(commands: dict[str, list[str]], runs: int) -> dict[str, tuple[float, float]]:
    """The median CPU and wall seconds of each command, the commands run in turn ``runs`` times."""
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    wall: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            start = time.perf_counter()
            child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
            _, _, usage = os.wait4(child.pid, 0)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(usage.ru_utime + usage.ru_stime)
    return {name: (statistics.median(cpu[name]), statistics.median(wall[name])) for name in commands}


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
        reference = "reference: python -c 'import click'"
        commands = {
            reference: [python, "-c", "import click"],
            "hvci-triage --help": [python, "-m", "cli", "--help"],
            "hvci-triage explain 0x2000": [python, "-m", "cli", "explain", "0x2000"],
            "hvci-triage analyze one-line.log": [python, "-m", "cli", "analyze", str(one_line)],
            **{
                f"analyze {name}": [python, "-m", "cli", "analyze", str(ROOT / "samples" / "logs" / name)]
                for name in PASTES
            },
        }
        measured = _measure(commands, runs)
        ref_cpu, ref_wall = measured.pop(reference)
        print(f"goal: cpu {GOAL}x the reference or less for every command")
        print(f"{reference:<44} cpu {ref_cpu * 1000:6.1f} ms          wall {ref_wall * 1000:6.1f} ms")
        for name, (cpu, wall) in measured.items():
            verdict = "" if cpu / ref_cpu <= GOAL else "  over the goal"
            print(
                f"{name:<44} cpu {cpu * 1000:6.1f} ms ({cpu / ref_cpu:4.2f}x)  "
                f"wall {wall * 1000:6.1f} ms ({wall / ref_wall:4.2f}x){verdict}"
            )


if __name__ == "__main__":
    main()
