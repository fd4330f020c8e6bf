"""The start-up cache of the knowledge base: the checked files, kept between runs in the user's cache folder.

Every command that explains or classifies needs the knowledge base, and parsing its TOML files and checking
them costs several times what Python takes to start. So the result of :func:`hvci.knowledge.kb.read_files`
(every record, after every per-file and cross-file check, with the remediations) is written once as
MessagePack and read back by later runs.

A cache must never give other knowledge than the files: the entry's key names every knowledge file and
every module that reads and checks them with its size and the CRC-32 of its bytes (and the Python and
msgspec versions), and the payload carries its own CRC-32. A CRC finds every accidental change (an edit,
an upgrade, a cut or damaged entry); it is no defence against someone who forges an entry on purpose, who
could as well edit the knowledge files or the code (and it spares the ~3 ms ``hashlib`` takes to import,
more than the rest of a cache hit). Anything else -- no entry, another key, a changed or cut
payload, a payload that does not decode into the records (whose ``__post_init__`` checks run again) --
means the files are read and checked as without a cache, and the entry is written anew. Writing is
atomic (a temporary file renamed over the entry); a folder that cannot be written only costs the speed.

``HVCI_TRIAGE_CACHE_DIR`` names another folder; set empty, it turns the cache off.
"""

from __future__ import annotations

import os
import sys
import zlib
from typing import TYPE_CHECKING

from hvci.knowledge.files import KnowledgeFiles

if TYPE_CHECKING:
    from pathlib import Path

_MAGIC = b"hvci-triage knowledge cache 1\n"
#: the modules whose code decides what the files become (a change to them changes the key)
_READERS = ("records.py", "eras.py", "files.py", "crossrefs.py", "kb.py", "cache.py")


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


def cached_files(directory: str | Path, folder: str | Path | None = None) -> KnowledgeFiles:
    """The checked files of ``directory``: from the cache entry in ``folder`` (default :func:`cache_dir`)
    when it was made from these very files, else read and checked now (and the entry written).

    Paths are ``os.path`` text here: a cache hit imports no ``pathlib``."""
    import msgspec

    folder = cache_dir() if folder is None else folder
    if folder is None:
        return _read_files(directory, remediations=False)
    key = _key(str(directory), msgspec.__version__)
    entry = os.path.join(folder, f"knowledge-{zlib.crc32(str(directory).encode()):08x}.bin")
    files = _read_entry(entry, key)
    if files is None:
        files = _read_files(directory, remediations=True)
        _write_entry(entry, key, msgspec.msgpack.encode(files))
    return files


def _read_files(directory: str | Path, *, remediations: bool) -> KnowledgeFiles:
    from pathlib import Path

    from hvci.knowledge.kb import read_files

    return read_files(Path(directory), remediations=remediations)


def _key(directory: str, msgspec_version: str) -> bytes:
    """One line per thing the checked files depend on (see the module docstring)."""
    readers = os.path.dirname(os.path.realpath(__file__))
    remediation = os.path.join(directory, "remediation")
    sources = [
        *_toml_files(directory),
        *_toml_files(remediation),
        *(os.path.join(readers, name) for name in _READERS),
    ]
    lines = [f"python {sys.version}", f"msgspec {msgspec_version}"]
    for path in sources:
        with open(path, "rb") as file:
            data = file.read()
        lines.append(f"{os.path.basename(path)} {len(data)} {zlib.crc32(data):08x}")
    return ("\n".join(lines) + "\n\n").encode("utf-8", "replace")


def _toml_files(directory: str) -> list[str]:
    return [os.path.join(directory, name) for name in sorted(os.listdir(directory)) if name.endswith(".toml")]


def _read_entry(entry: str, key: bytes) -> KnowledgeFiles | None:
    """The files the entry holds when it has ``key`` and is whole; None otherwise."""
    import msgspec

    try:
        with open(entry, "rb") as file:
            data = file.read()
    except OSError:
        return None
    head = len(_MAGIC) + len(key)
    if data[:head] != _MAGIC + key or len(data) < head + 4:
        return None
    payload = data[head + 4 :]
    if int.from_bytes(data[head : head + 4], "big") != zlib.crc32(payload):
        return None
    try:
        return msgspec.msgpack.decode(payload, type=KnowledgeFiles)
    except (msgspec.DecodeError, ValueError):  # a ValidationError is a DecodeError
        return None


def _write_entry(entry: str, key: bytes, payload: bytes) -> None:
    """Write the entry atomically; a folder that cannot be written is left as it is."""
    import tempfile  # only a run that rebuilds the entry writes one

    folder = os.path.dirname(entry)
    try:
        os.makedirs(folder, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".knowledge-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(_MAGIC + key + zlib.crc32(payload).to_bytes(4, "big") + payload)
            os.replace(temporary, entry)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError:
        return
    _prune(folder, keep=entry)


#: An entry not written for this long is taken for one of an install that is gone (each install location has
#: its own entry, and a clone or virtual environment that was deleted never removes its own).
STALE_SECONDS = 30 * 24 * 3600


def _prune(folder: str, keep: str) -> None:
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
        if not (name.startswith("knowledge-") and name.endswith(".bin")) or path == keep:
            continue
        try:
            if os.stat(path).st_mtime < oldest:
                os.unlink(path)
        except OSError:
            pass
