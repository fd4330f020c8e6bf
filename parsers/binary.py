"""Inputs that are not text: each file type the sniffer (:mod:`parsers.filetype`) tells apart goes to its
reader here, and one that no reader takes becomes a single ``error`` diagnostic naming what the file is and
what to do, so that it can never be reported clean.

A reader gives the records of the input and a text view of it (the lines the TUI shows and that the
records' spans point at). Readers are registered in :data:`READERS` by :attr:`FileType.reader`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from parsers.dump import reader as dump_reader
from parsers.filetype import FileType
from parsers.records import Diagnostic, Record, Span
from parsers.source import Source


@dataclass(frozen=True, slots=True)
class BinaryReader:
    """``records(source)`` and ``lines(source)`` of one kind of binary input; both raise ``OSError`` only
    when the file cannot be opened, and report damage as diagnostics."""

    records: Callable[[Source], Iterator[Record]]
    lines: Callable[[Source], Iterator[str]]


READERS: dict[str, BinaryReader] = {
    "kernel-dump": BinaryReader(dump_reader.records, dump_reader.lines),
}


def unreadable(source: Source, file_type: FileType) -> Diagnostic:
    """The one-line diagnostic for an input no reader takes; line 1 is that line in the text view."""
    return Diagnostic(Span(source.name, 1, 1), file_type.message, "error")


def records(source: Source, file_type: FileType) -> Iterator[Record]:
    reader = READERS.get(file_type.reader or "")
    if reader is None:
        yield unreadable(source, file_type)
        return
    yield from reader.records(source)


def lines(source: Source, file_type: FileType) -> Iterator[str]:
    reader = READERS.get(file_type.reader or "")
    if reader is None:
        yield file_type.message
        return
    yield from reader.lines(source)
