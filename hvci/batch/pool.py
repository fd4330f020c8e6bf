"""Local worker processes where one crash or hang costs one unit of work, not the batch.

``concurrent.futures.ProcessPoolExecutor`` breaks as a whole when a worker dies (every pending future fails)
and cannot stop a task that hangs. Native readers of hostile input (PDBs, dumps) can do both, so this pool
keeps each worker's current item in view: a worker that dies (a signal, the OOM killer) or runs past the
item's deadline is ended and replaced, and that item alone gets a :class:`Failure` saying what happened.

Workers ignore SIGINT: Ctrl-C reaches the parent, which ends them (a traceback from each worker would bury
the one-line message).

A task streams: it returns an iterable, and the worker sends each item of it to the parent as soon as it is
made (pickled, so the parent can keep a part it cannot use yet as bytes), then says the task is done. Memory
on both sides is then one part, not a whole result; the parent sees parts as they come, from every worker,
and the caller puts them in order.
"""

from __future__ import annotations

import contextlib
import faulthandler
import pickle
import signal
import struct
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from hvci.batch.events import DONE, Event, Failure, late_message, raised_message

if TYPE_CHECKING:  # multiprocessing (~17 ms) is imported when a pool starts, not by a run done in-process
    from multiprocessing.connection import Connection

Item = TypeVar("Item")

#: A worker's message: the item's index and what follows (a part, the end, a failure's message).
_HEADER = struct.Struct("<qB")
_PART, _DONE, _FAILED = 0, 1, 2

#: The most messages taken from one worker before looking at the others (their deadlines, their parts).
_MESSAGES_PER_ROUND = 64


def _context() -> Any:
    """fork where there is one (a worker starts in milliseconds with the engine already imported), else
    spawn (Windows, macOS)."""
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _serve(
    connection: Connection, task: Callable[[Any], Iterable[Any]], finish: Callable[[], None] | None
) -> None:
    """A worker: run items until told to stop (``None``) or the parent goes away, then ``finish``. Its
    death is reported by the parent as one line, so a fault handler inherited from the parent must not
    print a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.disable()
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            message = None
        if message is None:
            if finish is not None:
                finish()
            return
        index, item = message
        try:
            for part in task(item):
                payload = pickle.dumps(part, pickle.HIGHEST_PROTOCOL)
                connection.send_bytes(_HEADER.pack(index, _PART) + payload)
        except Exception as error:  # a bug must cost one input, not the batch; the message says which
            text = raised_message(error)
            connection.send_bytes(_HEADER.pack(index, _FAILED) + text.encode("utf-8", "replace"))
            continue
        connection.send_bytes(_HEADER.pack(index, _DONE))


def _event(data: bytes) -> tuple[int, Event]:
    index, kind = _HEADER.unpack_from(data)
    payload = data[_HEADER.size :]
    if kind == _PART:
        return index, payload
    if kind == _FAILED:
        return index, Failure(payload.decode("utf-8", "replace"))
    return index, DONE


def death_message(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"the analysis crashed: its worker process died of {name}{hint}"
    return f"the analysis crashed: its worker process exited with status {exitcode}"


@dataclass
class _Worker(Generic[Item]):
    process: Any
    connection: Connection
    index: int | None = None
    deadline: float | None = None
    started: float = field(default_factory=time.monotonic)


class IsolatedPool(Generic[Item]):
    """``jobs`` worker processes running ``task`` over items; see the module docstring. ``finish`` runs
    in a worker when it leaves (a worker's exit skips ``atexit``: e.g. to reap a child of its own, whose
    CPU time then counts in the command's)."""

    def __init__(
        self,
        task: Callable[[Item], Iterable[Any]],
        jobs: int,
        timeout: Callable[[Item], float | None] = lambda item: None,
        finish: Callable[[], None] | None = None,
    ) -> None:
        self._task = task
        self._finish = finish
        self._jobs = max(1, jobs)
        self._timeout = timeout
        self._context = _context()
        self._workers: list[_Worker[Item]] = []

    def _start(self) -> _Worker[Item]:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(child, self._task, self._finish), daemon=True)
        process.start()
        child.close()
        worker: _Worker[Item] = _Worker(process, parent)
        self._workers.append(worker)
        return worker

    def _retire(self, worker: _Worker[Item], *, kill: bool) -> None:
        self._workers.remove(worker)
        if kill:
            worker.process.kill()
        else:
            with contextlib.suppress(OSError):  # it may be gone already
                worker.connection.send(None)
        worker.process.join(5)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.connection.close()

    def _assign(self, worker: _Worker[Item], pending: deque[tuple[int, Item]]) -> None:
        index, item = pending.popleft()
        limit = self._timeout(item)
        worker.index = index
        worker.started = time.monotonic()
        worker.deadline = None if limit is None else time.monotonic() + limit
        worker.connection.send((index, item))

    def _events(self, worker: _Worker[Item], ready: list[Any]) -> tuple[list[Event], bool]:
        """What the worker sent since the last look (its item ends with :data:`DONE` or a Failure) and
        whether the worker is broken (dead or stuck)."""
        events: list[Event] = []
        connection = worker.connection
        waiting = connection in ready  # then the first recv does not block
        try:
            while len(events) < _MESSAGES_PER_ROUND and (waiting or connection.poll()):
                waiting = False
                events.append(_event(connection.recv_bytes())[1])
                if not isinstance(events[-1], bytes):
                    return events, False
        except (EOFError, OSError):
            worker.process.join(5)
            return [*events, Failure(death_message(worker.process.exitcode))], True
        if worker.process.sentinel in ready and not connection.poll():
            worker.process.join(5)
            return [*events, Failure(death_message(worker.process.exitcode))], True
        if worker.deadline is not None and time.monotonic() >= worker.deadline:
            seconds = worker.deadline - worker.started
            return [*events, Failure(late_message(seconds))], True
        return events, False

    def run(self, items: Sequence[Item]) -> Iterator[tuple[int, Event]]:
        """``(index, event)`` for every item's parts, as they come; each item ends with :data:`DONE` or a
        :class:`Failure`."""
        pending: deque[tuple[int, Item]] = deque(enumerate(items))
        try:
            for _ in range(min(self._jobs, len(pending))):
                self._assign(self._start(), pending)
            while self._workers:
                yield from self._round(pending)
        finally:
            for worker in list(self._workers):
                self._retire(worker, kill=True)

    def _round(self, pending: deque[tuple[int, Item]]) -> Iterator[tuple[int, Event]]:
        from multiprocessing.connection import wait  # imported once a pool has started (see _context)

        busy = [w for w in self._workers if w.index is not None]
        deadlines = [w.deadline for w in busy if w.deadline is not None]
        timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        ready = wait([w.connection for w in busy] + [w.process.sentinel for w in busy], timeout)
        for worker in busy:
            events, broken = self._events(worker, ready)
            index = worker.index
            assert index is not None
            for event in events:
                yield index, event
            if not events or isinstance(events[-1], bytes):
                continue  # the item is still running
            if not broken:
                worker.index = None
                if pending:
                    self._assign(worker, pending)
                else:
                    self._retire(worker, kill=False)
                continue
            self._retire(worker, kill=True)
            if pending:
                self._assign(self._start(), pending)
