"""The position of a reader in an input's chunk stream, shared by the fast scan and the block parsers.

:mod:`parsers.stream` drives the reading: it asks the :class:`Feed` for the next candidate line (the
prefilter's scan of the current chunk), hands a line whose trigger matches to its parser with a
:class:`FeedCursor`, and the parser reads its block through the cursor from the same feed. The feed loads
chunks from the source, removes a line prefix, undoes paste markup, decodes only the lines that are read
and counts lines only up to them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from parsers import fastscan, lineprefix, paste
from parsers.base import Line, LineCursor
from parsers.chunks import Chunk, Restart
from parsers.lineprefix import LinePrefix
from parsers.prefilter import ChunkScanner, Prefilter
from parsers.records import Diagnostic, Span
from parsers.source import Source

#: Follow mode: a block being read (an ``lm`` listing at the end of the file) ends once the file has been
#: quiet for this long (seconds), so that it is used without waiting for a line that may never come. A
#: debugger writes a command's output at once; a pause this long inside one is not expected.
BLOCK_QUIET_SECONDS = 0.5


class Feed:
    """The chunk stream as a position in the current chunk, shared by the fast scan and the parsers.

    ``data`` is the current chunk with a ``\\n`` sentinel in front (so that every line, the first one
    included, starts right after a newline); ``pos`` is the start of the next unread line, ``line`` its
    number.
    """

    def __init__(
        self,
        chunks: Iterator[Chunk | Restart],  # each starting with a ``\n`` sentinel (``Source.chunks``)
        source: Source,
        prefilter: Prefilter,
        follow: bool,
        stop: threading.Event | None,
    ) -> None:
        self._chunks = chunks
        self._source = source
        self._path = source.name
        self._prefilter = prefilter
        self._stop = None if follow else stop  # follow mode: the source itself watches stop
        self.data: bytes | str = b"\n"
        self.newline: Any = b"\n"
        self.pos = 1
        self.line = 1
        self.scanner: ChunkScanner | None = None
        self.pending: list[Diagnostic] = []  # source diagnostics not yet handed out, in line order
        self.ended = False
        self.floor = 1  # lines before this position belong to an earlier block (or were pushed back)
        self.block_start: int | None = None  # position of the current block's first line, when known
        self.block_line = 0
        self.block_data: bytes | str = b""  # the chunk block_start points into
        #: the previous chunk, its newline and floor, for a look behind a block that starts a chunk
        self.before: tuple[bytes | str, Any, int] | None = None
        self.prefix: LinePrefix | None = None  # a timestamp prefix on every line, removed before parsing
        self.split: list[Line] = []  # the rest of a line a paste had flattened goes here (the cursor's stack)
        self.in_block = False  # a parser is reading a block (follow mode: a quiet file ends it)
        self._data_at = time.monotonic()  # when the followed file last gave something new
        self._prefix_sniffed = 0  # lines looked at so far for a prefix
        self._candidates: list[int] | None = None  # the current chunk's, when its load found them
        self._loaded = 0  # bytes of chunks loaded so far

    def load(self) -> bool:
        """Move to the next chunk with lines; ``False`` at the end of input (or when stopped)."""
        while True:
            if self.ended or (self._stop is not None and self._stop.is_set()):
                self.ended = True
                return False
            item = next(self._chunks, None)
            if item is None:
                self.ended = True
                return False
            if isinstance(item, Restart):
                self.line = 1
                self.before = None
                self.pending.append(Diagnostic(Span(self._path, 1, 1), item.reason, "info"))
                continue
            if not item.data:
                if self.pending:
                    return True  # give the dispatcher a chance to hand out diagnostics (follow mode)
                if self.in_block and time.monotonic() - self._data_at >= BLOCK_QUIET_SECONDS:
                    return False  # the block ends here, not at the next line the debugger may never print
                continue
            self._data_at = time.monotonic()
            self.before = (self.data, self.newline, self.floor) if len(self.data) > 1 else self.before
            self.newline = b"\n" if isinstance(item.data, bytes) else "\n"
            for issue in item.issues:  # rare: counting up to each is cheap (offsets count the sentinel)
                line = self.line + item.data.count(self.newline, 1, issue.offset)
                span = Span(self._path, line, line)
                self.pending.append(Diagnostic(span, issue.message, issue.severity))
            self.data = self._without_prefix(item.data)  # (it starts with a sentinel already)
            found = self._fast_scan(self.data)
            markup = None if found is None else found[1]
            normalised = paste.normalise_chunk(self.data, self._source.codec, markup)
            if normalised is not None:
                self.data, self.newline, found = normalised, "\n", None
            self.pos = self.floor = 1
            self.block_start = None
            self.scanner = None
            self._candidates = None if found is None else found[0]
            return True

    def _fast_scan(self, data: bytes | str) -> tuple[list[int], bool] | None:
        """A large bytes chunk's candidate lines and whether it holds paste markup, found in one Hyperscan
        pass (:mod:`parsers.fastscan`) instead of a pass for each, once the input has proved large;
        ``None`` when not found that way."""
        self._loaded += len(data)
        large = self._loaded > fastscan.FAST_AFTER and len(data) >= fastscan.MIN_CHUNK
        if not large or not isinstance(data, bytes):
            return None
        fast = self._prefilter.fast_scan()
        return None if fast is None else fast.scan(data)

    def _without_prefix(self, data: bytes | str) -> bytes | str:
        """``data`` with the input's line prefix removed, looking for one in the first lines of the input."""
        if self.prefix is None and self._prefix_sniffed < lineprefix.SAMPLE_LINES:
            head = data[: lineprefix.SAMPLE_LINES * 256]
            text = head if isinstance(head, str) else head.decode("utf-8", "replace")
            self._prefix_sniffed += text.count("\n")
            self.prefix = lineprefix.detect(text[1:])
            if self.prefix is not None:
                self.pending.append(
                    Diagnostic(
                        Span(self._path, self.line, self.line),
                        f"every line starts with a {self.prefix.name} prefix such as "
                        f"{self.prefix.example!r}; it is ignored when reading the log",
                        "info",
                    )
                )
        return data if self.prefix is None else self.prefix.strip(data)

    def exhausted(self) -> bool:
        return self.pos >= len(self.data)

    def advance_to(self, position: int) -> None:
        self.line += self.data.count(self.newline, self.pos, position)
        self.pos = position

    def next_line(self) -> Line | None:
        while self.pos >= len(self.data):  # (exhausted(), inline: every line a parser reads comes here)
            if not self.load():
                return None
        end = self.data.find(self.newline, self.pos)
        text = self._text(self.pos, end)
        number = self.line
        self.pos = end + 1
        self.line += 1
        if text[-1:] in paste.HEX_DIGITS and paste.may_continue(text):
            self._join_wrapped(text)
        parts = paste.clean_line(self._joined or text)
        self._joined = None
        if len(parts) > 1:
            self.split.extend(Line(number, part) for part in reversed(parts[1:]))
        return Line(number, parts[0])

    _joined: str | None = None

    def _join_wrapped(self, text: str) -> None:
        """Take the next line of the chunk too when it holds the rest of a value cut at the end of this."""
        end = self.data.find(self.newline, self.pos)
        if end < 0:
            return
        joined = paste.join_wrapped(text, self._text(self.pos, end))
        if joined is not None:
            self._joined = joined
            self.pos = end + 1
            self.line += 1

    def _text(self, start: int, end: int, data: bytes | str | None = None) -> str:
        raw = (self.data if data is None else data)[start:end]
        text = raw if isinstance(raw, str) else self._source.decode_line(raw)
        return text[:-1] if text.endswith("\r") else text

    def __iter__(self) -> Feed:
        return self

    def __next__(self) -> Line:
        line = self.next_line()
        if line is None:
            raise StopIteration
        return line

    def candidate(self) -> int:
        """The next line start in the current chunk where a trigger may match, or -1."""
        if self.scanner is None:
            self.scanner = self._prefilter.scanner(self.data, self._candidates)
        return self.scanner.next_candidate(self.pos)


