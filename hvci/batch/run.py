"""A batch run: units analysed in parallel (local worker processes or a Dask cluster), merged in plan order.

The report does not depend on how the work was spread: results are kept by unit index and put together in
plan order once all are in, so ``--jobs 1``, ``--jobs 8`` and a cluster give byte-identical reports. A unit
that raised, crashed its worker or ran out of time is one ``error`` diagnostic on that unit's input.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from hvci.batch.pool import Failure, IsolatedPool
from hvci.batch.units import Unit, total_bytes
from hvci.batch.work import InputResult, analyse_unit, failed
from hvci.findings import group_findings
from hvci.logs.pipeline import AnalyzeOptions
from hvci.model import Report

#: The default time limit of one unit: this much, plus :data:`SECONDS_PER_MB` for each MB it holds (the
#: pipeline reads tens of MB/s; a unit far slower than that is stuck on hostile input).
BASE_TIMEOUT = 300.0
SECONDS_PER_MB = 2.0

#: Called in the parent as each unit finishes: (unit, its results).
Progress = Callable[[Unit, Sequence[InputResult]], None]


class ClusterError(Exception):
    """The cluster cannot be used (the extra is not installed, the scheduler cannot be reached). Defined
    here, not in :mod:`hvci.batch.distributed`, so that catching it does not import the cluster code."""


def default_jobs() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_timeout(unit: Unit) -> float:
    return BASE_TIMEOUT + SECONDS_PER_MB * unit.size / 1e6


@dataclass(frozen=True, slots=True)
class BatchStats:
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


@dataclass(frozen=True, slots=True)
class BatchResult:
    report: Report
    results: tuple[InputResult, ...]  # one per input, in report order (hashes for the results store)
    stats: BatchStats


def unread(result: InputResult) -> bool:
    """An input that yielded nothing because it could not be read (an error and not one line read)."""
    return result.sha256 is None and any(d.severity == "error" for d in result.info.diagnostics)


def _local(
    units: Sequence[Unit], options: AnalyzeOptions, jobs: int, timeout: Callable[[Unit], float | None]
) -> Iterator[tuple[int, list[InputResult] | Failure]]:
    pool: IsolatedPool[Unit, list[InputResult]] = IsolatedPool(
        functools.partial(analyse_unit, options=options), jobs, timeout
    )
    return pool.run(units)


def run_batch(
    units: Sequence[Unit],
    options: AnalyzeOptions,
    *,
    jobs: int | None = None,
    timeout: Callable[[Unit], float | None] = default_timeout,
    scheduler: str | None = None,
    progress: Progress | None = None,
) -> BatchResult:
    """Analyse every unit and merge the results in plan order (see the module docstring). ``scheduler``
    (``tcp://HOST:PORT``) runs the units on a Dask cluster instead of local processes."""
    started = time.monotonic()
    jobs = jobs or default_jobs()
    if scheduler is not None:
        from hvci.batch.distributed import run_on_cluster  # the optional extra, imported only when asked

        outcomes = run_on_cluster(units, options, scheduler)
    else:
        outcomes = _local(units, options, jobs, timeout)
    by_unit: dict[int, list[InputResult]] = {}
    for index, outcome in outcomes:
        unit = units[index]
        results = [failed(unit.name, outcome.message)] if isinstance(outcome, Failure) else outcome
        by_unit[index] = results
        if progress is not None:
            progress(unit, results)
    ordered = tuple(r for index in range(len(units)) for r in by_unit[index])
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
        jobs=jobs,
        engine="dask" if scheduler is not None else "local",
    )
    return BatchResult(report, ordered, stats)
