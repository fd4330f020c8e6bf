"""Native readers run isolated: a PDB that makes symbolic fault costs its line information only."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from symbols import isolate
from symbols.pdb import PdbFile

ROOT = Path(__file__).resolve().parents[2]
PDB = ROOT / "samples" / "drivers" / "build" / "x86_api_misuse.pdb"


def _crashing_pdb() -> bytes:
    """One byte of the TPI stream changed (0x00 -> 0xFF at 0x81ad): symbolic's make_symcache faults on it."""
    data = bytearray(PDB.read_bytes())
    assert data[0x81AD] == 0x00
    data[0x81AD] = 0xFF
    return bytes(data)


def segfault(_: bytes) -> bytes:
    """A stand-in for a native reader that faults."""
    ctypes.string_at(0)
    return b""


def never_ends(_: bytes) -> bytes:
    signal.pause()
    return b""


def test_the_mutated_pdb_really_crashes_symbolic_in_process() -> None:
    """The reproducer: without isolation the interpreter dies by a signal (so the isolation is needed)."""
    code = (
        "import sys, io\nfrom symbolic.debuginfo import Archive\n"
        "data = sys.stdin.buffer.read()\n"
        "obj = next(iter(Archive.from_bytes(data).iter_objects()))\n"
        "obj.make_symcache().dump_into(io.BytesIO())\n"
    )
    data = _crashing_pdb()
    done = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, check=False)
    assert done.returncode < 0


def test_a_crashing_pdb_loads_from_our_own_reader_with_a_note() -> None:
    pdb = PdbFile(str(PDB), _crashing_pdb())
    assert any("crashed" in note for note in pdb.notes)
    symbol = pdb.lookup(0x1000)
    assert symbol is not None and symbol.function == "bad_pool_nonpaged"


@pytest.mark.parametrize("runner", ["_in_fork", "_in_subprocess"])
def test_both_isolation_paths_turn_a_crash_into_a_failure(runner: str) -> None:
    if runner == "_in_fork" and not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    with pytest.raises(isolate.IsolatedFailure, match="crashed"):
        getattr(isolate, runner)("symcache", b"P" + _crashing_pdb(), 60.0)


@pytest.mark.parametrize("runner", ["_in_fork", "_in_subprocess"])
def test_both_isolation_paths_answer_for_a_good_pdb(runner: str) -> None:
    if runner == "_in_fork" and not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    frame = getattr(isolate, runner)("symcache", b"P" + PDB.read_bytes(), 60.0)
    assert frame[:1] == b"\x00" and b"\n" in frame


def test_a_refused_input_comes_back_as_value_error() -> None:
    with pytest.raises(ValueError, match="no object|not a PDB|Error"):
        isolate.run_isolated("symcache", b"Pnot a pdb at all")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the fork path only")
def test_a_faulting_task_and_a_hanging_task_are_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(isolate.TASKS, "segfault", f"{__name__}:segfault")
    monkeypatch.setitem(isolate.TASKS, "hang", f"{__name__}:never_ends")
    with pytest.raises(isolate.IsolatedFailure, match="SIGSEGV"):
        isolate._in_fork("segfault", b"", 60.0)
    with pytest.raises(isolate.IsolatedFailure, match="stopped"):
        isolate._in_fork("hang", b"", 0.2)


def own_pid(_: bytes) -> bytes:
    return str(os.getpid()).encode()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the fork path only")
def test_one_forked_child_reads_input_after_input_and_a_crash_costs_only_its_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Forking per input cost more than reading a PDB: the child stays; after a crash or a deadline the
    next input gets a new child and its answer."""
    monkeypatch.setitem(isolate.TASKS, "pid", f"{__name__}:own_pid")
    monkeypatch.setitem(isolate.TASKS, "segfault", f"{__name__}:segfault")
    monkeypatch.setitem(isolate.TASKS, "hang", f"{__name__}:never_ends")
    first, second = (isolate._in_fork("pid", b"", 60.0) for _ in range(2))
    assert first == second and first[:1] == b"\x00" and int(first[1:]) != os.getpid()
    with pytest.raises(isolate.IsolatedFailure, match="SIGSEGV"):
        isolate._in_fork("segfault", b"", 60.0)
    after_crash = isolate._in_fork("pid", b"", 60.0)
    assert after_crash[:1] == b"\x00" and after_crash != first
    with pytest.raises(isolate.IsolatedFailure, match="stopped"):
        isolate._in_fork("hang", b"", 0.2)
    assert isolate._in_fork("pid", b"", 60.0) not in (first, after_crash)
    frame = isolate._in_fork("symcache", b"P" + PDB.read_bytes(), 60.0)
    assert frame[:1] == b"\x00" and b"\n" in frame


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the fork path only")
def test_a_forked_process_never_talks_to_its_parents_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process forked after the reader's child was made (a worker pool) makes its own: two processes
    writing to one child would mix their inputs."""
    monkeypatch.setitem(isolate.TASKS, "pid", f"{__name__}:own_pid")
    parents = isolate._in_fork("pid", b"", 60.0)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_end)
            os.write(write_end, isolate._in_fork("pid", b"", 60.0))
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as answer:
        theirs = answer.read()
    assert os.waitpid(pid, 0)[1] == 0
    assert theirs[:1] == b"\x00" and theirs != parents
    assert isolate._in_fork("pid", b"", 60.0) == parents  # the parent's child is still there, still its own


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the fork path only")
def test_at_exit_the_reader_child_is_reaped_not_orphaned(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its CPU time then counts in the command's, and nothing of the command outlives it."""
    monkeypatch.setitem(isolate.TASKS, "pid", f"{__name__}:own_pid")
    child = int(isolate._in_fork("pid", b"", 60.0)[1:])
    isolate.let_worker_go()  # what the interpreter runs at exit
    with pytest.raises(ChildProcessError):
        os.waitpid(child, os.WNOHANG)  # already reaped
    assert int(isolate._in_fork("pid", b"", 60.0)[1:]) != child  # a later input gets a new child
