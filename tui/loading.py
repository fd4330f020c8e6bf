"""Loading inputs off the UI thread: what is being read, how far it got, and what it found so far.

Each input gets a :class:`Load`. Worker threads fill it: one gets incidents from the engine's pipeline as
they complete (for a large input, from a child process, with a quick look at the head for the first
finding meanwhile), another appends the input's text, chunk by chunk, to a :class:`~tui.linestore.LineStore`
for the evidence view. The UI never waits for them: a timer on the screen looks at the counts a few times a
second and shows what is new, however many chunks or incidents arrived in between (one look, not one
message each, so a 100 MB file cannot flood the message queue). Appending to a list and assigning an
attribute are atomic in CPython; the incident list, which two threads may write, has a lock.

:class:`Feed` is the seam to the engine: :class:`tui.engine_feed.PipelineFeed` in the product, a fixture in
the tests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from hvci.model import Incident
from parsers.records import InputInfo
from tui.linestore import LineStore


@dataclass(frozen=True, slots=True)
class Source:
    """One input: a file on disk, or bytes already in memory (stdin read to the end, a paste)."""

    name: str
    path: Path | None = None
    data: bytes | None = None

    @classmethod
    def file(cls, path: str | Path) -> Source:
        return cls(name=str(path), path=Path(path))

    @classmethod
    def memory(cls, data: bytes, name: str) -> Source:
        return cls(name=name, data=data)

    def size(self) -> int | None:
        """Bytes to read, when known up front (a followed file keeps growing)."""
        if self.data is not None:
            return len(self.data)
        try:
            return self.path.stat().st_size if self.path is not None else None
        except OSError:
            return None


def _already_set() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


@dataclass(eq=False)
class Load:
    """The state of one input being read; written by worker threads, read by the UI."""

    source: Source
    follow: bool = False
    display_name: str = ""
    incidents: list[Incident] = field(default_factory=list)
    lines: LineStore = field(default_factory=LineStore)
    bytes_read: int = 0
    """Bytes of text taken in for the evidence view."""
    bytes_parsed: int = 0
    """Bytes the engine has analysed (its own reader's position)."""
    bytes_total: int | None = None
    info: InputInfo | None = None
    error: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    view_up: threading.Event = field(default_factory=_already_set)
    """Set once the view has drawn what its start-up found (set from the start for an input opened later, or
    read without a view). Until then the text reader stops after the input's head: the first frames do
    not share the interpreter with it (reading 100 MB of text holds the lock ~0.1 s)."""
    version: int = 0
    """Bumped on every added or replaced incident, so the UI can tell that something changed."""
    on_change: Callable[[], None] | None = None
    """Called from the loader's thread after an incident was added or replaced, and when a reader is over,
    so that the view takes it in at once rather than at its next timer tick (it coalesces the calls: one
    update per frame); ``done`` in the status line otherwise waited up to a quarter of a second."""
    _incidents_done: bool = False
    _lines_done: bool = False
    _index: dict[str, int] = field(default_factory=dict)
    _provisional: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.display_name = self.display_name or self.source.name
        self.bytes_total = self.source.size()

    def add(self, incident: Incident, *, provisional: bool = False) -> None:
        """Take an incident from the pipeline. The engine re-emits an incident with the same ``id`` when later
        input enriches it (a module list, an ``ln`` answer); the newer version replaces the older in place.

        A ``provisional`` incident comes from a quick look at the head of a large input while the full
        analysis starts (see :mod:`hvci.logs.worker`): it never replaces anything, the full analysis's
        version of it replaces it, and :meth:`settle` drops it if the full analysis never reports it."""
        with self._lock:
            position = self._index.get(incident.id)
            if position is None:
                self._index[incident.id] = len(self.incidents)
                self.incidents.append(incident)
                if provisional:
                    self._provisional.add(incident.id)
            elif provisional:
                return
            else:
                self.incidents[position] = incident
                self._provisional.discard(incident.id)
            self.version += 1
        self._changed()

    def settle(self) -> None:
        """The full analysis is over: drop provisional incidents it did not confirm."""
        with self._lock:
            if not self._provisional:
                return
            kept = [incident for incident in self.incidents if incident.id not in self._provisional]
            self._provisional.clear()
            self._index = {incident.id: n for n, incident in enumerate(kept)}
            self.incidents = kept
            self.version += 1

    def finish(self, info: InputInfo) -> None:
        """The input's own account once it is read. An error in it (a file that is not a log, a damaged
        part of a dump or event log) is shown like a read error: nothing unread may look clean."""
        self.info = info
        errors = [d.message for d in info.diagnostics if d.severity == "error"]
        if errors and self.error is None:
            self.error = errors[0]

    def reset_lines(self) -> None:
        """A followed file was truncated or re-created: its text starts again at line 1."""
        self.lines.reset()

    @property
    def incidents_done(self) -> bool:
        """The analysis is over (or failed): no incident comes any more."""
        return self._incidents_done

    @incidents_done.setter
    def incidents_done(self, value: bool) -> None:
        self._incidents_done = value
        self._changed()

    @property
    def lines_done(self) -> bool:
        """The text is read whole (or could not be read further)."""
        return self._lines_done

    @lines_done.setter
    def lines_done(self, value: bool) -> None:
        self._lines_done = value
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    @property
    def done(self) -> bool:
        return self.incidents_done and self.lines_done


class Feed(Protocol):
    """Fills a :class:`Load`. :meth:`begin` runs on the UI thread as soon as the load exists (before the view
    is up) and must return at once; the read methods run in worker threads and return when the input is
    exhausted (or, when following, once ``load.stop`` is set). They report failures in ``load.error``,
    never raise."""

    def begin(self, load: Load) -> None: ...

    def read_incidents(self, load: Load) -> None: ...

    def read_lines(self, load: Load) -> None: ...
