"""The NX opt-in pattern as data (``nx_optin.toml``): which calls tell a driver the Windows version it runs
on, and from which version the opt-in gives non-executable memory."""

from __future__ import annotations

import functools
import os
from typing import Any

import msgspec

from hvci.knowledge.tables import cached_table


class NxOptIn(msgspec.Struct, frozen=True):
    version_apis: frozenset[str]
    minimum: str  # the first Windows on which the opt-in stores the NX values, e.g. "Windows 8"
    source: str


@functools.cache
def load() -> NxOptIn:
    path = os.path.join(os.path.dirname(__file__), "nx_optin.toml")
    return cached_table(path, __file__, NxOptIn, _table)


def _table(data: dict[str, Any]) -> NxOptIn:
    apis = data["version_apis"]
    if not isinstance(apis, list) or not all(isinstance(a, str) and a for a in apis) or not apis:
        raise ValueError("nx_optin.toml: version_apis must be a non-empty list of API names")
    return NxOptIn(frozenset(apis), str(data["minimum"]), str(data["source"]))
