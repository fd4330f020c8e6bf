"""The collector is off during start-up only: a command runs with it on, as a long analysis needs.

What start-up saves is measured by ``benchmarks/bench_startup.py``; these tests guard that the collector
comes back (a process analysing hundreds of megabytes must collect its cycles) and that an in-process
caller's collector is left alone.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

from cli.commands import load
from tests.conftest import HANG_SECONDS

ROOT = Path(__file__).resolve().parents[2]

_REPORT_AT_EXIT = (
    "import atexit, gc, sys\n"
    "atexit.register(lambda: print('gc', gc.isenabled(), gc.get_freeze_count() > 0))\n"
    "sys.argv = ['hvci-triage', *{args!r}]\n"
    "from cli import entry\n"
    "entry()\n"
)


def _gc_state_at_exit(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _REPORT_AT_EXIT.format(args=list(args))],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=HANG_SECONDS,
        check=False,
    )
    return done.stdout.strip().splitlines()[-1]


def test_a_command_runs_with_the_collector_on_and_start_up_frozen(tmp_path: Path) -> None:
    log = tmp_path / "one-line.log"
    log.write_text("nothing to see here\n", encoding="utf-8")
    assert _gc_state_at_exit("analyze", str(log)) == "gc True True"
    assert _gc_state_at_exit("explain", "0x2000") == "gc True True"


def test_help_never_turns_the_collector_on() -> None:
    """The check above can fail: without a command loaded, the collector stays as start-up left it."""
    assert _gc_state_at_exit("--help") == "gc False False"


def test_loading_a_command_in_process_leaves_the_collector_alone() -> None:
    frozen = gc.get_freeze_count()
    assert gc.isenabled()
    load("explain")
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen
