"""The product's :class:`~tui.loading.Feed`: the engine's pipeline for incidents, the parsers' chunked
reader for the text of the evidence view.

The analysis of a small input runs in a worker thread (no process start-up: the first finding of a pasted
crash shows at once); from :data:`PROCESS_THRESHOLD` bytes on it runs in a child process
(:mod:`hvci.logs.worker`), so that the UI keeps the interpreter to itself. The text is kept as the reader's
chunks (:mod:`tui.linestore`); those of a large input that is not followed are read and counted by a second
child (:mod:`hvci.logs.text_child`), which says where each lies, and the view reads a chunk only when it
shows it (reading and counting them itself held the interpreter ~0.15 s per 100 MB, on the way to
``done``). Read errors end up in ``Load.error`` as one plain sentence; the view shows it and
keeps what was read.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from hvci.logs.pipeline import AnalyzeOptions, iter_incidents
from hvci.logs.worker import HEAD_BYTES, Child, Request, Started, problem, results, start, stop_when
from parsers.stream import Input, open_input
from tui.linestore import Stored
from tui.loading import Load, Source

#: Inputs at least this large are analysed in a child process (see :mod:`hvci.logs.worker`): a dense
#: megabyte of crashes is a second of analysis, which in a thread takes the interpreter from the keys.
PROCESS_THRESHOLD = 1 << 20

#: The text reader reads this much before it waits for the view's first frames (``Load.view_up``): the
#: lines of the findings the head look reports, which the detail pane quotes.
TEXT_HEAD_BYTES = HEAD_BYTES

#: The longest the text reader waits for the view (seconds), should it never say that it is up.
VIEW_UP_LIMIT = 2.0


def _request(source: Source, options: AnalyzeOptions, follow: bool, text: bool = False) -> Request:
    return Request(
        path=source.path.resolve() if source.path is not None else None,
        data=source.data,
        name=source.name,
        options=options,
        follow=follow,
        text=text,
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
            if not follow:
                started.start(_request(source, options, follow, text=True))
    return started


def _open(source: Source) -> Input:
    return open_input(source.path, data=source.data, name=source.name)


def _decode(data: bytes, codec: str) -> str:
    """A text child's ``bytes`` chunk as text, as ``Input.decode`` of the same input decodes it."""
    return data.decode(codec, "replace")


def _path_of(source: Source) -> str | None:
    return str(source.path) if source.path is not None else None


def _wait_for_view(load: Load) -> None:
    """Past the input's head, wait until the view is up (see ``Load.view_up``)."""
    if load.bytes_read >= TEXT_HEAD_BYTES and not load.view_up.is_set():
        load.view_up.wait(VIEW_UP_LIMIT)


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
        self._started: dict[tuple[Load, bool], Child | OSError] = {}
        """Children started by :meth:`begin`, by load and kind (text or analysis)."""
        self._ahead = started
        """Children the command line started before the view (see :func:`start_ahead`)."""

    def begin(self, load: Load) -> None:
        """Start the child processes of a large input at once, so that their start-up and their first look
        at the input overlap the view's own start-up (the read methods then read their results). Both
        start before either's stop watcher (a thread): with no other thread yet, each is a fork, not a
        fresh interpreter (see :func:`hvci.logs.worker.start`)."""
        kinds = [text for text in (False, True) if self._kind_in_child(load, text)]
        for text in kinds:
            self._started[load, text] = self._start_child(load, text)
        for text in kinds:
            self._watch(load, self._started[load, text])

    def _start_child(self, load: Load, text: bool) -> Child | OSError:
        request = _request(load.source, self.options, load.follow, text)
        child = self._ahead.take(request) if self._ahead is not None else None
        if child is None:
            try:
                child = start(request)
            except OSError as error:
                return error
        return child

    @staticmethod
    def _watch(load: Load, child: Child | OSError) -> None:
        if not isinstance(child, OSError):
            stop_when(load.stop, child)

    def _child_for(self, load: Load, text: bool) -> Child | OSError:
        """The child :meth:`begin` started for ``load``, or one started now."""
        child = self._started.pop((load, text), None)
        if child is None:
            child = self._start_child(load, text)
            self._watch(load, child)
        return child

    def _kind_in_child(self, load: Load, text: bool) -> bool:
        return self._text_in_child(load) if text else self._in_child(load)

    def _in_child(self, load: Load) -> bool:
        return _in_child(load.source, self.process_threshold)

    def _text_in_child(self, load: Load) -> bool:
        """A followed input's text stays in the view's thread: it comes a few lines at a time."""
        return self._in_child(load) and not load.follow

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
            load.error = problem(error)
        finally:
            load.incidents_done = True

    def read_lines(self, load: Load) -> None:
        """The text for the evidence view, in the reader's chunks (see :mod:`tui.linestore`): from the text
        child of a large input, else read here, where counting a chunk's lines is the only work per chunk.
        Past the input's head it waits until the view is up (``Load.view_up``)."""
        try:
            if self._text_in_child(load) and self._text_from_child(load):
                return
            inp = _open(load.source)
            load.lines.set_decoder(inp.decode)
            for data in inp.text_chunks(follow=load.follow, stop=load.stop):
                if data is None:
                    load.reset_lines()
                    continue
                load.lines.append_chunk(data)
                load.bytes_read = inp.bytes_read
                _wait_for_view(load)
                if load.stop.is_set() and not load.follow:
                    return
            load.bytes_read = inp.bytes_read
        except (OSError, ValueError) as error:
            load.error = problem(error)
        finally:
            load.lines_done = True

    def _text_from_child(self, load: Load) -> bool:
        """The text as the text child reads it (:func:`hvci.logs.text_child.send_text`); False when no
        child could be started (the text is then read in this thread)."""
        child = self._child_for(load, text=True)
        if isinstance(child, OSError):
            return False
        codec, ended = None, False
        for kind, payload in results(child):
            if kind == "text":
                data, lines, load.bytes_read, now = payload
                if now != codec:
                    codec = now
                    load.lines.set_decoder(partial(_decode, codec=codec))
                if isinstance(data, tuple):  # where the chunk lies in the input: read when shown
                    data = Stored(_path_of(load.source), load.source.data, *data)
                load.lines.append_chunk(data, lines)
                _wait_for_view(load)
            elif kind == "end":
                load.bytes_read, ended = payload, True
            else:
                load.error, ended = load.error or str(payload), True
        if not ended and not load.stop.is_set():
            load.error = load.error or f"the text reader process ended early (exit code {child.returncode})"
        return True

    def _child(self, load: Load) -> None:
        """The analysis in a child process; its results land in ``load`` exactly as the thread's do (its
        first look at the input's head as provisional incidents, see :func:`hvci.logs.worker.serve`)."""
        child = self._child_for(load, text=False)
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
            load.error = problem(error)