class FeedCursor(LineCursor):
    """The parsers' cursor over the shared feed; the dispatcher drains its pushed-back lines."""

    def __init__(self, feed: Feed, path: str) -> None:
        super().__init__(feed, path)
        self._feed = feed
        feed.split = self._pushed

    def next(self) -> Line | None:
        """The next line: a pushed-back one, else the feed's (straight from it: the base class asks an
        iterator, two more calls for every line a parser reads)."""
        if self._pushed:
            return self._pushed.pop()
        return self._feed.next_line()

    def take_pushed(self) -> Line | None:
        return self._pushed.pop() if self._pushed else None

    def lookbehind(self, limit: int) -> list[Line]:
        """Up to ``limit`` lines just before the block's first line that no other block took (in order).

        Not part of the ``BlockParser`` protocol: a parser whose trigger can only match inside its block
        (``Arguments:`` of a report pasted without its banner) may use it, if present, to find where the
        block really starts.
        """
        feed = self._feed
        start = feed.block_start
        found: list[Line] = []
        if start is None or feed.data is not feed.block_data:  # unknown, or read on into a later chunk
            return found
        number = feed.block_line
        data, newline, floor = feed.data, feed.newline, feed.floor
        while len(found) < limit:
            if start - 1 <= floor:
                if not (start == floor == 1 and data is feed.data and feed.before is not None):
                    break
                data, newline, floor = feed.before  # the block starts its chunk: go on in the previous one
                start = len(data)
                continue
            begin = data.rfind(newline, 0, start - 1) + 1
            if begin < floor:
                break
            number -= 1
            parts = paste.clean_line(feed._text(begin, start - 1, data))
            found.extend(Line(number, part) for part in reversed(parts))
            start = begin
        found.reverse()
        return found
