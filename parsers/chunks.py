"""Chunks: the runs of whole lines a :class:`parsers.source.Source` hands out, and the :class:`Liner` that
cuts them from what was read.

A chunk is large (a read's worth of lines), ``\\n``-terminated and never the whole file, so that memory
stays flat however big the log is. The liner normalises bare CRs and truncates lines longer than
:data:`LINE_CAP`, each reported once as an :class:`Issue` (the reader of the chunks turns it into a
``Diagnostic`` with its line number); it never raises on content.
"""

from __future__ import annotations

import re
from typing import Generic, TypeVar

import msgspec

from parsers.records import Severity

LINE_CAP = 64 << 10  # characters of one line kept for parsing
LONG_LINE = f"line longer than {LINE_CAP} characters truncated for parsing"

T = TypeVar("T", str, bytes)


class Issue(msgspec.Struct, frozen=True):
    """A problem with the line at ``offset`` in a chunk's data. Chunks do not number their lines (counting
    newlines costs a pass over the data, and the dispatcher counts them anyway), so the reader of the
    chunks turns an issue into a :class:`Diagnostic` once it knows the line number."""

    offset: int
    message: str
    severity: Severity = "warning"


class Chunk(msgspec.Struct, frozen=True):
    """Complete lines, each ending with ``\\n`` (a CRLF line keeps its ``\\r`` before it; bare CRs are
    already turned into ``\\n``), continuing the line numbering of the previous chunk. ``data`` is ``bytes``
    for ASCII-compatible encodings (decode a line with :meth:`Source.decode_line`) and ``str`` for UTF-16.
    Empty ``data`` (follow mode) means "nothing new for now"."""

    data: bytes | str
    issues: tuple[Issue, ...] = ()


class Restart(msgspec.Struct, frozen=True):
    """The followed file was truncated or re-created: it is read again from its first line."""

    reason: str


