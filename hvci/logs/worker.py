"""Analysing a large input in a child process, for the triage view.

The pipeline is Python code from the parsers' dispatch to the classifier. In a thread next to the UI it
competes for the global interpreter lock, and every hop of a key press through Textual's message queues
then waits for it: on a 100 MB log the keyboard lagged by more than a second. In a child process it cannot.

The child starts with a quick look at the input's head (:func:`head_incidents`): the first finding of a
large log is then on screen a moment after the child starts, while the UI process spends no interpreter time
on it. Then it analyses the whole input from the start.

Protocol (both ends are this module, pipes only): the parent writes one pickled :class:`Request` to the
child's stdin; the child writes pickled ``(kind, payload)`` pairs to stdout: ``("provisional", [Incident])``
from the head look, ``("incidents", [Incident])`` as they are complete (the first at once, then at most
every :data:`SEND_EVERY` seconds, so that a log with thousands of findings is a few messages, not
thousands), ``("parsed", bytes_analysed)`` a few times a second, ``("info", InputInfo)`` at the end, or
``("error", message)`` when the input cannot be read.

A child started for a request with ``text`` set reads the input's text for the view instead (see
:mod:`hvci.logs.text_child`).

Run as ``python -m hvci.logs.worker``; it imports neither Textual nor Rich.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

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
    text: bool = False
    """Read the input's text for the view (:func:`hvci.logs.text_child.send_text`), not its incidents."""


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


class Outbox:
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
    """The child's side when started as ``python -m hvci.logs.worker``: the request comes on its stdin."""
    run(pickle.load(request_stream), out)


def run(request: Request, out: IO[bytes]) -> None:
    """The child's side of either kind of request."""
    if request.text:
        from hvci.logs.text_child import send_text  # this kind of child only

        send_text(request, out)
    else:
        analyse(request, out)


def problem(error: OSError | ValueError) -> str:
    """One plain sentence for an input that cannot be read."""
    if isinstance(error, OSError):
        return f"cannot read: {error.strerror or error}"
    return str(error)


def analyse(request: Request, out: IO[bytes]) -> None:
    """The child's side: read the requested input and stream the results. After the head look (which runs
    while the view starts up), at a lower CPU priority than the UI: a key costs the UI about 100 ms of CPU
    (Textual's layout and repaint of a 160x48 screen), which on a busy 2-core machine it otherwise shares
    with the analysis (bench_tui at a load of 6-10: key median 110-450 ms at equal priority, 35-175 ms at
    nice 10; the load took up to a fifth longer)."""
    outbox = Outbox(out)
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
        outbox.send("error", problem(error))


class Child(Protocol):
    """A running analysis child: a :class:`subprocess.Popen`, or a :class:`ForkedChild`."""

    stdout: IO[bytes] | None

    @property
    def returncode(self) -> int | Any: ...

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...

    def terminate(self) -> None: ...


def start(request: Request) -> Child:
    """Start a child for ``request``; read its results with :func:`results`. On Linux, from a process with
    no other thread (the view before it starts), the child is a fork: it has every module this process
    imported, so its first look at the input starts at once instead of after an interpreter start-up and
    its imports (~0.3 s of CPU, seconds on a busy machine). Otherwise (other threads, whose locks a fork
    could copy held; other systems) a fresh interpreter runs this module."""
    if sys.platform == "linux" and threading.active_count() == 1:
        return ForkedChild.start(request)
    return spawn(request)


def spawn(request: Request) -> subprocess.Popen[bytes]:
    """A fresh interpreter running this module for ``request``."""
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


#: prctl(2) option: the signal the kernel sends this process when the thread that forked it ends.
_PR_SET_PDEATHSIG = 1


def _end_with(parent: int) -> None:
    """In a forked child on Linux: end when the view's process ends, however it ends. Closing the view
    ends its children, but a process killed outright (SIGKILL, the OOM killer) closes nothing, and a child
    following a file that does not grow never writes again, so it would never notice. The fork is made by
    the main thread (:func:`start`), which ends only with the process."""
    import ctypes  # only in the child

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # no prctl: the child ends at its next write to the closed pipe
        return
    if os.getppid() != parent:  # the view ended before the signal was asked for
        os._exit(0)


class ForkedChild:
    """A forked copy of this process analysing one request, with the parts of ``Popen`` the view uses."""

    def __init__(self, pid: int, stdout: IO[bytes]) -> None:
        self.pid = pid
        self.stdout: IO[bytes] | None = stdout
        self.returncode: int | None = None
        self._lock = threading.Lock()  # the stop watcher polls while the reader waits

    @classmethod
    def start(cls, request: Request) -> ForkedChild:
        read_end, write_end = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 1
            try:
                _end_with(parent)
                os.close(read_end)
                quiet = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):  # nothing reaches the terminal the view draws on
                    os.dup2(quiet, fd)
                with os.fdopen(write_end, "wb") as out:
                    run(request, out)
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        return cls(pid, os.fdopen(read_end, "rb"))

    def _reap(self, flags: int) -> int | None:
        with self._lock:
            if self.returncode is None:
                try:
                    pid, status = os.waitpid(self.pid, flags)
                except ChildProcessError:
                    return self.returncode
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode

    def poll(self) -> int | None:
        return self._reap(os.WNOHANG)

    def wait(self) -> int:
        while (code := self._reap(os.WNOHANG)) is None:
            try:
                os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)  # blocks without reaping
            except ChildProcessError:  # reaped by someone else: its exit status is lost
                with self._lock:
                    self.returncode = -1 if self.returncode is None else self.returncode
        return code

    def terminate(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGTERM)


class Started:
    """Analysis children started before the view that reads them exists, for it to adopt.

    The command line starts them as soon as it knows its inputs, before it imports Textual and the view
    (~0.3 s): a fork then (no other thread exists yet, see :func:`start`) overlaps that start-up with the
    child's first look at the input. The view adopts each with :meth:`take`; :meth:`close`, which the
    command line runs however the view ends (it failed to start, Ctrl+C, quit), ends every child still
    running, adopted or not, and reaps it: none outlives the command."""

    def __init__(self) -> None:
        self._waiting: list[tuple[Request, Child | OSError]] = []
        self._children: list[Child] = []

    def start(self, request: Request) -> None:
        try:
            child = start(request)
        except OSError as error:  # reported when the view adopts it, as its own start would be
            self._waiting.append((request, error))
            return
        self._children.append(child)
        self._waiting.append((request, child))

    def take(self, request: Request) -> Child | OSError | None:
        """The child started for exactly ``request`` (same input, options and mode), once; else None."""
        for position, (waiting, child) in enumerate(self._waiting):
            if waiting == request:  # an in-memory input is the same bytes object: compared by identity
                del self._waiting[position]
                return child
        return None

    def close(self) -> None:
        self._waiting.clear()
        for child in self._children:
            child.terminate()
        for child in self._children:
            child.wait()
        self._children.clear()

    def __enter__(self) -> Started:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def stop_when(event: threading.Event, child: Child) -> threading.Thread:
    """End ``child`` once ``event`` is set (the user closed or reloaded the input) or it ends by itself."""

    def watch() -> None:
        while child.poll() is None:
            if event.wait(0.2):
                child.terminate()
                return

    thread = threading.Thread(target=watch, name="hvci-reader-stop", daemon=True)
    thread.start()
    return thread


def results(child: Child) -> Iterator[tuple[str, Any]]:
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
