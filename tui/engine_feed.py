"""The product's :class:`~tui.loading.Feed`: the engine's pipeline for incidents, the parsers' input
reader for the text lines of the evidence view.

Small inputs are read in the worker threads themselves (no process start-up: the first finding of a
pasted crash shows at once). Inputs of :data:`PROCESS_THRESHOLD` bytes and more are read by child
processes (:mod:`hvci.logs.worker`) so that the UI keeps the interpreter to itself. Read errors end up
in ``Load.error`` as one plain sentence; the view shows it and keeps what was read.
"""

from __future__ import annotations

from hvci.logs.pipeline import AnalyzeOptions, iter_incidents
from hvci.logs.worker import Request, results, start, stop_when
from parsers.stream import Input, open_input
from tui.loading import Load, Source

#: Inputs at least this large are read in child processes (see :mod:`hvci.logs.worker`).
PROCESS_THRESHOLD = 8 << 20

#: Progress (bytes read) is refreshed every this many lines: reading it costs more than a line does.
PROGRESS_EVERY = 4096


def _open(source: Source) -> Input:
    return open_input(source.path, data=source.data, name=source.name)


def _problem(error: Exception) -> str:
    if isinstance(error, OSError):
        return f"cannot read: {error.strerror or error}"
    return str(error)


def _store(load: Load, first: int, texts: list[str]) -> None:
    """Append lines numbered from ``first``, keeping list index == line number - 1."""
    lines = load.lines
    if len(lines) < first - 1:
        lines.extend([""] * (first - 1 - len(lines)))
    lines.extend(texts)


class PipelineFeed:
    """Incidents from :func:`hvci.logs.pipeline.iter_incidents`, lines from ``Input.lines``."""

    def __init__(self, options: AnalyzeOptions, process_threshold: int = PROCESS_THRESHOLD) -> None:
        self.options = options
        self.process_threshold = process_threshold

    def _in_child(self, load: Load) -> bool:
        size = load.source.size()
        return size is not None and size >= self.process_threshold

    def read_incidents(self, load: Load) -> None:
        if self._in_child(load):
            self._child(load, "incidents")
            return
        try:
            inp = _open(load.source)
            load.display_name = inp.path
            for incident in iter_incidents(inp, self.options, follow=load.follow, stop=load.stop):
                load.bytes_parsed = inp.bytes_read
                load.add(incident)
                if load.stop.is_set() and not load.follow:
                    return
            load.finish(inp.info())
            load.bytes_parsed = inp.bytes_read
        except (OSError, ValueError) as error:
            load.error = _problem(error)
        finally:
            load.incidents_done = True

    def read_lines(self, load: Load) -> None:
        if self._in_child(load):
            self._child(load, "lines")
            return
        try:
            inp = _open(load.source)
            stream = inp.followed_lines(load.stop) if load.follow else inp.lines()
            for line in stream:
                if line is None:
                    load.reset_lines()
                    continue
                _store(load, line.number, [line.text])
                if load.follow or line.number % PROGRESS_EVERY == 0:
                    load.bytes_read = inp.info().bytes_read
                    if load.stop.is_set() and not load.follow:
                        return
            load.bytes_read = inp.info().bytes_read
        except (OSError, ValueError) as error:
            load.error = _problem(error)
        finally:
            load.lines_done = True

    def _child(self, load: Load, what: str) -> None:
        """Either job in a child process; its results land in ``load`` exactly as the threads' do."""
        source = load.source
        request = Request(
            what=what,
            path=source.path.resolve() if source.path is not None else None,
            data=source.data,
            name=source.name,
            options=self.options,
            follow=load.follow,
        )
        try:
            child = start(request)
            stop_when(load.stop, child)
            for kind, payload in results(child):
                if kind == "incident":
                    load.add(payload)
                elif kind == "lines":
                    _store(load, *payload)
                elif kind == "progress":
                    load.bytes_read = payload
                elif kind == "parsed":
                    load.bytes_parsed = payload
                elif kind == "reset":
                    load.reset_lines()
                elif kind == "info":
                    load.finish(payload)
                    load.bytes_parsed = payload.bytes_read
                else:
                    load.error = str(payload)
            ended = load.info is not None if what == "incidents" else True
            if not ended and load.error is None and not load.stop.is_set():
                load.error = f"the analysis process ended early (exit code {child.returncode})"
        except OSError as error:
            load.error = f"cannot start a reader process: {error.strerror or error}"
        finally:
            if what == "incidents":
                load.incidents_done = True
            else:
                load.lines_done = True
