"""Batch progress on stderr: a ``rich.progress`` bar (files, MB, findings, ETA), only on a terminal.

stdout carries the report and nothing else, so the bar goes to stderr, and only when stderr is a terminal
and ``-q`` was not given (a CI log would fill with redraws). Input names shown in the bar are made plain
first: a file name must not drive the terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from hvci.report.common import one_line

if TYPE_CHECKING:  # rich is imported only when a bar is shown: a run in a pipe or a CI job starts faster
    from rich.progress import Progress, TaskID

    from hvci.batch.units import Unit


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


class BatchProgress:
    """Context manager; :meth:`advance` is the batch engine's progress callback."""

    def __init__(self, enabled: bool, units: Sequence[Unit]) -> None:
        self.enabled = enabled and stderr_is_terminal()
        self.files = len(units)
        self.total_bytes = sum(u.size for u in units)
        self.done = 0
        self.incidents = 0
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> BatchProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                TextColumn("{task.fields[done]}/{task.fields[files]} files", markup=False),
                DownloadColumn(),
                TextColumn("{task.fields[incidents]} incident(s)", markup=False),
                TimeRemainingColumn(),
                console=Console(stderr=True, markup=False, highlight=False),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(
                "hvci-triage", total=self.total_bytes or None, done=0, files=self.files, incidents=0
            )
        return self

    def advance(self, unit: Unit, incidents: int) -> None:
        """A unit is done; it gave ``incidents``."""
        if self._bar is None or self._task is None:
            return
        self.done += 1
        self.incidents += incidents
        self._bar.update(
            self._task,
            advance=unit.size,
            done=self.done,
            incidents=self.incidents,
            description=one_line(unit.name)[-40:],
        )

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
