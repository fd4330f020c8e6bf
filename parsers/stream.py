"""Reading an input: its chunks -> the registered block parsers -> records, in input order.

The fast path never looks at a line on its own: :class:`parsers.prefilter.ChunkScanner` searches a whole
chunk (bytes for UTF-8/ANSI, text for UTF-16) for the next line where some trigger may match. Only that
line is decoded and checked against the real triggers (:mod:`parsers.dispatch` tries only the parsers
whose anchors the line holds); the parser whose trigger matches gets it plus a cursor over the shared
position in the chunks (:mod:`parsers.feed`), reads its block, and pushes back the first line that is not
its own. Pushed-back lines are checked one by one (the end of one block is often the start of the next);
then the fast scan resumes.

Public entry points (the contract other packages build on): :func:`open_input`, :func:`iter_records`,
:func:`parse_text` and :meth:`Input.info`.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from parsers import filetype
from parsers.base import BlockParser, Line
from parsers.chunks import Chunk, Restart, with_sentinel, without_sentinel
from parsers.dispatch import dispatcher
from parsers.feed import Feed, FeedCursor
from parsers.records import Diagnostic, InputInfo, Record, Span
from parsers.registry import FORMATS, PARSERS
from parsers.source import SNIFF_SIZE, Source, sniff_encoding
from parsers.wide import widest_digits

if TYPE_CHECKING:
    from pathlib import Path

    from parsers.session import Transcript

#: Lines of a binary input's text view per chunk handed to a viewer.
_VIEW_BATCH = 20_000

MAX_DIAGNOSTICS = 1000  # kept in InputInfo; a file of a million bad lines must not keep a million objects
_TEXT_READERS = ("text", "evtx")  # read line by line by the parsers (an .evtx as its records' XML lines)


class Input:
    """One input (file, stdin or pasted bytes). Read it with :func:`iter_records`; afterwards
    :meth:`info` tells its format, encoding, line count and diagnostics."""

    def __init__(self, source: Source) -> None:
        self._source = source
        self._format = "text"
        self._lines = 0
        self._diagnostics: list[Diagnostic] = []
        self._dropped = 0
        self._transcript: Transcript | None = None  # set while a session file is read (parsers.session)
        self._type: filetype.FileType | None = None

    def file_type(self) -> filetype.FileType:
        """What the input is (:mod:`parsers.filetype`), from its first bytes; pasted text is text. Raises
        ``OSError`` when the file cannot be read."""
        if self._type is None:
            source = self._source
            forced = source.encoding is not None and source.data is not None
            self._type = filetype.TEXT if forced else filetype.sniff(source.head(filetype.HEAD_BYTES))
            if self._type.reader == "evtx":  # read as the XML lines of its records (parsers.evtx_reader)
                from parsers import evtx_reader  # imported for event logs only: start-up of a text run

                self._source = evtx_reader.EvtxSource(source)
        return self._type

    @property
    def path(self) -> str:
        """The display name: the path as given, ``<stdin>`` or the paste's name."""
        return self._source.name

    @property
    def encoding(self) -> str:
        """The sniffed encoding (``utf-8``, ``utf-8-sig``, ``utf-16-le``, ``utf-16-be``, ``cp1252``);
        ``unknown`` for stdin before it is read."""
        source = self._source
        if source.encoding is not None:
            return source.encoding
        if source.data is not None:
            return sniff_encoding(source.data[:SNIFF_SIZE])[0]
        if source.path is not None:
            try:
                return sniff_encoding(source.head(SNIFF_SIZE))[0]
            except OSError:
                return "unknown"
        return "unknown"

    @property
    def codec(self) -> str:
        """The codec :meth:`decode` uses (known once the input's head was read)."""
        return self._source.codec

    @property
    def bytes_read(self) -> int:
        """Bytes taken from the input so far (another thread may read it while this one parses)."""
        return self._source.bytes_read

    def lines(self) -> Iterator[Line]:
        """Every line, decoded and numbered (no parsing). Slower than :func:`iter_records`; for viewers.
        A binary input (a crash dump, an event log) gives its reader's text view."""
        return (line for line in self._decoded_lines(False, None, None) if line is not None)

    def followed_lines(
        self, stop: threading.Event | None, on_idle: Callable[[], None] | None = None
    ) -> Iterator[Line | None]:
        """Like :meth:`lines`, but tailing the file until ``stop`` is set. ``None`` marks a restart (the file
        was truncated or re-created), after which numbering starts again at 1; ``on_idle`` is called whenever
        the file has nothing new. A binary input (a dump, an event log) is read once, not tailed."""
        if self.file_type().reader != "text":
            return iter(self.lines())
        return self._decoded_lines(True, stop, on_idle)

    def text_chunks(
        self, *, follow: bool = False, stop: threading.Event | None = None
    ) -> Iterator[str | bytes | None]:
        """The input's text for a viewer, in chunks of whole lines, each ending in ``\n``: ``str``, or
        ``bytes`` that :meth:`decode` turns into text (a viewer decodes only what it shows). In follow mode
        an empty chunk means "nothing new for now" and ``None`` that the file restarts at line 1. A binary
        input (a crash dump, an event log) gives its reader's text view."""
        file_type = self.file_type()
        if file_type.reader not in _TEXT_READERS:
            from parsers import binary  # the dump readers: imported once an input is known to be one

            batch: list[str] = []
            for text in binary.lines(self._source, file_type):
                batch.append(text)
                if len(batch) >= _VIEW_BATCH:
                    yield "\n".join(batch) + "\n"
                    batch = []
            if batch:
                yield "\n".join(batch) + "\n"
            return
        for chunk in self._source.chunks(follow=follow, stop=stop):
            yield None if isinstance(chunk, Restart) else chunk.data

    def decode(self, data: bytes) -> str:
        """Text of a ``bytes`` chunk from :meth:`text_chunks` (undecodable bytes were reported when read)."""
        return self._source.decode_line(data)

    def _decoded_lines(
        self, follow: bool, stop: threading.Event | None, on_idle: Callable[[], None] | None
    ) -> Iterator[Line | None]:
        number = 1
        for data in self.text_chunks(follow=follow, stop=stop):
            if data is None:
                number = 1
                yield None
                continue
            if not data:
                if on_idle is not None:
                    on_idle()
                continue
            text = data if isinstance(data, str) else self.decode(data)
            for line in text.split("\n")[:-1]:
                yield Line(number, line.removesuffix("\r"))
                number += 1

    def __iter__(self) -> Iterator[Line]:
        return self.lines()

    def _chunks(self, follow: bool, stop: threading.Event | None) -> Iterator[Chunk | Restart]:
        """The chunks the parsers read, each with a ``\n`` sentinel in front: the source's, or for a
        collector's session file its transcript (whose line numbers :attr:`_transcript` maps back to
        session-file lines)."""
        self._transcript = None
        transcript: Transcript | None = None
        for item in self._source.chunks(follow=follow, stop=stop, sentinel=True):
            if isinstance(item, Restart):
                if transcript is not None:
                    transcript.reset()
                yield item
            elif self._source.session:
                if transcript is None:
                    from parsers.session import Transcript  # for a collector's session file only

                    transcript = Transcript()
                self._transcript = transcript
                yield with_sentinel(transcript.feed(without_sentinel(item)))
            else:
                yield item

    def info(self) -> InputInfo:
        diagnostics = tuple(self._diagnostics)
        if self._transcript is not None:
            diagnostics = tuple(self._transcript.remap(d) for d in diagnostics)
        if self._dropped:
            last = self._lines
            message = f"{self._dropped} more diagnostics not kept"
            diagnostics += (Diagnostic(Span(self.path, last, last), message, "info"),)
        binary_input = self._type is not None and self._type.reader != "text"
        return InputInfo(
            path=self.path,
            format=self._format,
            encoding="binary" if binary_input else self._source.encoding or "unknown",
            lines=self._lines,
            bytes_read=self._source.bytes_read,
            diagnostics=diagnostics,
        )

    def _note(self, diagnostic: Diagnostic) -> None:
        if len(self._diagnostics) < MAX_DIAGNOSTICS:
            self._diagnostics.append(diagnostic)
        else:
            self._dropped += 1


def open_input(path: str | Path | None, *, data: bytes | None = None, name: str | None = None) -> Input:
    """An input from a path, ``"-"`` (stdin, read as bytes) or pasted ``data``. Nothing is read yet; a
    missing or unreadable file raises ``OSError`` from :func:`iter_records`."""
    if data is not None:
        return Input(Source(name or (str(path) if path is not None else "<paste>"), data=data))
    if path is None or str(path) == "-":
        return Input(Source(name or "<stdin>", stdin=True))
    return Input(Source(name or str(path), path=str(path)))


def parse_text(text: str, name: str = "<paste>") -> tuple[list[Record], InputInfo]:
    """All records of a pasted text, and what was learnt about it."""
    inp = Input(Source(name, data=text.encode("utf-8", "surrogatepass"), encoding="utf-8"))
    records = list(iter_records(inp))
    return records, inp.info()


def iter_records(
    inp: Input,
    *,
    follow: bool = False,
    stop: threading.Event | None = None,
    parsers: tuple[BlockParser, ...] | None = None,
) -> Iterator[Record]:
    """The records of ``inp`` in input order. With ``follow=True`` keeps reading as the file grows
    (handling truncation and re-creation) until ``stop`` is set. ``parsers`` defaults to the registry.

    A collector's session file is read as the transcript of its commands; its records' spans are lines of
    the session file."""
    file_type = inp.file_type()
    if file_type.reader not in _TEXT_READERS:
        from parsers import binary  # the dump readers: imported once an input is known to be binary

        inp._format = file_type.kind
        for record in binary.records(inp._source, file_type):
            if isinstance(record, Diagnostic):
                inp._note(record)
            inp._lines = max(inp._lines, record.span.last_line)  # lines of the reader's text view
            yield record
        return
    if not file_type.textual:  # read anyway (a log may follow line noise), but never as clean text
        from parsers import binary

        problem = binary.unreadable(inp._source, file_type)
        inp._note(problem)
        yield problem
    for record in _records(inp, follow, stop, parsers):
        transcript = inp._transcript
        yield record if transcript is None else transcript.remap(record)
    if inp._transcript is not None:
        from parsers.session import FORMAT as SESSION_FORMAT

        inp._format = SESSION_FORMAT
        inp._lines = inp._transcript.session_line


