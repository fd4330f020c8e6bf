"""KMDF's WdfFunctions table as data (``kmdf.toml``): which framework method each table index calls."""

from __future__ import annotations

import functools
import os
from typing import Any

import msgspec

from hvci.knowledge.tables import cached_table


class KmdfTable(msgspec.Struct, frozen=True):
    by_index: dict[int, str]  # table index -> method name
    component: str  # WDF_BIND_INFO.Component of a KMDF driver ("KmdfLibrary")
    source: str


@functools.cache
def load() -> KmdfTable:
    path = os.path.join(os.path.dirname(__file__), "kmdf.toml")
    return cached_table(path, __file__, KmdfTable, _table)


def _table(data: dict[str, Any]) -> KmdfTable:
    functions = data["functions"]
    if not isinstance(functions, dict) or not all(isinstance(i, int) and i >= 0 for i in functions.values()):
        raise ValueError("kmdf.toml: [functions] maps method names to table indexes")
    by_index = {index: name for name, index in functions.items()}
    if len(by_index) != len(functions):
        raise ValueError("kmdf.toml: two methods share a table index")
    return KmdfTable(by_index, str(data["component"]), str(data["source"]))
