"""A batch run: units analysed in parallel (local worker processes or a Dask cluster), streamed in plan order.

The report does not depend on how the work was spread: :func:`stream_batch` hands out each unit's parts
(incident batches, input results; :mod:`hvci.batch.work`) in plan order, so ``--jobs 1``, ``--jobs 8`` and a
cluster give byte-identical reports. The unit first in plan order is passed on as its worker streams it;
the parts of units running ahead of it wait, as the pickled bytes the worker sent, in memory up to
:data:`WAITING_IN_MEMORY` and in a temporary file beyond (:class:`~hvci.batch.spill.Waiting`), so memory
does not grow with what the workers find. A unit that raised, crashed its worker or ran out of time ends
with one ``error`` diagnostic on that unit's input (after the incidents it streamed before, which are
kept). A run of one text log is analysed in this process (:mod:`hvci.batch.inproc`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Generator, Iterator, Sequence

import msgspec

from hvci.batch import inproc
from hvci.batch.cores import default_jobs
from hvci.batch.events import Done, Event, Failure
from hvci.batch.spill import Waiting
from hvci.batch.units import Unit, total_bytes
from hvci.batch.work import (
    UNREAD,
    IncidentBatch,
    InputResult,
    Part,
    failed,
    gather,
    scatter,
    stream_unit,
)
from hvci.findings import group_findings
from hvci.logs.options import AnalyzeOptions
from hvci.model import Report

#: The default time limit of one unit: this much, plus :data:`SECONDS_PER_MB` for each MB it holds (the
#: pipeline reads tens of MB/s; a unit far slower than that is stuck on hostile input).
BASE_TIMEOUT = 300.0
SECONDS_PER_MB = 2.0

#: Bytes of parts kept in memory for units running ahead of the one being passed on; more go to a file.
WAITING_IN_MEMORY = 16 << 20


class UnitDone(msgspec.Struct, frozen=True):
    """The last event of a unit in :func:`stream_batch`: which, and how many incidents it gave."""

    index: int
    unit: Unit
    incidents: int


#: What :func:`stream_batch` hands out, in plan order.
BatchEvent = IncidentBatch | InputResult | UnitDone


class ClusterError(Exception):
    """The cluster cannot be used (the extra is not installed, the scheduler cannot be reached). Defined
    here, not in :mod:`hvci.batch.distributed`, so that catching it does not import the cluster code."""


def default_timeout(unit: Unit) -> float:
    return BASE_TIMEOUT + SECONDS_PER_MB * unit.size / 1e6


class BatchStats(msgspec.Struct, frozen=True):
    """What ``--stats`` prints (one JSON object)."""

    inputs: int
    unread: int
    bytes: int
    incidents: int
    findings: int
    seconds: float
    jobs: int
    engine: str

    def as_dict(self) -> dict[str, object]:
        seconds = max(self.seconds, 1e-9)
        return {
            "inputs": self.inputs,
            "unread": self.unread,
            "bytes": self.bytes,
            "incidents": self.incidents,
            "findings": self.findings,
            "seconds": round(self.seconds, 3),
            "files_per_second": round(self.inputs / seconds, 1),
            "mb_per_second": round(self.bytes / 1e6 / seconds, 2),
            "jobs": self.jobs,
            "engine": self.engine,
        }


class BatchResult(msgspec.Struct, frozen=True):
    report: Report
    results: tuple[InputResult, ...]  # one per input, in report order (hashes for the results store)
    stats: BatchStats


def unread(result: InputResult) -> bool:
    """An input that yielded nothing because it could not be read (an error and not one line read)."""
    return result.info.format == UNREAD and any(d.severity == "error" for d in result.info.diagnostics)


def analysis_events(
    units: Sequence[Unit],
    options: AnalyzeOptions,
    *,
    jobs: int,
    timeout: Callable[[Unit], float | None] = default_timeout,
    scheduler: str | None = None,
) -> Iterator[tuple[int, Part | Event]]:
    """Every unit's events as they come, in any order: parts (as objects or pickled) and an end."""
    if scheduler is not None:
        from hvci.batch.distributed import run_on_cluster  # the optional extra, imported only when asked

        for index, outcome in run_on_cluster(units, options, scheduler):
            if not isinstance(outcome, Failure):
                yield from ((index, part) for part in scatter(outcome))
            yield index, outcome if isinstance(outcome, Failure) else Done()
    elif inproc.eligible(units):
        yield from inproc.run_here(units[0], options, timeout(units[0]))
    else:
        from hvci.batch.pool import IsolatedPool  # its pipes, pickling and signals: runs given to workers
        from symbols.isolate import let_worker_go  # a worker's PDB reader is reaped by the worker

        pool: IsolatedPool[Unit] = IsolatedPool(
            functools.partial(stream_unit, options=options), jobs, timeout, finish=let_worker_go
        )
        yield from pool.run(units)


