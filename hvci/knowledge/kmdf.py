"""KMDF's WdfFunctions table as data (``kmdf.toml``): which framework method each table index calls."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path

import msgspec


class KmdfTable(msgspec.Struct, frozen=True):
    by_index: dict[int, str]  # table index -> method name
    component: str  # WDF_BIND_INFO.Component of a KMDF driver ("KmdfLibrary")
    source: str


@functools.cache
def load() -> KmdfTable:
    data = tomllib.loads(Path(__file__).with_name("kmdf.toml").read_text(encoding="utf-8"))
    functions = data["functions"]
    if not isinstance(functions, dict) or not all(isinstance(i, int) and i >= 0 for i in functions.values()):
        raise ValueError("kmdf.toml: [functions] maps method names to table indexes")
    by_index = {index: name for name, index in functions.items()}
    if len(by_index) != len(functions):
        raise ValueError("kmdf.toml: two methods share a table index")
    return KmdfTable(by_index, str(data["component"]), str(data["source"]))
