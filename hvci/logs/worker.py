"""Analysing a large input in a child process, for the triage view.

The pipeline is Python code from the parsers' dispatch to the classifier. In a thread next to the UI it
competes for the global interpreter lock, and every hop of a key press through Textual's message queues
then waits for it: on a 100 MB log the keyboard lagged by more than a second. In a child process it cannot.
(The view's text needs no child: it is kept as the reader's chunks, see ``tui.linestore``.)

Protocol (both ends are this module, pipes only): the parent writes one pickled :class:`Request` to the
child's stdin; the child writes pickled ``(kind, payload)`` pairs to stdout: ``("incident", Incident)`` as
each is complete, ``("parsed", bytes_analysed)`` a few times a second, ``("info", InputInfo)`` at the end,
or ``("error", message)`` when the input cannot be read.

Run as ``python -m hvci.logs.worker``; it imports neither Textual nor Rich.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from hvci.logs.pipeline import AnalyzeOptions, iter_incidents
from parsers.stream import open_input

#: How often the incidents child reports how far its analysis got (seconds).
PARSED_EVERY = 0.25

#: How much the analysis yields the CPU to the UI (POSIX ``nice`` increment).
NICENESS = 10


@dataclass(frozen=True, slots=True)
class Request:
    path: Path | None
    data: bytes | None
    name: str
    options: AnalyzeOptions
    follow: bool


def serve(request_stream: IO[bytes], out: IO[bytes]) -> None:
    """The child's side: read the requested input and stream the results, at a lower CPU priority than
    the UI (on 2 cores, two busy readers would otherwise starve the process the user is typing into)."""
    if hasattr(os, "nice"):
        os.nice(NICENESS)
    request: Request = pickle.load(request_stream)
    inp = open_input(request.path, data=request.data, name=request.name)

    lock = threading.Lock()

    def send(kind: str, payload: Any) -> None:
        with lock:
            pickle.dump((kind, payload), out, protocol=pickle.HIGHEST_PROTOCOL)
            out.flush()

    finished = threading.Event()

    def report_progress() -> None:
        while not finished.wait(PARSED_EVERY):
            send("parsed", inp.bytes_read)

    threading.Thread(target=report_progress, name="hvci-parsed", daemon=True).start()
    try:
        for incident in iter_incidents(inp, request.options, follow=request.follow):
            send("incident", incident)
        finished.set()
        send("info", inp.info())
    except (OSError, ValueError) as error:
        finished.set()
        send("error", f"cannot read: {error.strerror}" if isinstance(error, OSError) else str(error))


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
        except EOFError:
            break
    child.wait()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
