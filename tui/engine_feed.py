"""The product's :class:`~tui.loading.Feed`: the engine's pipeline for incidents, the parsers' chunked
reader for the text of the evidence view.

The analysis of a small input runs in a worker thread (no process start-up: the first finding of a pasted
crash shows at once); from :data:`PROCESS_THRESHOLD` bytes on it runs in a child process
(:mod:`hvci.logs.worker`), so that the UI keeps the interpreter to itself. The text is always read in a
thread: it is kept as the reader's chunks (:mod:`tui.linestore`), which costs a line count per chunk. Read
errors end up in ``Load.error`` as one plain sentence; the view shows it and keeps what was read.
"""

from __future__ import annotations

from collections.abc import Sequence

from hvci.logs.pipeline import AnalyzeOptions, iter_incidents
from hvci.logs.worker import HEAD_BYTES, Child, Request, Started, results, start, stop_when
from parsers.stream import Input, open_input
from tui.loading import Load, Source

#: Inputs at least this large are analysed in a child process (see :mod:`hvci.logs.worker`): a dense
#: megabyte of crashes is a second of analysis, which in a thread takes the interpreter from the keys.
PROCESS_THRESHOLD = 1 << 20

#: The text reader reads this much before it waits for the view's first frames (``Load.view_up``): the
#: lines of the findings the head look reports, which the detail pane quotes.
TEXT_HEAD_BYTES = HEAD_BYTES

#: The longest the text reader waits for the view (seconds), should it never say that it is up.
VIEW_UP_LIMIT = 2.0


def _request(source: Source, options: AnalyzeOptions, follow: bool) -> Request:
    return Request(
        path=source.path.resolve() if source.path is not None else None,
        data=source.data,
        name=source.name,
        options=options,
        follow=follow,
    )


def _in_child(source: Source, process_threshold: int) -> bool:
    size = source.size()
    return size is not None and size >= process_threshold


def start_ahead(sources: Sequence[Source], options: AnalyzeOptions, follow: bool) -> Started:
    """Start the analysis child of each large input now, for a :class:`PipelineFeed` built with the result
    to adopt: the command line calls this before it imports Textual and the view (see
    :class:`hvci.logs.worker.Started`, whose ``close`` it must call when the view ends). Imports no
    Textual."""
    started = Started()
    for source in sources:
        if _in_child(source, PROCESS_THRESHOLD):
            started.start(_request(source, options, follow))
    return started


def _open(source: Source) -> Input:
    return open_input(source.path, data=source.data, name=source.name)


def _problem(error: Exception) -> str:
    if isinstance(error, OSError):
        return f"cannot read: {error.strerror or error}"
    return str(error)


class PipelineFeed:
    """Incidents from :func:`hvci.logs.pipeline.iter_incidents`, lines from ``Input.lines``."""

    def __init__(
        self,
        options: AnalyzeOptions,
        process_threshold: int = PROCESS_THRESHOLD,
        started: Started | None = None,
    ) -> None:
        self.options = options
        self.process_threshold = process_threshold
        self._started: dict[Load, Child | OSError] = {}
        self._ahead = started
        """Children the command line started before the view (see :func:`start_ahead`)."""

    def begin(self, load: Load) -> None:
        """Start the child process of a large input at once, so that its start-up and its first look at
        the input overlap the view's own start-up (:meth:`read_incidents` then reads its results)."""
        if self._in_child(load):
            self._started[load] = self._start_child(load)

    def _start_child(self, load: Load) -> Child | OSError:
        request = _request(load.source, self.options, load.follow)
        child = self._ahead.take(request) if self._ahead is not None else None
        if child is None:
            try:
                child = start(request)
            except OSError as error:
                return error
        if not isinstance(child, OSError):
            stop_when(load.stop, child)
        return child

    def _in_child(self, load: Load) -> bool:
        return _in_child(load.source, self.process_threshold)

    def read_incidents(self, load: Load) -> None:
        if self._in_child(load):
            try:
                self._child(load)
                load.settle()
            finally:
                load.incidents_done = True
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
        """The text for the evidence view, in the reader's chunks: counting a chunk's lines is the only work
        per chunk (see :mod:`tui.linestore`), so this thread leaves the interpreter to the UI. Past the
        input's head it waits until the view is up (``Load.view_up``)."""
        try:
            inp = _open(load.source)
            load.lines.set_decoder(inp.decode)
            for data in inp.text_chunks(follow=load.follow, stop=load.stop):
                if data is None:
                    load.reset_lines()
                    continue
                load.lines.append_chunk(data)
                load.bytes_read = inp.bytes_read
                if inp.bytes_read >= TEXT_HEAD_BYTES and not load.view_up.is_set():
                    load.view_up.wait(VIEW_UP_LIMIT)
                if load.stop.is_set() and not load.follow:
                    return
            load.bytes_read = inp.bytes_read
        except (OSError, ValueError) as error:
            load.error = _problem(error)
        finally:
            load.lines_done = True

    def _child(self, load: Load) -> None:
        """The analysis in a child process; its results land in ``load`` exactly as the thread's do (its
        first look at the input's head as provisional incidents, see :func:`hvci.logs.worker.serve`)."""
        child = self._started.pop(load, None) or self._start_child(load)
        if isinstance(child, OSError):
            load.error = f"cannot start a reader process: {child.strerror or child}"
            return
        try:
            for kind, payload in results(child):
                if kind in ("incidents", "provisional"):
                    for incident in payload:
                        load.add(incident, provisional=kind == "provisional")
                elif kind == "parsed":
                    load.bytes_parsed = payload
                elif kind == "info":
                    load.finish(payload)
                    load.bytes_parsed = payload.bytes_read
                else:
                    load.error = str(payload)
            if load.info is None and load.error is None and not load.stop.is_set():
                load.error = f"the analysis process ended early (exit code {child.returncode})"
        except OSError as error:
            load.error = _problem(error)
