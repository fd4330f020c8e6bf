"""The product's :class:`~tui.loading.Feed`: the engine's pipeline for incidents, the parsers' input
reader for the text lines of the evidence view.

Both run in worker threads on their own :class:`parsers.stream.Input` over the same source. Read errors
end up in ``Load.error`` as one plain sentence; the view shows it and keeps what was read.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from hvci.pipeline import AnalyzeOptions, iter_incidents
from parsers.base import Line
from parsers.records import Diagnostic
from parsers.source import Chunk
from parsers.stream import Input, open_input
from tui.loading import Load, Source

#: Progress (bytes read) is refreshed every this many lines; reading it per line would cost more than the line.
PROGRESS_EVERY = 4096


def _open(source: Source) -> Input:
    return open_input(source.path, data=source.data, name=source.name)


def _problem(error: Exception) -> str:
    if isinstance(error, OSError):
        return f"cannot read: {error.strerror or error}"
    return str(error)


def _followed_lines(inp: Input, stop: threading.Event) -> Iterator[Line | None]:
    """Like :meth:`Input.lines`, but tailing the file; ``None`` marks a reset (truncated or re-created)
    after which numbering starts again at 1.

    ``Input.lines`` takes no ``follow``; this reads the same chunks through the source's follow mode."""
    source = inp._source
    for chunk in source.chunks(follow=True, stop=stop):
        if isinstance(chunk, Diagnostic):
            yield None
            continue
        if not isinstance(chunk, Chunk) or not chunk.lines:
            continue
        data = chunk.data
        pieces = data.splitlines() if isinstance(data, str) else data.split(b"\n")[:-1]
        for offset, raw in enumerate(pieces):
            text = raw if isinstance(raw, str) else source.decode_line(raw)
            yield Line(chunk.first_line + offset, text.removesuffix("\r"))


class PipelineFeed:
    """Incidents from :func:`hvci.pipeline.iter_incidents`, lines from :meth:`parsers.stream.Input.lines`."""

    def __init__(self, options: AnalyzeOptions) -> None:
        self.options = options

    def read_incidents(self, load: Load) -> None:
        try:
            inp = _open(load.source)
            load.display_name = inp.path
            for incident in iter_incidents(inp, self.options, follow=load.follow, stop=load.stop):
                load.add(incident)
                if load.stop.is_set() and not load.follow:
                    return
            load.info = inp.info()
        except (OSError, ValueError) as error:
            load.error = _problem(error)
        finally:
            load.incidents_done = True

    def read_lines(self, load: Load) -> None:
        lines = load.lines
        try:
            inp = _open(load.source)
            stream = _followed_lines(inp, load.stop) if load.follow else inp.lines()
            for line in stream:
                if line is None:
                    load.reset_lines()
                    continue
                while len(lines) < line.number - 1:  # keep list index == line number - 1
                    lines.append("")
                lines.append(line.text)
                if load.follow or line.number % PROGRESS_EVERY == 0:
                    load.bytes_read = inp.info().bytes_read
                    if load.stop.is_set() and not load.follow:
                        return
            load.bytes_read = inp.info().bytes_read
        except (OSError, ValueError) as error:
            load.error = _problem(error)
        finally:
            load.lines_done = True
