"""Reading a large input in child processes: the engine's pipeline in one, the text lines in another.

The parsers scan 4 MB chunks with single regular-expression calls (what makes batch analysis fast), and
decoding a million lines is a million small Python steps. In threads next to the UI, both compete for
Python's global interpreter lock, and every hop of a key press through Textual's message queues then
waits for it: on a 100 MB log the keyboard lagged by more than a second. In child processes they cannot.

Protocol (both ends are this module, pipes only): the parent writes one pickled :class:`Request` to the
child's stdin; the child writes pickled ``(kind, payload)`` pairs to stdout:

* ``what="incidents"``: ``("incident", Incident)`` as each is complete, ``("parsed", bytes_analysed)`` a few
  times a second, ``("info", InputInfo)`` at the end;
* ``what="lines"``: ``("lines", (first_number, [text, ...]))`` batches, ``("progress", bytes_read)``, and
  ``("reset", None)`` when a followed file was truncated or re-created (numbering restarts at 1);
* either: ``("error", message)`` when the input cannot be read.

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
from parsers.stream import Input, open_input

#: Lines per batch sent to the parent, and the longest a batch waits (seconds) while a file is followed.
BATCH_LINES = 20_000
BATCH_SECONDS = 0.1


#: How often the incidents child reports how far its analysis got (seconds).
PARSED_EVERY = 0.25

#: How much the readers yield the CPU to the UI (POSIX ``nice`` increment).
NICENESS = 10


@dataclass(frozen=True, slots=True)
class Request:
    what: str  # "incidents" | "lines"
    path: Path | None
    data: bytes | None
    name: str
    options: AnalyzeOptions
    follow: bool


def _serve_lines(inp: Input, follow: bool, send: Any) -> None:
    batch: list[str] = []
    first = 1
    last_sent = time.monotonic()

    def flush() -> None:
        nonlocal batch, last_sent
        if batch:
            send("lines", (first, batch))
            batch = []
            send("progress", inp.info().bytes_read)
        last_sent = time.monotonic()

    for line in inp.followed_lines(None, on_idle=flush) if follow else inp.lines():
        if line is None:
            flush()
            send("reset", None)
            first = 1
            continue
        if not batch:
            first = line.number
        batch.append(line.text)
        if len(batch) >= BATCH_LINES or (follow and time.monotonic() - last_sent >= BATCH_SECONDS):
            flush()
    flush()
    send("progress", inp.info().bytes_read)


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

    try:
        if request.what == "lines":
            _serve_lines(inp, request.follow, send)
            return
        finished = threading.Event()

        def report_progress() -> None:
            while not finished.wait(PARSED_EVERY):
                send("parsed", inp.bytes_read)

        threading.Thread(target=report_progress, name="hvci-parsed", daemon=True).start()
        for incident in iter_incidents(inp, request.options, follow=request.follow):
            send("incident", incident)
        finished.set()
        send("info", inp.info())
    except (OSError, ValueError) as error:
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
