"""Analysing one :class:`~hvci.batch.units.Unit`, in a worker process: the only place archives are opened.

What a file is comes from :func:`parsers.filetype.sniff` (the one sniffer): a gzip file is decompressed
and, when a tar archive is inside, read as one; a tar archive's file members are read front to back; any
other file goes to the log pipeline, which reads text, crash dumps and event logs and names what it cannot.
Archive members and decompressed files are read into memory up to :data:`MAX_IN_MEMORY` bytes (an archive
bomb stops there with a diagnostic). Every input gets its SHA-256 (the results store skips inputs it has).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Protocol

from hvci.batch.units import Unit, content_hash, member_name
from hvci.logs.pipeline import AnalyzeOptions, analyze_inputs
from hvci.model import Incident
from parsers import filetype
from parsers.records import Diagnostic, InputInfo, Severity, Span
from parsers.stream import Input, open_input

if TYPE_CHECKING:
    import tarfile

# The archive modules (gzip, tarfile, zipfile) are imported by the functions that open archives: most
# inputs are plain files, and a one-file run should not pay for them at start-up.

#: The most bytes read into memory for one archive member, decompressed file or FIFO.
MAX_IN_MEMORY = 512 * 1024 * 1024
_PIECE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class InputResult:
    """One input's outcome: what the pipeline learnt about it, its incidents (final versions, in line
    order), its content hash and size. An input that could not be read has an ``error`` diagnostic, no
    incidents and no hash."""

    info: InputInfo
    incidents: tuple[Incident, ...] = ()
    sha256: str | None = None
    size: int = 0


def failed(name: str, message: str, severity: Severity = "error") -> InputResult:
    """The result of an input that was not read: named, with why, and never clean."""
    diagnostic = Diagnostic(Span(name, 0, 0), message, severity)
    return InputResult(InputInfo(name, "unread", "unknown", diagnostics=(diagnostic,)))


def _analyse(inp: Input, options: AnalyzeOptions, sha256: str | None, size: int) -> InputResult:
    report = analyze_inputs([inp], options)
    return InputResult(report.inputs[0], report.incidents, sha256, size)


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def read_capped(stream: Readable, name: str) -> bytes:
    """All of ``stream`` up to :data:`MAX_IN_MEMORY`; ``ValueError`` beyond it."""
    pieces: list[bytes] = []
    total = 0
    while piece := stream.read(_PIECE):
        total += len(piece)
        if total > MAX_IN_MEMORY:
            raise ValueError(f"larger than {MAX_IN_MEMORY >> 20} MB once decompressed; extract {name} first")
        pieces.append(piece)
    return b"".join(pieces)


def analyse_bytes(name: str, data: bytes, options: AnalyzeOptions) -> InputResult:
    inp = open_input(None, data=data, name=name)
    return _analyse(inp, options, hashlib.sha256(data).hexdigest(), len(data))


def tar_members(archive: tarfile.TarFile, name: str) -> Iterator[tuple[str, bytes | str]]:
    """(member name, its bytes) for each file member in order, or (name, why it was not read)."""
    for member in archive:
        shown = member_name(name, member.name)
        if member.isdir():
            continue
        if not member.isfile():
            yield shown, "a link or special file inside the archive, not followed"
            continue
        handle = archive.extractfile(member)
        if handle is None:
            yield shown, "cannot be extracted"
            continue
        with handle:
            yield shown, read_capped(handle, shown)


def _tar_results(opener: IO[bytes], name: str, options: AnalyzeOptions) -> list[InputResult]:
    import tarfile

    results: list[InputResult] = []
    try:
        with tarfile.open(fileobj=opener, mode="r|*") as archive:
            for shown, content in tar_members(archive, name):
                if isinstance(content, str):
                    results.append(failed(shown, content, "warning"))
                else:
                    results.append(analyse_bytes(shown, content, options))
    except (tarfile.TarError, OSError, EOFError, zlib.error, ValueError) as error:
        results.append(failed(name, f"a damaged or cut-off tar archive, read up to here: {error}"))
    if not results:
        results.append(failed(name, "an empty tar archive"))
    return results


def _gzip_results(unit: Unit, path: str, options: AnalyzeOptions) -> list[InputResult]:
    import gzip

    try:
        with gzip.open(path, "rb") as stream:
            head = stream.read(filetype.HEAD_BYTES)
        if filetype.sniff(head).kind == "tar-archive":
            with open(path, "rb") as raw:
                return _tar_results(raw, unit.name, options)
        with gzip.open(path, "rb") as stream:
            data = read_capped(stream, unit.name)
    except (OSError, EOFError, zlib.error, ValueError) as error:
        return [failed(unit.name, f"a damaged gzip file, not read: {error}")]
    return [analyse_bytes(unit.name, data, options)]


def read_zip_member(path: str, member: str, name: str) -> bytes | str:
    """A ZIP member's bytes, or why they cannot be read (encrypted, damaged, too large)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive, archive.open(member) as stream:
            return read_capped(stream, name)
    except RuntimeError as error:  # an encrypted member
        return f"not read: {error}"
    except (OSError, zipfile.BadZipFile, EOFError, zlib.error, ValueError, NotImplementedError) as error:
        return f"a damaged archive member, not read: {error}"


def _file_results(unit: Unit, path: str, options: AnalyzeOptions) -> list[InputResult]:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or device named explicitly: read it once
            with open(path, "rb") as stream:
                return _data_results(unit.name, read_capped(stream, unit.name), options)
        with open(path, "rb") as handle:
            head = handle.read(filetype.HEAD_BYTES)
        kind = filetype.sniff(head).kind
        if kind == "gzip":
            return _gzip_results(unit, path, options)
        if kind == "tar-archive":
            with open(path, "rb") as raw:
                return _tar_results(raw, unit.name, options)
        sha256 = content_hash(path)
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        return [failed(unit.name, f"cannot read: {reason}")]
    return [_analyse(open_input(path, name=unit.name), options, sha256, unit.size)]


def _data_results(name: str, data: bytes, options: AnalyzeOptions) -> list[InputResult]:
    """Bytes already in memory (stdin, a unit shipped to a cluster): gzip and tar are opened here too."""
    kind = filetype.sniff(data[: filetype.HEAD_BYTES]).kind
    if kind == "gzip":
        import gzip

        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
                data = read_capped(stream, name)
        except (OSError, EOFError, zlib.error, ValueError) as error:
            return [failed(name, f"a damaged gzip file, not read: {error}")]
        kind = filetype.sniff(data[: filetype.HEAD_BYTES]).kind
    if kind == "tar-archive":
        return _tar_results(io.BytesIO(data), name, options)
    return [analyse_bytes(name, data, options)]


def analyse_unit(unit: Unit, options: AnalyzeOptions) -> list[InputResult]:
    """Every input of ``unit`` analysed, in order. Read errors become diagnostics of the input they hit;
    anything else raised is the caller's to turn into one (see :mod:`hvci.batch.pool`)."""
    if unit.problem is not None:
        return [failed(unit.name, unit.problem, unit.severity)]
    if unit.data is not None:
        return _data_results(unit.name, unit.data, options)
    assert unit.path is not None
    if unit.member is not None:
        data = read_zip_member(unit.path, unit.member, unit.name)
        return [failed(unit.name, data)] if isinstance(data, str) else _data_results(unit.name, data, options)
    return _file_results(unit, unit.path, options)
