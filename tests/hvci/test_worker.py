"""The triage view's analysis child (hvci.logs.worker): its quick look at a large input's head gives only
findings nothing later can change, and over the pipes it reports exactly what the pipeline finds."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from hvci.logs.pipeline import AnalyzeOptions, iter_incidents
from hvci.logs.worker import (
    HEAD_BYTES,
    Child,
    ForkedChild,
    Request,
    head_incidents,
    results,
    spawn,
    stop_when,
)
from parsers.source import CHUNK_SIZE
from parsers.stream import open_input
from tests.conftest import HANG_SECONDS

ROOT = Path(__file__).resolve().parents[2]
CRASH = (ROOT / "samples" / "logs" / "session-pool-type-haxm.log").read_text(encoding="utf-8")
NOISE = "[VendorFilt] request 7 completed with status 0x00000000 in 12 us\n"


def _two_crashes(path: Path) -> None:
    """A crash at the start and one that ends a few hundred lines before the head look does (at the first
    chunk boundary past HEAD_BYTES), well within the look-back distance of its end: a later line could
    still join the second one."""
    head = -(-HEAD_BYTES // CHUNK_SIZE) * CHUNK_SIZE
    before_second = (head - len(CRASH) * 2) // len(NOISE) - 300
    after_second = 2 * AnalyzeOptions().look_back_lines
    path.write_text(CRASH + NOISE * before_second + CRASH + NOISE * after_second, encoding="utf-8")


def _analyse(path: Path) -> list[object]:
    return list(iter_incidents(open_input(path, name=str(path)), AnalyzeOptions()))


def _request(path: Path) -> Request:
    return Request(path=path, data=None, name=str(path), options=AnalyzeOptions(), follow=False)


def test_head_look_keeps_only_the_settled_findings_of_the_head(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    _two_crashes(path)
    full = _analyse(path)
    assert len(full) == 2
    assert head_incidents(_request(path)) == [full[0]]


def test_head_look_of_a_log_dense_with_crashes_stops_at_the_first(tmp_path: Path) -> None:
    path = tmp_path / "dense.log"
    path.write_text(CRASH * (HEAD_BYTES // len(CRASH) + 50), encoding="utf-8")
    first = next(iter(iter_incidents(open_input(path, name=str(path)), AnalyzeOptions())))
    assert head_incidents(_request(path)) == [first]


STARTS = [pytest.param(spawn, id="interpreter")]
if sys.platform == "linux":
    STARTS.append(pytest.param(ForkedChild.start, id="fork"))


@pytest.mark.parametrize("start", STARTS)
def test_child_reports_the_head_look_then_exactly_the_pipelines_incidents(
    tmp_path: Path, start: Callable[[Request], Child]
) -> None:
    path = tmp_path / "big.log"
    _two_crashes(path)
    child = start(_request(path))
    messages = list(results(child))
    assert child.returncode == 0
    kinds = [kind for kind, _ in messages if kind != "parsed"]
    assert kinds[0] == "provisional" and kinds[-1] == "info"
    assert set(kinds[1:-1]) == {"incidents"}
    provisional = messages[0][1]
    found = [incident for kind, batch in messages if kind == "incidents" for incident in batch]
    assert found == _analyse(path)
    assert provisional == found[:1]


@pytest.mark.parametrize("start", STARTS)
def test_a_stopped_child_ends_and_its_results_stop(tmp_path: Path, start: Callable[[Request], Child]) -> None:
    path = tmp_path / "kd.log"
    path.write_text(CRASH, encoding="utf-8")
    request = Request(path=path, data=None, name=str(path), options=AnalyzeOptions(), follow=True)
    child = start(request)  # following: it never ends by itself
    stop = threading.Event()
    watcher = stop_when(stop, child)
    stream = results(child)
    assert next(stream)[0] in ("incidents", "parsed")  # it runs
    stop.set()
    watcher.join()
    list(stream)  # ends: the child was terminated and reaped
    assert child.returncode is not None and child.returncode != 0


#: A view that forks its child and is then killed outright (no clean-up runs in it).
_KILLED_VIEW = """
import sys
from pathlib import Path
from hvci.logs.pipeline import AnalyzeOptions
from hvci.logs.worker import ForkedChild, Request

path = Path(sys.argv[1])
request = Request(path=path, data=None, name=str(path), options=AnalyzeOptions(), follow=True)
child = ForkedChild.start(request)
print(child.pid, flush=True)
sys.stdin.read()  # until the test kills this process
"""


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie nobody reaps, as under a container's init, counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(sys.platform != "linux", reason="the view forks its child on Linux only")
def test_a_forked_child_ends_when_the_view_is_killed(tmp_path: Path) -> None:
    """A child following a file that does not grow never writes again, so a closed pipe would never end
    it: the kernel does, when the view's process dies, SIGKILL included."""
    import os
    import select
    import signal
    import subprocess

    path = tmp_path / "kd.log"
    path.write_text(CRASH, encoding="utf-8")
    view = subprocess.Popen(
        [sys.executable, "-c", _KILLED_VIEW, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    assert view.stdout is not None
    child = int(view.stdout.readline())
    assert _alive(child)
    ended = os.pidfd_open(child)  # readable once the child has ended (it is not ours to wait for)
    view.send_signal(signal.SIGKILL)
    view.wait()
    try:
        readable, _, _ = select.select([ended], [], [], HANG_SECONDS)
        assert readable and not _alive(child), "the forked child outlived the view"
    finally:
        os.close(ended)
        if _alive(child):
            os.kill(child, signal.SIGKILL)
