"""Analysing a large input in a child process, for the triage view.

The pipeline is Python code from the parsers' dispatch to the classifier. In a thread next to the UI it
competes for the global interpreter lock, and every hop of a key press through Textual's message queues
then waits for it: on a 100 MB log the keyboard lagged by more than a second. In a child process it cannot.
(The view's text needs no child: it is kept as the reader's chunks, see ``tui.linestore``.)

The child starts with a quick look at the input's head (:func:`head_incidents`): the first finding of a
large log is then on screen a moment after the child starts, while the UI process spends no interpreter time
on it. Then it analyses the whole input from the start.

Protocol (both ends are this module, pipes only): the parent writes one pickled :class:`Request` to the
child's stdin; the child writes pickled ``(kind, payload)`` pairs to stdout: ``("provisional", [Incident])``
from the head look, ``("incidents", [Incident])`` as they are complete (the first at once, then at most
every :data:`SEND_EVERY` seconds, so that a log with thousands of findings is a few messages, not
thousands), ``("parsed", bytes_analysed)`` a few times a second, ``("info", InputInfo)`` at the end, or
``("error", message)`` when the input cannot be read.

Run as ``python -m hvci.logs.worker``; it imports neither Textual nor Rich.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from hvci.logs.pipeline import AnalyzeOptions, iter_incidents
from hvci.model import Incident
from parsers.stream import Input, open_input

#: How often the incidents child reports how far its analysis got (seconds).
PARSED_EVERY = 0.25

#: How much the analysis yields the CPU to the UI (POSIX ``nice`` increment), after its head look.
NICENESS = 10

#: Incidents found within this many seconds of the last message wait for the next one (or the end).
SEND_EVERY = 0.1

#: The head look stops at the first reader chunk that ends at or past this many bytes: enough lines that a
#: crash near the start is followed by the look-back distance (20,000 lines of ~70 bytes) within it.
HEAD_BYTES = 4 << 20


@dataclass(frozen=True, slots=True)
class Request:
    path: Path | None
    data: bytes | None
    name: str
    options: AnalyzeOptions
    follow: bool


class _PastHead(threading.Event):
    """Set once the reader has read :data:`HEAD_BYTES` (the pipeline checks it before each chunk)."""

    def __init__(self, inp: Input) -> None:
        super().__init__()
        self._inp = inp

    def is_set(self) -> bool:
        return self._inp.bytes_read >= HEAD_BYTES


def _worth_a_head_look(request: Request) -> bool:
    """Only for a text log larger than the head: not a followed file (shown as it grows), not one the head
    look would read whole, not a dump or an event log (read whole by their own readers)."""
    if request.follow:
        return False
    try:
        if request.data is not None:
            size = len(request.data)
        else:
            size = request.path.stat().st_size if request.path is not None else 0
        inp = open_input(request.path, data=request.data, name=request.name)
        return size > HEAD_BYTES and inp.file_type().reader == "text"
    except OSError:
        return False  # the full analysis says why it cannot be read


def head_incidents(request: Request) -> list[Incident]:
    """The first findings of the input's head, only ones nothing later in the input can change. Either the
    pipeline completes one while reading the head (the next crash began): that one, at once, without reading
    further (a log dense with crashes would otherwise be analysed twice). Or the analysis stops after
    :data:`HEAD_BYTES` and flushes the groups still open; of those, only the ones that ended more than
    ``look_back_lines`` before the head's end are kept (a record farther away starts a new group, see
    :class:`hvci.logs.correlate.Correlator`). A later module list or ``ln`` answer can still enrich one;
    the full analysis then sends the newer version under the same id."""
    inp = open_input(request.path, data=request.data, name=request.name)
    past_head = _PastHead(inp)
    flushed: dict[str, Incident] = {}
    for incident in iter_incidents(inp, request.options, stop=past_head):
        if not past_head.is_set():
            return [incident]
        flushed[incident.id] = incident  # an enriched version replaces the earlier one
    settled = inp.info().lines - request.options.look_back_lines
    return [incident for incident in flushed.values() if incident.source.last_line < settled]


class _Outbox:
    """The child's stdout: whole pickled messages, incidents batched (see :data:`SEND_EVERY`)."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._pending: list[Incident] = []
        self._sent_at = 0.0

    def send(self, kind: str, payload: Any) -> None:
        with self._lock:
            self._flush()
            self._write(kind, payload)

    def incident(self, incident: Incident) -> None:
        with self._lock:
            self._pending.append(incident)
            if time.monotonic() - self._sent_at >= SEND_EVERY:
                self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._write("incidents", self._pending)
            self._pending = []

    def _write(self, kind: str, payload: Any) -> None:
        pickle.dump((kind, payload), self._out, protocol=pickle.HIGHEST_PROTOCOL)
        self._out.flush()
        self._sent_at = time.monotonic()


def serve(request_stream: IO[bytes], out: IO[bytes]) -> None:
    """The child's side: read the requested input and stream the results. After the head look (which runs
    while the view starts up), at a lower CPU priority than the UI: a key costs the UI about 100 ms of CPU
    (Textual's layout and repaint of a 160x48 screen), which on a busy 2-core machine it otherwise shares
    with the analysis (bench_tui at a load of 6-10: key median 110-450 ms at equal priority, 35-175 ms at
    nice 10; the load took up to a fifth longer)."""
    request: Request = pickle.load(request_stream)
    outbox = _Outbox(out)
    finished = threading.Event()
    try:
        if _worth_a_head_look(request):
            outbox.send("provisional", head_incidents(request))
        if hasattr(os, "nice"):
            os.nice(NICENESS)
        inp = open_input(request.path, data=request.data, name=request.name)

        def report_progress() -> None:
            while not finished.wait(PARSED_EVERY):
                outbox.send("parsed", inp.bytes_read)

        threading.Thread(target=report_progress, name="hvci-parsed", daemon=True).start()
        for incident in iter_incidents(inp, request.options, follow=request.follow):
            outbox.incident(incident)
        finished.set()
        outbox.send("info", inp.info())
    except (OSError, ValueError) as error:
        finished.set()
        outbox.send("error", f"cannot read: {error.strerror}" if isinstance(error, OSError) else str(error))


def start(request: Request) -> subprocess.Popen[bytes]:
    """Start a child for ``request``; read its results with :func:`results`."""
    root = str(Path(__file__).resolve().parents[2])  # so that the child finds the packages uninstalled too
    paths = [root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    child = subprocess.Popen(
        [sys.executable, "-m", "hvci.logs.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
    )
    assert child.stdin is not None
    pickle.dump(request, child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
    child.stdin.close()
    return child


def stop_when(event: threading.Event, child: subprocess.Popen[bytes]) -> threading.Thread:
    """End ``child`` once ``event`` is set (the user closed or reloaded the input) or it ends by itself."""

    def watch() -> None:
        while child.poll() is None:
            if event.wait(0.2):
                child.terminate()
                return

    thread = threading.Thread(target=watch, name="hvci-reader-stop", daemon=True)
    thread.start()
    return thread


def results(child: subprocess.Popen[bytes]) -> Iterator[tuple[str, Any]]:
    """The child's ``(kind, payload)`` pairs until it exits (blocking reads release the GIL)."""
    assert child.stdout is not None
    while True:
        try:
            yield pickle.load(child.stdout)
        except (EOFError, pickle.UnpicklingError):  # the end, or a child killed in the middle of a message
            break
    child.wait()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
