"""How to analyse (:class:`AnalyzeOptions`), apart from the pipeline that does it.

Every ``analyze`` builds its options before it knows whether an input has anything to classify; kept here,
they cost no pipeline, correlator or module map to import, and an input whose lines are all noise never
loads them (:mod:`hvci.logs.final`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from symbols.modules import ModuleMap
    from symbols.resolve import SymbolResolver

#: A crash group stays open for follow-up records (stacks, ``ln``, a late ``!analyze``) until this many
#: lines have passed since the last record that joined it; this bounds the look-back of the stream
#: (:mod:`hvci.logs.correlate`).
LOOK_BACK_LINES = 20_000


class AnalyzeOptions(msgspec.Struct, frozen=True):
    """How to analyse. ``symbol_path`` uses WinDbg syntax (``srv*C:\\cache*https://...;C:\\pdbs``);
    ``image_dirs`` are folders holding the driver images (``.sys``) and PDBs; ``modules`` are extra
    ``NAME=BASE[:SIZE]`` ranges for inputs that print no ``lm``."""

    symbol_path: str | None = None
    image_dirs: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    look_back_lines: int = LOOK_BACK_LINES
    idle_seconds: float = 0.5

    def user_modules(self) -> ModuleMap:
        """The ``--module`` ranges; raises ``ValueError`` with a command-line message on a bad spec."""
        from symbols.modules import ModuleMap

        return ModuleMap.from_specs(self.modules)

    def resolver(self) -> SymbolResolver | None:
        """A symbol resolver when symbols or images were given; without them ``lm`` + ``ln`` still give
        module + offset and the debugger's own symbols."""
        if self.symbol_path is None and not self.image_dirs:
            return None
        from symbols.resolve import SymbolResolver  # pefile and the PDB readers: only runs given symbols

        return SymbolResolver(self.symbol_path, list(self.image_dirs))
