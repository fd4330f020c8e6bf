"""One text log analysed in this process, when a worker would only cost time.

A single input needs no parallelism, and a worker costs a process start and every incident pickled across a
pipe. What the worker is for is isolation, and a text log does not need it: it is read by pure Python
(nothing native can fault; the native PDB reader that ``--symbols`` brings runs isolated anyway,
:mod:`symbols.isolate`). What remains is the time limit, kept here with ``SIGALRM``: the timer only
interrupts the analysis (never the parent's writing between parts), and the input gets the same diagnostic
a worker's would. Crash dumps, event logs, archives and anything else not sniffed as text still go to a
worker, as do runs where no timer can be set (not the main thread, no ``setitimer``: Windows).
"""

from __future__ import annotations

import os
import signal
import stat
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from hvci.batch.events import DONE, Event, Failure, late_message, raised_message
from hvci.batch.units import Unit
from hvci.batch.work import Part, stream_unit
from hvci.logs.options import AnalyzeOptions
from parsers import filetype


class _OutOfTime(BaseException):
    """Raised into the analysis by the timer (a BaseException: no ``except Exception`` in the engine
    swallows it)."""


def eligible(units: Sequence[Unit]) -> bool:
    """One unit, a text log on disk or from stdin, and a timer this thread can set."""
    if len(units) != 1 or not hasattr(signal, "setitimer"):
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    unit = units[0]
    if unit.problem is not None or unit.member is not None:
        return False
    if unit.data is not None:
        return filetype.sniff(unit.data[: filetype.HEAD_BYTES]).kind == "text"
    return unit.path is not None and _text_file(unit.path)


def _text_file(path: str) -> bool:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False  # a FIFO is read once, by the worker
        with open(path, "rb") as handle:
            return filetype.sniff(handle.read(filetype.HEAD_BYTES)).kind == "text"
    except OSError:
        return False  # the worker names why


class _Timer:
    """A deadline that raises :class:`_OutOfTime` only inside :meth:`armed` (at once, if it passed while
    disarmed)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._armed = False
        self._expired = False

    def _ring(self, _signal: int, _frame: FrameType | None) -> None:
        self._expired = True
        if self._armed:
            raise _OutOfTime

    @contextmanager
    def running(self) -> Iterator[None]:
        if self.seconds is None:
            yield
            return
        previous = signal.signal(signal.SIGALRM, self._ring)
        signal.setitimer(signal.ITIMER_REAL, max(self.seconds, 1e-3))
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    @contextmanager
    def armed(self) -> Iterator[None]:
        if self._expired:
            raise _OutOfTime
        self._armed = True
        try:
            yield
        finally:
            self._armed = False


def run_here(unit: Unit, options: AnalyzeOptions, limit: float | None) -> Iterator[tuple[int, Part | Event]]:
    """The events a worker would send for the unit (index 0): its parts, then :data:`DONE` or a
    :class:`Failure`."""
    parts = stream_unit(unit, options)
    timer = _Timer(limit)
    with timer.running():
        while True:
            try:
                with timer.armed():
                    part = next(parts)
            except StopIteration:
                break
            except _OutOfTime:
                yield 0, Failure(late_message(limit or 0.0))
                return
            except Exception as error:  # as in a worker: a bug costs this input, with what it was
                yield 0, Failure(raised_message(error))
                return
            yield 0, part
    yield 0, DONE
