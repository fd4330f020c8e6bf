"""Which kept crashes a new module list or ``ln`` can tell more about.

A long log holds many sessions, each with its own ``lm``; looking at every crash seen so far at each one
made the analysis quadratic (issue 10). The pipeline keeps this index of the crashes whose caller still
lacks a module or a function, so each new ``lm`` or ``ln`` looks at those only.
"""

from __future__ import annotations

import msgspec

from hvci.logs.correlate import same_value
from hvci.logs.kept import Tracked
from parsers.records import ModuleListRecord, Record, SymbolLineRecord

_LOW32 = 0xFFFF_FFFF


class Awaiting(msgspec.Struct):
    """The kept crash groups whose incidents a later record may still tell more about: a module list,
    while a caller's module is unknown; an ``ln``, while its function is (found by the low 32 bits of the
    address, since an x86 pointer may be printed sign-extended). Indexes, so that each new ``lm`` or ``ln``
    of a long log looks at those groups only, not at every crash seen so far."""

    module: dict[int, Tracked] = msgspec.field(default_factory=dict)  # seq -> group
    line: dict[int, dict[int, Tracked]] = msgspec.field(default_factory=dict)  # low 32 bits -> seq -> group
    keys: dict[int, tuple[int, ...]] = msgspec.field(default_factory=dict)  # seq -> its keys in ``line``

    def update(self, tracked: Tracked) -> None:
        self.drop(tracked.seq)
        keys: set[int] = set()
        for address, no_module, no_function in tracked.unresolved:
            if no_module:
                self.module[tracked.seq] = tracked
            if no_function:
                keys.add(address & _LOW32)
        for key in keys:
            self.line.setdefault(key, {})[tracked.seq] = tracked
        if keys:
            self.keys[tracked.seq] = tuple(keys)

    def drop(self, seq: int) -> None:
        self.module.pop(seq, None)
        for key in self.keys.pop(seq, ()):
            bucket = self.line[key]
            bucket.pop(seq, None)
            if not bucket:
                del self.line[key]

    def for_record(self, record: Record) -> list[Tracked]:
        """The groups the record may enrich, in input order."""
        if isinstance(record, ModuleListRecord):
            found = self.module
        elif isinstance(record, SymbolLineRecord) and record.address is not None:
            found = self.line.get(record.address & _LOW32, {})
        else:
            return []
        return [found[seq] for seq in sorted(found)]


def enrichable(tracked: Tracked, record: Record) -> bool:
    """Whether a module list or ``ln`` that just arrived can tell more about an emitted incident's caller:
    a module list, when the caller's module is unknown; an ``ln``, when it names the caller's address."""
    for address, no_module, no_function in tracked.unresolved:
        if isinstance(record, ModuleListRecord) and no_module:
            return True
        if (
            isinstance(record, SymbolLineRecord)
            and record.address is not None
            and no_function
            and same_value(record.address, address)
        ):
            return True
    return False
