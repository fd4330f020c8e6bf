"""Small knowledge tables of their own TOML file (``kmdf.toml``, ``nx_optin.toml``), kept in the user's cache.

Every ``scan`` reads both for every image, and importing ``tomllib`` and parsing them cost ~5 ms of a
command whose start is ~90 ms. So the table a file gives is written once to the user's cache folder as
MessagePack (:mod:`parsers.usercache`) and read back by later runs. The entry's key names the file and the
module that builds the table from it (size and CRC-32 of each) and the Python and msgspec versions: an
edited file or reader is read and checked anew, as is a cut or damaged entry. Without a cache folder the
file is read every time.
"""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from parsers import usercache

T = TypeVar("T", bound=msgspec.Struct)

_ENTRY_PREFIX = "table-"
_MAGIC = b"hvci-triage knowledge table 1\n"


def cached_table(path: str, reader: str, kind: type[T], build: Callable[[dict[str, Any]], T]) -> T:
    """The table ``build`` makes of the TOML file ``path`` (raising ``ValueError`` for a bad one), from the
    cache when an entry was made from this file by this ``reader`` (the building module's source)."""
    with open(path, "rb") as file:
        data = file.read()
    key = _MAGIC + _key(path, data, reader)
    entry = usercache.entry_path(_ENTRY_PREFIX, zlib.crc32(key))
    payload = None if entry is None else usercache.read_entry(entry, key)
    if payload is not None:
        try:
            return msgspec.msgpack.decode(payload, type=kind)
        except (msgspec.DecodeError, ValueError):
            pass
    import tomllib  # only a run that finds no entry parses the file

    table = build(tomllib.loads(data.decode("utf-8")))
    if entry is not None:
        usercache.write_entry(entry, key, msgspec.msgpack.encode(table), _ENTRY_PREFIX)
    return table


def _key(path: str, data: bytes, reader: str) -> bytes:
    with open(reader, "rb") as file:
        code = file.read()
    lines = [
        f"python {sys.version}",
        f"msgspec {msgspec.__version__}",
        f"{os.path.basename(path)} {len(data)} {zlib.crc32(data):08x}",
        f"{os.path.basename(reader)} {len(code)} {zlib.crc32(code):08x}",
    ]
    return ("\n".join(lines) + "\n\n").encode("utf-8", "replace")
