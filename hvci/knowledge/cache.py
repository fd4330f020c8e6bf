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
from parsers import usercache

if TYPE_CHECKING:
    from pathlib import Path

_MAGIC = b"hvci-triage knowledge cache 1\n"
_PREFIX = "knowledge-"
cache_dir = usercache.cache_dir
STALE_SECONDS = usercache.STALE_SECONDS
#: the modules whose code decides what the files become (a change to them changes the key)
_READERS = ("records.py", "eras.py", "triage.py", "files.py", "crossrefs.py", "kb.py", "cache.py")


def cached_files(directory: str | Path, folder: str | Path | None = None) -> KnowledgeFiles:
    """The checked files of ``directory``: from the cache entry in ``folder`` (default :func:`cache_dir`)
    when it was made from these very files, else read and checked now (and the entry written).

    Paths are ``os.path`` text here: a cache hit imports no ``pathlib``."""
    import msgspec

    folder = cache_dir() if folder is None else folder
    if folder is None:
        return _read_files(directory, remediations=False)
    key = _key(str(directory), msgspec.__version__)
    entry = usercache.entry_path(_PREFIX, zlib.crc32(str(directory).encode()), folder)
    assert entry is not None
    files = _read_entry(entry, key)
    if files is None:
        files = _read_files(directory, remediations=True)
        usercache.write_entry(entry, _MAGIC + key, msgspec.msgpack.encode(files), _PREFIX)
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

    payload = usercache.read_entry(entry, _MAGIC + key)
    if payload is None:
        return None
    try:
        return msgspec.msgpack.decode(payload, type=KnowledgeFiles)
    except (msgspec.DecodeError, ValueError):  # a ValidationError is a DecodeError
        return None