def stream_batch(
    units: Sequence[Unit],
    options: AnalyzeOptions,
    *,
    jobs: int | None = None,
    timeout: Callable[[Unit], float | None] = default_timeout,
    scheduler: str | None = None,
) -> Generator[BatchEvent, None, None]:
    """Every unit's parts in plan order, each unit closed by :class:`UnitDone` (see the module docstring).
    ``scheduler`` (``tcp://HOST:PORT``) runs the units on a Dask cluster instead of local processes."""
    events = analysis_events(
        units, options, jobs=jobs or default_jobs(), timeout=timeout, scheduler=scheduler
    )
    order = _InOrder(units)
    try:
        for index, event in events:
            yield from order.take(index, event)
    finally:
        order.close()


class _InOrder:
    """Puts the events of units running in parallel back in plan order (see the module docstring)."""

    def __init__(self, units: Sequence[Unit]) -> None:
        self._units = units
        self._next = 0  # the unit being passed on
        self._ended: dict[int, Done | Failure] = {}
        self._waiting = Waiting(WAITING_IN_MEMORY)
        self._incidents = 0  # of the unit being passed on

    def close(self) -> None:
        self._waiting.close()

    def take(self, index: int, event: Part | Event) -> Iterator[BatchEvent]:
        if index != self._next:
            if isinstance(event, Done | Failure):
                self._ended[index] = event
            else:
                self._waiting.add(index, event if isinstance(event, bytes) else _pickled(event))
            return
        if isinstance(event, Done | Failure):
            self._ended[index] = event
        else:
            yield self._part(event)
        while self._next in self._ended:
            yield from self._end(self._ended.pop(self._next))
            for payload in self._waiting.take(self._next):  # the next unit's parts so far, now live
                yield self._part(payload)

    def _part(self, event: Part | bytes) -> IncidentBatch | InputResult:
        part: Part = _unpickled(event) if isinstance(event, bytes) else event
        if isinstance(part, IncidentBatch):
            self._incidents += len(part.incidents)
        return part

    def _end(self, end: Done | Failure) -> Iterator[BatchEvent]:
        unit = self._units[self._next]
        if isinstance(end, Failure):
            yield failed(unit.name, end.message)
        yield UnitDone(self._next, unit, self._incidents)
        self._next += 1
        self._incidents = 0


def _pickled(part: Part) -> bytes:
    import pickle  # parts arrive pickled, or are kept so, only from runs on several workers

    return pickle.dumps(part)


def _unpickled(payload: bytes) -> Part:
    import pickle

    part: Part = pickle.loads(payload)
    return part


def run_batch(
    units: Sequence[Unit],
    options: AnalyzeOptions,
    *,
    jobs: int | None = None,
    timeout: Callable[[Unit], float | None] = default_timeout,
    scheduler: str | None = None,
) -> BatchResult:
    """:func:`stream_batch` gathered into one report, for callers that want it whole (tests, the TUI)."""
    started = time.monotonic()
    parts = [
        e
        for e in stream_batch(units, options, jobs=jobs, timeout=timeout, scheduler=scheduler)
        if not isinstance(e, UnitDone)
    ]
    ordered = tuple(gather(parts))
    report = Report(
        inputs=tuple(r.info for r in ordered), incidents=tuple(i for r in ordered for i in r.incidents)
    )
    stats = BatchStats(
        inputs=len(ordered),
        unread=sum(1 for r in ordered if unread(r)),
        bytes=total_bytes(units),
        incidents=len(report.incidents),
        findings=len(group_findings(report.incidents)),
        seconds=time.monotonic() - started,
        jobs=jobs or default_jobs(),
        engine="dask" if scheduler is not None else "local",
    )
    return BatchResult(report, ordered, stats)
