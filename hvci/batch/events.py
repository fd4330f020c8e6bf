"""How the analysis of an item ends, as its runner reports it: done, or failed with the reason.

Shared by the worker pool (:mod:`hvci.batch.pool`), the in-process run (:mod:`hvci.batch.inproc`) and the
cluster (:mod:`hvci.batch.distributed`); kept apart from the pool so that a run done in this process does
not import the pool's pipes, pickling and signals.
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec


class Failure(msgspec.Struct, frozen=True):
    """Why an item has no result: it raised, its worker died, or it ran out of time."""

    message: str


class Done:
    """The item's task has made all its parts."""


DONE = Done()

#: What a runner hands out for an item: a part (pickled by the pool), :data:`DONE`, or a Failure (which
#: ends the item too, after whatever parts came before it).
Event: TypeAlias = "bytes | Done | Failure"


def raised_message(error: BaseException) -> str:
    return f"the analysis failed ({type(error).__name__}: {error})"


def late_message(seconds: float) -> str:
    return f"the analysis took longer than its time limit ({seconds:.0f} s) and was stopped"
