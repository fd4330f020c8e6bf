"""The same batch on a Dask distributed cluster (``--scheduler tcp://HOST:PORT``; ``hvci-triage[dask]``).

Cluster workers need not see the client's files: each unit is shipped as its bytes (a file, a ZIP member;
stdin's bytes already are), so a lab points the client at a share it can read and the workers only compute.
Every worker runs :func:`hvci.batch.work.analyse_unit`, exactly what a local worker runs, and the results are
merged in plan order by :func:`hvci.batch.run.run_batch`, so the report is identical to a local run.

Isolation comes from Dask: an exception in a unit is that unit's failure; a worker that dies is restarted
by its nanny and the unit retried elsewhere, up to the cluster's ``allowed-failures``, after which it is a
failure too. At most :data:`WINDOW_PER_WORKER` units per worker are in flight, which bounds the client's
memory on a large batch.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from hvci.batch.events import Failure
from hvci.batch.run import ClusterError
from hvci.batch.units import Unit
from hvci.batch.work import MAX_IN_MEMORY, InputResult, analyse_unit, read_zip_member
from hvci.logs.options import AnalyzeOptions

WINDOW_PER_WORKER = 4
CONNECT_TIMEOUT = "15s"


def shipped(unit: Unit) -> Unit:
    """The unit with its bytes in it (read here, on the client), or with the reason they cannot be read."""
    if unit.problem is not None or unit.data is not None or unit.path is None:
        return unit
    if unit.member is not None:
        data = read_zip_member(unit.path, unit.member, unit.name)
    else:
        try:
            with open(unit.path, "rb") as handle:
                data = handle.read(MAX_IN_MEMORY + 1)
        except OSError as error:
            data = f"cannot read: {error.strerror or error}"
        if len(data) > MAX_IN_MEMORY:
            data = f"over {MAX_IN_MEMORY >> 20} MB, too large to ship to the cluster: analyse it locally"
    if isinstance(data, str):
        return Unit(unit.name, problem=data)
    return Unit(unit.name, data=data, size=len(data))


def _distributed() -> Any:
    """``dask.distributed`` (untyped, optional): imported only when a cluster is asked for."""
    try:
        return importlib.import_module("distributed")
    except ImportError:
        raise ClusterError("--scheduler needs Dask: pip install 'hvci-triage[dask]'") from None


def _client(scheduler: str) -> Any:
    try:
        return _distributed().Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise ClusterError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from None


def _failure(error: BaseException) -> Failure:
    if type(error).__name__ == "KilledWorker":
        return Failure("the analysis crashed cluster workers repeatedly and was given up")
    return Failure(f"the analysis failed on the cluster ({type(error).__name__}: {error})")


def run_on_cluster(
    units: Sequence[Unit], options: AnalyzeOptions, scheduler: str
) -> Iterator[tuple[int, list[InputResult] | Failure]]:
    """``(index, results or Failure)`` for every unit, as the cluster finishes them."""
    client = _client(scheduler)
    run = uuid.uuid4().hex
    try:
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        window = WINDOW_PER_WORKER * workers
        indices: dict[str, int] = {}
        pending = iter(enumerate(units))
        running = _distributed().as_completed(loop=client.loop)

        def submit() -> bool:
            step = next(pending, None)
            if step is None:
                return False
            index, unit = step
            key = f"hvci-{run}-{index}"
            future = client.submit(analyse_unit, shipped(unit), options, key=key, pure=False)
            indices[future.key] = index
            running.add(future)
            return True

        for _ in range(window):
            if not submit():
                break
        for future in running:
            try:
                outcome: list[InputResult] | Failure = future.result()
            except Exception as error:  # the unit's own failure, whatever the worker raised
                outcome = _failure(error)
            yield indices.pop(future.key), outcome
            future.release()
            submit()
    finally:
        client.close()