class Liner(Generic[T]):
    """Cuts decoded pieces into chunks of complete lines, normalising bare CRs and truncating long lines.

    Generic over ``bytes`` and ``str`` so that the same logic serves both kinds of chunk. With ``sentinel``
    every chunk starts with a ``\n`` that is not input (the end of the line before it), which a reader
    scanning for line starts needs, and issue offsets count it; the carried partial line keeps the newline
    before it, so the sentinel costs no copy.
    """

    def __init__(self, newline: T, cr: T, cap: int = LINE_CAP, *, sentinel: bool = False) -> None:
        self.cap = cap
        self.nl: T = newline
        self.cr: T = cr
        self.crlf: T = cr + newline
        # a CR not followed by LF: one regex scan costs half of comparing the counts of CR and CRLF
        self.bare_cr: re.Pattern[T] = re.compile(cr + (b"(?!\n)" if isinstance(cr, bytes) else "(?!\n)"))
        self.empty: T = newline[:0]
        self.lead: T = newline if sentinel else self.empty
        self.carry: T = self.lead  # the partial last line read so far (after the lead)
        self.skipping = False  # inside an over-long line whose kept part was already emitted

    def feed(self, piece: T) -> Chunk | None:
        """The complete lines of the carry and ``piece``. A ``bytes`` liner may be fed the reading buffer
        (a ``bytearray``, :func:`parsers.source._pieces`): every chunk and carry it makes is a copy."""
        if self.skipping:
            end = piece.find(self.nl)
            if end < 0:
                return None
            piece = piece[end + 1 :]
            self.skipping = False
        lead = len(self.lead)
        cut = piece.rfind(self.nl) + 1
        if cut and piece.find(self.cr, cut) < 0:
            # the common case: the lines up to the piece's last newline, copied once with the carry
            complete = self._joined(piece, cut)
            if self.cr in complete and self.bare_cr.search(complete):
                complete = complete.replace(self.crlf, self.nl).replace(self.cr, self.nl)
            self.carry = self._rest(piece, cut - lead)
        else:  # no newline, or a CR after the last one (maybe half of a CRLF, maybe a bare CR line end)
            data = self.carry + piece
            if self.cr in data:
                held = self.empty
                if data.endswith(self.cr):  # maybe the first half of a CRLF split between reads
                    data, held = data[:-1], self.cr
                if self.bare_cr.search(data):
                    data = data.replace(self.crlf, self.nl).replace(self.cr, self.nl)
                data += held
            cut = max(data.rfind(self.nl, lead) + 1, lead)
            complete, self.carry = data[:cut], data[cut - lead :]
        chunk = self._chunk(complete) if len(complete) > lead else None
        if len(self.carry) - lead > self.cap:
            # an endless line: emit its kept part now and drop the rest up to its end
            kept = self._chunk(self.carry[: lead + self.cap] + self.nl, long_at=lead)
            self.carry = self.lead
            self.skipping = True
            chunk = kept if chunk is None else _join(chunk, kept, lead)
        return chunk

    def _joined(self, piece: T, cut: int) -> T:
        """The carry and ``piece[:cut]`` as one string, copying ``piece`` once."""
        if isinstance(piece, (bytes, bytearray)):
            return b"".join((self.carry, memoryview(piece)[:cut]))
        return self.carry + piece[:cut]

    @staticmethod
    def _rest(piece: T, start: int) -> T:
        """``piece[start:]``, as ``bytes`` when ``piece`` is the reading buffer (a ``bytearray`` that is read
        into again: what is kept of it must be a copy of its own)."""
        if isinstance(piece, bytearray):
            return bytes(memoryview(piece)[start:])
        return piece[start:]

    def flush(self) -> Chunk | None:
        """The partial last line (a file need not end with a newline)."""
        if self.skipping:
            self.skipping = False
            self.carry = self.lead
            return None
        if len(self.carry) <= len(self.lead):
            return None
        data = self.carry.rstrip(self.cr) + self.nl
        self.carry = self.lead
        return self._chunk(data)

    def _chunk(self, data: T, *, long_at: int | None = None) -> Chunk:
        issues: list[Issue] = []
        if long_at is not None:
            issues.append(Issue(long_at, LONG_LINE))
        elif len(data) > self.cap:
            data = self._truncate_long_lines(data, issues)
        return Chunk(data, tuple(issues))

    def _truncate_long_lines(self, data: T, issues: list[Issue]) -> T:
        """Cut every line longer than the cap. Walks the data a cap-sized window at a time: a line starting
        at ``pos`` is too long exactly when no newline lies in ``[pos, pos + cap]``, so a handful of
        ``rfind`` calls per chunk suffice and ordinary chunks pay nothing else."""
        pieces: list[T] = []
        start = pos = kept = 0  # kept: length of the pieces so far, where the next piece starts
        end = len(data)
        while end - pos > self.cap:
            newline = data.rfind(self.nl, pos, pos + self.cap + 1)
            if newline >= 0:
                pos = newline + 1
                continue
            line_end = data.find(self.nl, pos + self.cap)
            issues.append(Issue(kept + pos - start, LONG_LINE))
            pieces.append(data[start : pos + self.cap])
            kept += pos + self.cap - start
            start = pos = line_end  # keeps the newline
        if not pieces:
            return data
        pieces.append(data[start:])
        return self.empty.join(pieces)


def _join(first: Chunk, second: Chunk, lead: int) -> Chunk:
    """Two chunks as one; the second's first ``lead`` characters (its sentinel) are dropped."""
    shift = len(first.data) - lead
    shifted = tuple(Issue(i.offset + shift, i.message) for i in second.issues)
    return Chunk(first.data + second.data[lead:], first.issues + shifted)  # type: ignore[operator]


def with_sentinel(chunk: Chunk) -> Chunk:
    """``chunk`` as ``Source.chunks(sentinel=True)`` gives it (for readers that make their own chunks)."""
    if not chunk.data:
        return chunk
    lead = b"\n" if isinstance(chunk.data, bytes) else "\n"
    issues = tuple(Issue(i.offset + 1, i.message, i.severity) for i in chunk.issues)
    return Chunk(lead + chunk.data, issues)  # type: ignore[operator]


def without_sentinel(chunk: Chunk) -> Chunk:
    """``chunk`` of ``Source.chunks(sentinel=True)`` as ``Source.chunks()`` gives it."""
    if not chunk.data:
        return chunk
    issues = tuple(Issue(max(i.offset - 1, 0), i.message, i.severity) for i in chunk.issues)
    return Chunk(chunk.data[1:], issues)