def _records(
    inp: Input, follow: bool, stop: threading.Event | None, parsers: tuple[BlockParser, ...] | None
) -> Iterator[Record]:
    chooser = dispatcher(parsers if parsers is not None else PARSERS)
    feed = Feed(inp._chunks(follow, stop), inp._source, chooser.prefilter, follow, stop)
    cursor = FeedCursor(feed, inp.path)
    seen: Counter[str] = Counter()
    while True:
        pushed = cursor.take_pushed()
        if pushed is not None:
            may = chooser.prefilter.may_match(pushed.text)
            parser = chooser.parser_for(pushed.text) if may else None
            if parser is not None:
                feed.block_start = None
                yield from _run(inp, feed, cursor, parser, pushed, seen)
                feed.floor = feed.pos
            continue
        if feed.pending:
            yield from _flush(inp, feed, feed.line)
        if feed.exhausted():
            if not feed.load():
                break
            continue
        start = feed.candidate()
        if start < 0:
            feed.advance_to(len(feed.data))
            continue
        feed.advance_to(start)
        line = feed.next_line()
        if line is None:
            break
        parser = chooser.parser_for(line.text)
        if parser is not None:
            feed.block_start, feed.block_line, feed.block_data = start, line.number, feed.data
            yield from _run(inp, feed, cursor, parser, line, seen)
            feed.floor = feed.pos
    yield from _flush(inp, feed, sys.maxsize)
    inp._format = _format(seen)
    inp._lines = feed.line - 1


def _flush(inp: Input, feed: Feed, before_line: int) -> Iterator[Diagnostic]:
    """Hand out the source's diagnostics for lines before ``before_line``, keeping input order."""
    keep: list[Diagnostic] = []
    for diagnostic in feed.pending:
        if diagnostic.span.first_line < before_line:
            inp._note(diagnostic)
            yield diagnostic
        else:
            keep.append(diagnostic)
    feed.pending = keep


def _run(
    inp: Input, feed: Feed, cursor: FeedCursor, parser: BlockParser, first: Line, seen: Counter[str]
) -> Iterator[Record]:
    """One block. A parser that raises (it must not) costs its block, not the input."""
    yield from _flush(inp, feed, first.number + 1)
    produced = False
    feed.in_block = True
    try:
        for record in parser.parse(first, cursor):
            digits = 0 if isinstance(record, Diagnostic) else widest_digits(record)
            if digits:
                record = Diagnostic(
                    getattr(record, "span", Span(inp.path, first.number, first.number)),
                    f"{parser.name}: a number of {digits} hex digits, wider than 64 bits; block not used",
                    "error",
                )
            if isinstance(record, Diagnostic):
                inp._note(record)
            else:
                produced = True
            yield record
    except Exception as error:  # noqa: BLE001 - one broken block must not lose the rest of the log
        diagnostic = Diagnostic(
            Span(inp.path, first.number, first.number), f"{parser.name} parser failed: {error!r}", "error"
        )
        inp._note(diagnostic)
        yield diagnostic
    finally:
        feed.in_block = False
    if produced:
        seen[parser.name] += 1
    again = cursor.take_pushed()
    if again is not None and again is not first:  # a parser pushing back its own first line would loop
        cursor.push_back(again)


def _format(seen: Counter[str]) -> str:
    """The input's format from the blocks found: a debugger session mixes several kinds of block, which
    makes it a ``kd-log``; a file of only one kind is named after it; nothing found is ``text``; otherwise
    the kind with the most blocks, the one seen first on a tie (the same input always gets the same name)."""
    formats = {FORMATS.get(name, "kd-log") for name in seen}
    if not formats:
        return "text"
    if len(formats) == 1:
        return formats.pop()
    if "kd-log" in formats or formats <= {"analyze", "verifier", "kd-log"}:
        return "kd-log"
    blocks: dict[str, int] = {}
    for name, count in seen.items():  # in the order the kinds first appeared in the input
        kind = FORMATS.get(name, "kd-log")
        blocks[kind] = blocks.get(kind, 0) + count
    return max(blocks, key=blocks.__getitem__)  # a tie goes to the kind seen first, never to hash order
