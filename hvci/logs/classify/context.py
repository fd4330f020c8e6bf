"""What every classifier shares: the whole input's context, the evidence weights, small text helpers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import msgspec

from hvci.model import Weight
from parsers.records import MemoryIntegrityRecord, MemoryStringRecord, SymbolLineRecord
from symbols.modules import ModuleMap, normalize_name

if TYPE_CHECKING:  # (pefile and the PDB readers: imported only when symbols are given, see AnalyzeOptions)
    from symbols.resolve import SymbolResolver

DECIDING: Weight = "deciding"
SUPPORTING: Weight = "supporting"
CONFLICTING: Weight = "conflicting"


class Context(msgspec.Struct, frozen=True):
    """What the whole input tells about every incident in it, whenever it was printed."""

    modules: ModuleMap = msgspec.field(default_factory=ModuleMap)
    symbol_lines: Mapping[int, SymbolLineRecord] = msgspec.field(default_factory=dict)
    #: strings the user printed from memory (``dS``/``da``), by the address given to the command
    strings: Mapping[int, MemoryStringRecord] = msgspec.field(default_factory=dict)
    #: module (lower case) -> label -> count
    counters: Mapping[str, Mapping[str, int]] = msgspec.field(default_factory=dict)
    resolver: SymbolResolver | None = None
    #: normalize_name(module) -> "Name.sys"
    image_names: Mapping[str, str] = msgspec.field(default_factory=dict)
    #: (normalize_name(driver), category) -> ids of the banner / bug check incidents that report it
    violations: Mapping[tuple[str, str], Sequence[str]] = msgspec.field(default_factory=dict)
    #: the drivers Driver Verifier verified, as the input names them (``!verifier``, ``Enabled for X.sys``)
    verified_drivers: Sequence[str] = ()
    #: what the input says about memory integrity on the machine (``MemoryIntegrityRecord``), in order
    memory_integrity: Sequence[MemoryIntegrityRecord] = ()

    def image_name(self, module: str) -> str:
        """The image file name the input uses for a module (``lm`` says ``IntelHaxm``, ``!analyze``
        ``IMAGE_NAME`` or ``lmv`` say ``IntelHaxm.sys``)."""
        return self.image_names.get(normalize_name(module), module)


def hex_or_none(value: int | None) -> str | None:
    return None if value is None else f"{value:#x}"
