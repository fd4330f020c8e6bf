"""SHA-256 of inputs, without OpenSSL's start-up for small ones.

``hashlib.sha256`` is OpenSSL's: the fastest on large data, but the first ``import hashlib`` loads libcrypto,
about 2.5 ms of a one-line ``analyze`` that otherwise takes 60. CPython carries its own SHA-256 as well
(``_sha256`` up to 3.11, ``_sha2`` from 3.12), loaded in microseconds and about 1.5 times slower per byte
(measured on this project's machine: 13 against 8.4 ms per MiB), so it is the cheaper of the two below
:data:`SMALL` bytes, unless ``hashlib`` is loaded already. Both give the same digest; where the built-in one
is missing (another interpreter), hashlib is used.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Protocol

#: Up to this many bytes the built-in SHA-256 costs less than loading OpenSSL's (see the module docstring).
SMALL = 256 * 1024


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


def _builtin() -> Callable[[], Digest] | None:
    for module in ("_sha2", "_sha256"):
        try:
            constructor: Callable[[], Digest] = importlib.import_module(module).sha256
        except (ImportError, AttributeError):
            continue
        return constructor
    return None


def sha256(size: int) -> Digest:
    """A new SHA-256 for about ``size`` bytes of data."""
    if size <= SMALL and "hashlib" not in sys.modules:
        builtin = _builtin()
        if builtin is not None:
            return builtin()
    import hashlib

    return hashlib.sha256()
