"""An archive's file members as bytes, for a reader that wants them in memory (the triage view): ZIP
members by name, tar members in order, a gzip file decompressed (a tar inside it opened too). Batch runs
analyse members inside their workers (:mod:`hvci.batch.work`); this uses the same readers and the same
size limit, and names members the same way (``lab.zip!host1/kd.log``).
"""

from __future__ import annotations

import io
import zlib
from typing import IO

from hvci.batch.units import Unit, zip_units
from hvci.batch.work import read_capped, read_zip_member, tar_members
from parsers import filetype

#: (name shown, the member's bytes or why it was not read)
Member = tuple[str, bytes | str]


def archive_members(path: str) -> list[Member] | None:
    """The members of the archive at ``path``; ``None`` when the file is not a ZIP, tar or gzip file (or
    cannot be read, which the caller's own reader then reports)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(filetype.HEAD_BYTES)
    except OSError:
        return None
    kind = filetype.sniff(head).kind
    if kind == "zip-archive":
        return [_zip_member(unit) for unit in zip_units(path)]
    if kind == "tar-archive":
        with open(path, "rb") as raw:
            return _tar(raw, path)
    if kind == "gzip":
        return _gzip(path)
    return None


def _zip_member(unit: Unit) -> Member:
    if unit.problem is not None or unit.path is None or unit.member is None:
        return unit.name, unit.problem or "not read"
    return unit.name, read_zip_member(unit.path, unit.member, unit.name)


def _tar(stream: IO[bytes], name: str) -> list[Member]:
    import tarfile

    members: list[Member] = []
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as archive:
            members.extend(tar_members(archive, name))
    except (tarfile.TarError, OSError, EOFError, zlib.error, ValueError) as error:
        members.append((name, f"a damaged or cut-off tar archive, read up to here: {error}"))
    return members or [(name, "an empty tar archive")]


def _gzip(path: str) -> list[Member]:
    import gzip

    try:
        with gzip.open(path, "rb") as stream:
            data = read_capped(stream, path)
    except (OSError, EOFError, zlib.error, ValueError) as error:
        return [(path, f"a damaged gzip file, not read: {error}")]
    if filetype.sniff(data[: filetype.HEAD_BYTES]).kind == "tar-archive":
        return _tar(io.BytesIO(data), path)
    return [(path, data)]
