"""Entries in the user's cache folder: what a run built once and later runs read back instead.

Used for what costs more to build than to read (the checked knowledge base, :mod:`hvci.knowledge.cache`;
the prefilter's Hyperscan database, :mod:`parsers.fastscan`). An entry is ``key + CRC-32 + payload``: the
key names everything the payload was made from, so a reader that expects another key (new files, another
version) builds anew, and the CRC finds a cut or damaged payload. A CRC finds every accidental change; it
is no defence against someone who forges an entry on purpose, who could as well edit the code. Writing is
atomic (a temporary file renamed over the entry); a folder that cannot be written only costs the speed.

``HVCI_TRIAGE_CACHE_DIR`` names another folder; set empty, it turns the caches off.
"""

from __future__ import annotations

import os
import sys
import zlib


def cache_dir() -> str | None:
    """The folder of hvci-triage's caches, or None when caching is off or there is no home folder."""
    configured = os.environ.get("HVCI_TRIAGE_CACHE_DIR")
    if configured is not None:
        return configured or None
    base = os.environ.get("LOCALAPPDATA" if sys.platform == "win32" else "XDG_CACHE_HOME")
    if not base:
        home = os.path.expanduser("~")
        if home == "~":  # no home folder to be found
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "hvci-triage")


def entry_path(prefix: str, number: int, folder: str | os.PathLike[str] | None = None) -> str | None:
    """Where the entry ``prefix`` + ``number`` (8 hex digits) is kept, or None when caching is off."""
    where = cache_dir() if folder is None else os.fspath(folder)
    return None if where is None else os.path.join(where, f"{prefix}{number:08x}.bin")


def read_entry(entry: str, key: bytes) -> bytes | None:
    """The payload of the entry when it has ``key`` and is whole; None otherwise."""
    try:
        with open(entry, "rb") as file:
            data = file.read()
    except OSError:
        return None
    head = len(key)
    if data[:head] != key or len(data) < head + 4:
        return None
    payload = data[head + 4 :]
    if int.from_bytes(data[head : head + 4], "big") != zlib.crc32(payload):
        return None
    return payload


def write_entry(entry: str, key: bytes, payload: bytes, prefix: str) -> None:
    """Write the entry atomically; a folder that cannot be written is left as it is. Other entries named
    ``prefix...`` that were not written for :data:`STALE_SECONDS` are removed."""
    import tempfile  # only a run that rebuilds an entry writes one

    folder = os.path.dirname(entry)
    try:
        os.makedirs(folder, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{prefix}")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(key + zlib.crc32(payload).to_bytes(4, "big") + payload)
            os.replace(temporary, entry)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError:
        return
    _prune(folder, entry, prefix)


#: An entry not written for this long is taken for one of an install that is gone (each install location has
#: its own entry, and a clone or virtual environment that was deleted never removes its own).
STALE_SECONDS = 30 * 24 * 3600


def _prune(folder: str, keep: str, prefix: str) -> None:
    """Remove the other installs' entries that were not written for :data:`STALE_SECONDS`. Pruned at a
    write, which is rare (a first run, an upgrade); an install still in use whose entry is pruned only
    builds it again once."""
    import time

    oldest = time.time() - STALE_SECONDS
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        path = os.path.join(folder, name)
        if not (name.startswith(prefix) and name.endswith(".bin")) or path == keep:
            continue
        try:
            if os.stat(path).st_mtime < oldest:
                os.unlink(path)
        except OSError:
            pass
