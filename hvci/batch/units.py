"""Planning a batch: command-line paths -> :class:`Unit` s of work, in a deterministic order.

A unit is what one worker analyses at a time: a file, one member of a ZIP archive (members are independent,
so a zip of a thousand logs spreads over every worker), a whole tar archive (``.tar``, ``.tar.gz``: a
compressed tar can only be read front to back, so one worker streams it), or the bytes read from stdin. A
path that cannot be read at all (dangling link, FIFO found in a folder, damaged archive) becomes a unit with
a :attr:`Unit.problem` and no work, so it is named in the report instead of being dropped.

The parent process opens nothing but regular files here, and reads only their first bytes (to find ZIP
archives) and a ZIP's central directory; everything else, sniffing included, happens in the workers.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import BinaryIO

import msgspec

from hvci import digest
from parsers.records import Severity
from parsers.walk import expand

#: The magic numbers of a ZIP archive (local file header, empty archive): APPNOTE 4.3.7 / 4.3.16.
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")

#: An archive member names its archive: ``lab.zip!host1/kd.log`` (the ``!`` of jar: URLs).
MEMBER_SEPARATOR = "!"


class Unit(msgspec.Struct, frozen=True):
    """One piece of work. ``path`` is the file on disk (for a ZIP member, the archive); ``member`` the
    member's name inside it; ``data`` bytes already read (stdin); ``size`` the bytes it is expected to
    read (for progress); ``problem`` why there is nothing to read."""

    name: str
    path: str | None = None
    member: str | None = None
    data: bytes | None = None
    size: int = 0
    problem: str | None = None
    severity: Severity = "error"  # of the problem: "info" for an input the results store already has
    #: whether an input's SHA-256 is computed (how the results store knows an input again): 0.07 s of CPU per
    #: 100 MB, as much as grep takes to search it, so a run without a store does without
    hashed: bool = True


def member_name(archive: str, member: str) -> str:
    return f"{archive}{MEMBER_SEPARATOR}{member}"


def _is_zip(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) in ZIP_MAGIC
    except OSError:
        return False  # the worker reports why it cannot be read


def zip_units(path: str) -> list[Unit]:
    """One unit per file member, in the archive's order; a damaged archive is one unit with a problem."""
    import zipfile  # only for a ZIP archive: a run over plain files starts without it

    try:
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
    except (OSError, zipfile.BadZipFile, ValueError) as error:
        return [Unit(path, problem=f"a damaged ZIP archive, not read: {error}")]
    if not members:
        return [Unit(path, problem="an empty ZIP archive")]
    return [Unit(member_name(path, m.filename), path, m.filename, size=m.file_size) for m in members]


def _file_units(path: str) -> list[Unit]:
    try:
        info = os.stat(path)
    except OSError as error:
        return [Unit(path, problem=f"cannot read: {error.strerror or error}")]
    if stat.S_ISREG(info.st_mode) and _is_zip(path):
        return zip_units(path)
    return [Unit(path, path, size=info.st_size)]


def plan(paths: Sequence[str], stdin: BinaryIO | None = None) -> list[Unit]:
    """The units for ``paths`` in order (see :func:`parsers.walk.expand`); ``-`` reads ``stdin`` here,
    once, since a worker cannot. A path named twice is read once."""
    units: list[Unit] = []
    seen: set[str] = set()
    for entry in expand(paths):
        if entry.name in seen:  # named twice (a folder and a file in it): read once, one set of incident ids
            continue
        seen.add(entry.name)
        if entry.problem is not None:
            units.append(Unit(entry.name, problem=entry.problem))
        elif entry.name == "-":
            data = stdin.read() if stdin is not None else b""
            units.append(Unit("<stdin>", data=data, size=len(data)))
        else:
            units.extend(_file_units(entry.name))
    return units


def content_hash(path: str) -> str:
    """The SHA-256 of a file's bytes (how the results store recognises an input it has seen)."""
    with open(path, "rb") as handle:
        hashed = digest.sha256(os.fstat(handle.fileno()).st_size)
        while piece := handle.read(1 << 20):
            hashed.update(piece)
    return hashed.hexdigest()


def skip_known(units: Sequence[Unit], known: Callable[[Iterable[str]], Mapping[str, int]]) -> list[Unit]:
    """``units`` with every file whose content hash ``known`` returns (hash -> run) turned into a note
    instead of work; archives, compressed files and stdin are always read (the store holds the hashes of
    their contents, not of the archive)."""
    hashes: dict[int, str] = {}
    for index, unit in enumerate(units):
        if unit.path is not None and unit.member is None and unit.problem is None:
            try:
                if stat.S_ISREG(os.stat(unit.path).st_mode):
                    hashes[index] = content_hash(unit.path)
            except OSError:
                continue  # the worker names why
    seen = known(hashes.values())
    out = list(units)
    for index, sha256 in hashes.items():
        if sha256 in seen:
            note = f"already in the results store (run {seen[sha256]}, same SHA-256); --force reads it again"
            out[index] = Unit(units[index].name, problem=note, severity="info")
    return out


def total_bytes(units: Sequence[Unit]) -> int:
    return sum(u.size for u in units)
