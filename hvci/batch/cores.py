"""How many worker processes a run has when the user does not say: every core this process may use.

Apart from :mod:`hvci.batch.run` and :mod:`hvci.batch.pool` so that a command that may run everything in
its own process (``scan`` of one image, ``analyze`` of one text log) can name the default without
importing either.
"""

from __future__ import annotations

import os


def default_jobs() -> int:
    """All cores this process may use (its CPU affinity where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
