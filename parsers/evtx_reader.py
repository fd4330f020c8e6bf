"""Binary Windows event logs (``.evtx``) read through the ``evtx`` package (Rust, MIT; omerbenamram/evtx),
turned into the XML that ``wevtutil qe /f:xml`` prints (one ``<Event>`` per line), so that the events
parser (:mod:`parsers.events`) maps them exactly as it maps exported XML: CodeIntegrity, DeviceGuard,
System 1001 (BugCheck), Kernel-Power 41, WER reports and the rest.

Isolation: ``evtx`` is native code reading hostile input. A Rust panic or a stack overflow in it would
take the process down, so it runs in a child process (``python -m parsers.evtx_reader``) that writes the
records to a pipe; a child that dies is one diagnostic, and what it sent before is kept.

Damage: a record or chunk the library cannot decode is skipped by it and reported by the child as one line
``! <reason>``, which this reader turns into an ``error`` diagnostic at that line; the other records are
still read. Lines of the text view are records, in file order.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from parsers.chunks import Chunk, Issue, Restart, with_sentinel
from parsers.source import CHUNK_SIZE, Source

#: Records per write to the pipe (the child) and problems reported before the rest are only counted.
_BATCH = 256
MAX_PROBLEMS = 200
_PROBLEM = b"! "
#: EVTX layout (libyal's EVTX format specification): a 4 KiB file header, then chunks of 64 KiB.
_HEADER_BLOCK = 0x1000
_CHUNK_BYTES = 0x10000


def _flatten(xml: str) -> str:
    """One record's XML on one line, without the XML declaration (wevtutil /f:xml prints it so)."""
    if xml.startswith("<?xml"):
        xml = xml.split("?>", 1)[-1]
    return " ".join(part.strip() for part in xml.splitlines() if part.strip())


def serve(source: IO[bytes] | str, out: IO[bytes]) -> None:
    """The child: every record of the log as one line of XML, every problem as a ``! `` line."""
    import evtx  # the native library is loaded in the child only

    problems = 0
    batch: list[str] = []
    try:
        records = evtx.PyEvtxParser(source, number_of_threads=1).records()
    except (RuntimeError, OSError, ValueError) as error:
        out.write(_PROBLEM + f"the event log cannot be read: {error}".encode() + b"\n")
        return
    while True:
        try:
            record = next(records)
        except StopIteration:
            break
        except Exception as error:  # noqa: BLE001 - a damaged record or chunk: report it, read on
            problems += 1
            if problems <= MAX_PROBLEMS:
                batch.append(f"! {' '.join(str(error).split())}")
            continue
        batch.append(_flatten(str(record["data"]) if isinstance(record, dict) else ""))
        if len(batch) >= _BATCH:
            out.write(("\n".join(batch) + "\n").encode("utf-8", "replace"))
            batch = []
    if problems > MAX_PROBLEMS:
        batch.append(f"! {problems - MAX_PROBLEMS} more damaged records not listed")
    if batch:
        out.write(("\n".join(batch) + "\n").encode("utf-8", "replace"))


class EvtxSource(Source):
    """The records of an ``.evtx`` file as text chunks of XML lines, read by a child process."""

    def __init__(self, original: Source) -> None:
        super().__init__(
            original.name, path=original.path, data=original.data, stdin=original.stdin, encoding="utf-8"
        )
        self._original = original

    def chunks(
        self, *, follow: bool = False, stop: threading.Event | None = None, sentinel: bool = False
    ) -> Iterator[Chunk | Restart]:
        for chunk in self._chunks(stop):
            yield with_sentinel(chunk) if sentinel else chunk

    def _chunks(self, stop: threading.Event | None) -> Iterator[Chunk]:
        self.bytes_read = 0
        data = self._original.data
        if data is None:
            data = self._original.whole_stream()  # stdin or a FIFO; None for a regular file
        root = str(Path(__file__).resolve().parents[1])
        target = "-" if data is not None else str(self._original.path)
        child = subprocess.Popen(
            [sys.executable, "-m", "parsers.evtx_reader", target],
            stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
            },
        )
        feeder = threading.Thread(target=_feed, args=(child, data), daemon=True) if data is not None else None
        if feeder is not None:
            feeder.start()
        try:
            yield from self._read(child, stop)
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()
            if feeder is not None:
                feeder.join()
        stopped = stop is not None and stop.is_set()
        if child.returncode not in (0, None) and not stopped:
            yield _problem(
                f"the event-log reader ended abnormally (exit {child.returncode}); later records are lost"
            )
        self.bytes_read = size = self._size()
        if size > _HEADER_BLOCK and (size - _HEADER_BLOCK) % _CHUNK_BYTES and not stopped:
            chunk = (size - _HEADER_BLOCK) // _CHUNK_BYTES
            yield _problem(
                f"the file ends inside chunk {chunk} (at byte {size}): records past that point are lost"
            )

    def _size(self) -> int:
        if self._original.data is not None:
            return len(self._original.data)
        try:
            return os.stat(self._original.path).st_size if self._original.path is not None else 0
        except OSError:
            return 0

    @staticmethod
    def _read(child: subprocess.Popen[bytes], stop: threading.Event | None) -> Iterator[Chunk]:
        assert child.stdout is not None
        carry = b""
        while not (stop is not None and stop.is_set()):
            piece = (
                child.stdout.read1(CHUNK_SIZE)
                if hasattr(child.stdout, "read1")
                else child.stdout.read(CHUNK_SIZE)
            )
            if not piece:
                break
            data = carry + piece
            cut = data.rfind(b"\n") + 1
            complete, carry = data[:cut], data[cut:]
            if complete:
                yield _chunk(complete)
        if carry:
            yield _chunk(carry + b"\n")


def _problem(message: str) -> Chunk:
    return Chunk(f"! {message}\n".encode(), (Issue(0, message, "error"),))


def _chunk(data: bytes) -> Chunk:
    """Complete lines, with an ``error`` issue at each ``! `` line the child wrote."""
    issues = []
    position = 0
    while True:
        if data.startswith(_PROBLEM, position):
            end = data.find(b"\n", position)
            issues.append(Issue(position, data[position + 2 : end].decode("utf-8", "replace"), "error"))
        following = data.find(b"\n" + _PROBLEM, position)
        if following < 0:
            return Chunk(data, tuple(issues))
        position = following + 1


def _feed(child: subprocess.Popen[bytes], data: bytes | None) -> None:
    """Write a pasted or piped log to the child (a thread: the parent reads the child's output meanwhile)."""
    assert child.stdin is not None
    with contextlib.suppress(OSError):  # a child that ended early: its exit code tells
        child.stdin.write(data or b"")
    with contextlib.suppress(OSError):
        child.stdin.close()


if __name__ == "__main__":
    import io

    target = sys.argv[1] if len(sys.argv) > 1 else "-"
    serve(io.BytesIO(sys.stdin.buffer.read()) if target == "-" else target, sys.stdout.buffer)
    sys.stdout.buffer.flush()
