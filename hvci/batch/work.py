"""Analysing one :class:`~hvci.batch.units.Unit`, in a worker process: the only place archives are opened.

The analysis is a stream of :data:`Part` s: each input's final incidents in batches of at most
:data:`BATCH` as the pipeline settles them (:mod:`hvci.logs.final`), then the input's :class:`InputResult`
(without incidents) that closes it; so a worker never holds more than a batch of a 300 MB log, and the parent
writes the incidents as they come (:mod:`hvci.batch.run`). :func:`analyse_unit` gathers the stream into
whole results for those who want them at once (a Dask task, tests).

What a file is comes from :func:`parsers.filetype.sniff` (the one sniffer): a gzip file is decompressed
and, when a tar archive is inside, read as one; a tar archive's file members are read front to back; any
other file goes to the log pipeline, which reads text, crash dumps and event logs and names what it cannot.
Archive members and decompressed files are read into memory up to :data:`MAX_IN_MEMORY` bytes (an archive
bomb stops there with a diagnostic). Every input gets its SHA-256 (the results store skips inputs it has).
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING, Protocol

import msgspec
from msgspec.structs import replace

from hvci.batch.units import Unit, content_hash, member_name
from hvci.digest import sha256
from hvci.logs.final import FinalIncidents
from hvci.logs.options import AnalyzeOptions
from hvci.model import Incident
from parsers import filetype
from parsers.records import Diagnostic, InputInfo, Severity, Span
from parsers.stream import Input, open_input

if TYPE_CHECKING:
    import tarfile

# The archive modules (gzip, tarfile, zipfile, zlib) are imported by the functions that open archives: most
# inputs are plain files, and a one-file run should not pay for them at start-up.

#: The most bytes read into memory for one archive member, decompressed file or FIFO.
MAX_IN_MEMORY = 512 * 1024 * 1024
_PIECE = 1024 * 1024

#: The most incidents sent in one message from a worker to the parent (or handed on at once in process). A
#: batch is whole incidents as objects, a few kilobytes each: at 512 they were 1.5 MB of the peak at the end
#: of a long log's analysis (issue 16); a smaller batch costs more messages, which are cheap.
BATCH = 64


class InputResult(msgspec.Struct, frozen=True):
    """One input's outcome: what the pipeline learnt about it, its incidents (final versions, in line
    order), its content hash and size. An input that could not be read has an ``error`` diagnostic, no
    incidents and no hash."""

    info: InputInfo
    incidents: tuple[Incident, ...] = ()
    sha256: str | None = None
    size: int = 0


class IncidentBatch(msgspec.Struct, frozen=True):
    """Final incidents of the input being read, in report order."""

    incidents: tuple[Incident, ...]


#: What the analysis of a unit streams: incident batches, each input closed by its result.
Part = IncidentBatch | InputResult


#: The format of an input that was not read (:func:`failed`).
UNREAD = "unread"


def failed(name: str, message: str, severity: Severity = "error") -> InputResult:
    """The result of an input that was not read: named, with why, and never clean."""
    diagnostic = Diagnostic(Span(name, 0, 0), message, severity)
    return InputResult(InputInfo(name, UNREAD, "unknown", diagnostics=(diagnostic,)))


def _analyse(inp: Input, options: AnalyzeOptions, sha256: str | None, size: int) -> Iterator[Part]:
    stream = FinalIncidents(inp, options)
    batch: list[Incident] = []
    for incident in stream:
        batch.append(incident)
        if len(batch) >= BATCH:
            yield IncidentBatch(tuple(batch))
            batch.clear()
    if batch:
        yield IncidentBatch(tuple(batch))
    assert stream.info is not None
    yield InputResult(stream.info, (), sha256, size)


def gather(parts: Iterable[Part]) -> list[InputResult]:
    """A stream of parts as whole results, each with its incidents."""
    results: list[InputResult] = []
    incidents: list[Incident] = []
    for part in parts:
        if isinstance(part, IncidentBatch):
            incidents.extend(part.incidents)
        else:
            results.append(replace(part, incidents=(*part.incidents, *incidents)))
            incidents = []
    return results


def scatter(results: Iterable[InputResult]) -> Iterator[Part]:
    """Whole results (a Dask task's) as a stream of parts: the inverse of :func:`gather`."""
    for result in results:
        if result.incidents:
            yield IncidentBatch(result.incidents)
        yield replace(result, incidents=())


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


def analyse_bytes(name: str, data: bytes, options: AnalyzeOptions, *, hashed: bool) -> Iterator[Part]:
    """Bytes in memory analysed as one input; ``hashed``: their SHA-256 is wanted (:attr:`Unit.hashed`)."""
    inp = open_input(None, data=data, name=name)
    if not hashed:
        return _analyse(inp, options, None, len(data))
    digest = sha256(len(data))
    digest.update(data)
    return _analyse(inp, options, digest.hexdigest(), len(data))


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


def _tar_results(opener: IO[bytes], name: str, options: AnalyzeOptions, *, hashed: bool) -> Iterator[Part]:
    import tarfile
    import zlib

    members = 0
    try:
        with tarfile.open(fileobj=opener, mode="r|*") as archive:
            for shown, content in tar_members(archive, name):
                members += 1
                if isinstance(content, str):
                    yield failed(shown, content, "warning")
                else:
                    yield from analyse_bytes(shown, content, options, hashed=hashed)
    except (tarfile.TarError, OSError, EOFError, zlib.error, ValueError) as error:
        members += 1
        yield failed(name, f"a damaged or cut-off tar archive, read up to here: {error}")
    if not members:
        yield failed(name, "an empty tar archive")


def _gzip_results(unit: Unit, path: str, options: AnalyzeOptions) -> Iterator[Part]:
    import gzip
    import zlib

    try:
        with gzip.open(path, "rb") as stream:
            head = stream.read(filetype.HEAD_BYTES)
        if filetype.sniff(head).kind != "tar-archive":
            with gzip.open(path, "rb") as stream:
                data = read_capped(stream, unit.name)
    except (OSError, EOFError, zlib.error, ValueError) as error:
        yield failed(unit.name, f"a damaged gzip file, not read: {error}")
        return
    if filetype.sniff(head).kind == "tar-archive":
        with open(path, "rb") as raw:
            yield from _tar_results(raw, unit.name, options, hashed=unit.hashed)
    else:
        yield from analyse_bytes(unit.name, data, options, hashed=unit.hashed)


def read_zip_member(path: str, member: str, name: str) -> bytes | str:
    """A ZIP member's bytes, or why they cannot be read (encrypted, damaged, too large)."""
    import zipfile
    import zlib

    try:
        with zipfile.ZipFile(path) as archive, archive.open(member) as stream:
            return read_capped(stream, name)
    except RuntimeError as error:  # an encrypted member
        return f"not read: {error}"
    except (OSError, zipfile.BadZipFile, EOFError, zlib.error, ValueError, NotImplementedError) as error:
        return f"a damaged archive member, not read: {error}"


def _file_results(unit: Unit, path: str, options: AnalyzeOptions) -> Iterator[Part]:
    data: bytes | None = None
    kind = sha256 = None
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or device named explicitly: read it once
            with open(path, "rb") as stream:
                data = read_capped(stream, unit.name)
        else:
            with open(path, "rb") as handle:
                head = handle.read(filetype.HEAD_BYTES)
            kind = filetype.sniff(head).kind
            if kind not in ("gzip", "tar-archive") and unit.hashed:
                sha256 = content_hash(path)
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        yield failed(unit.name, f"cannot read: {reason}")
        return
    if data is not None:
        yield from _data_results(unit.name, data, options, hashed=unit.hashed)
    elif kind == "gzip":
        yield from _gzip_results(unit, path, options)
    elif kind == "tar-archive":
        yield from _opened_tar(unit, path, options)
    else:
        yield from _analyse(open_input(path, name=unit.name), options, sha256, unit.size)


def _opened_tar(unit: Unit, path: str, options: AnalyzeOptions) -> Iterator[Part]:
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below, once the members are streamed
    except OSError as error:
        yield failed(unit.name, f"cannot read: {error.strerror or error}")
        return
    with raw:
        yield from _tar_results(raw, unit.name, options, hashed=unit.hashed)


def _data_results(name: str, data: bytes, options: AnalyzeOptions, *, hashed: bool) -> Iterator[Part]:
    """Bytes already in memory (stdin, a unit shipped to a cluster): gzip and tar are opened here too."""
    kind = filetype.sniff(data[: filetype.HEAD_BYTES]).kind
    if kind == "gzip":
        import gzip
        import zlib

        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
                data = read_capped(stream, name)
        except (OSError, EOFError, zlib.error, ValueError) as error:
            yield failed(name, f"a damaged gzip file, not read: {error}")
            return
        kind = filetype.sniff(data[: filetype.HEAD_BYTES]).kind
    if kind == "tar-archive":
        yield from _tar_results(io.BytesIO(data), name, options, hashed=hashed)
    else:
        yield from analyse_bytes(name, data, options, hashed=hashed)


def stream_unit(unit: Unit, options: AnalyzeOptions) -> Iterator[Part]:
    """Every input of ``unit`` analysed, in order, as a stream of parts (see the module docstring). Read
    errors become diagnostics of the input they hit; anything else raised is the caller's to turn into one
    (see :mod:`hvci.batch.pool`)."""
    if unit.problem is not None:
        yield failed(unit.name, unit.problem, unit.severity)
    elif unit.data is not None:
        yield from _data_results(unit.name, unit.data, options, hashed=unit.hashed)
    elif unit.member is not None:
        assert unit.path is not None
        data = read_zip_member(unit.path, unit.member, unit.name)
        if isinstance(data, str):
            yield failed(unit.name, data)
        else:
            yield from _data_results(unit.name, data, options, hashed=unit.hashed)
    else:
        assert unit.path is not None
        yield from _file_results(unit, unit.path, options)


def analyse_unit(unit: Unit, options: AnalyzeOptions) -> list[InputResult]:
    """:func:`stream_unit` gathered: every input's result with its incidents."""
    return gather(stream_unit(unit, options))
