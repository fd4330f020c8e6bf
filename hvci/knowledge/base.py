"""The knowledge base as the commands see it: every record of the knowledge files, indexed for lookup.

:mod:`hvci.knowledge.kb` builds it (and names everything here); it is a msgspec struct like the records it
holds, which costs nothing to define once msgspec is imported for them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec

from hvci.knowledge.records import (
    M_VARIANT,
    AffectedApi,
    BannerFormat,
    BugCheckInfo,
    Category,
    CiReason,
    ConstantEntry,
    ConstantTable,
    CounterLabel,
    EventInfo,
    ImageRule,
    SubcodeMeaning,
    VerifierFacts,
)
from hvci.knowledge.triage import Triage


def normalize_label(label: str) -> str:
    """Key for counter labels: case, spaces and a trailing colon do not matter (``/query`` lowercases)."""
    return re.sub(r"\s+", "", label).rstrip(":").lower()


class KnowledgeBase(msgspec.Struct, frozen=True):
    """The knowledge base as the commands use it: the records of every file, indexed."""

    categories: Mapping[str, Category]
    subcodes: tuple[SubcodeMeaning, ...]
    subcode_policy: str  # how a number with several meanings is decided, for users
    bugchecks: Mapping[int, BugCheckInfo]
    kernel_images: frozenset[str]  # the kernel's module names, lower case, without extension
    banner_formats: tuple[BannerFormat, ...]
    counters: tuple[CounterLabel, ...]
    verifier: VerifierFacts
    constants: Mapping[str, ConstantTable]
    affected_apis: tuple[AffectedApi, ...]
    events: Mapping[int, EventInfo]
    ci_reasons: Mapping[int, CiReason]
    code_integrity_block: tuple[int, int]  # inclusive 0xC4 Arg1 range of the code-integrity checks
    image_rules: Mapping[str, ImageRule]
    #: the code-integrity subcodes whose current meaning gives the calling driver code in Arg2
    caller_subcodes: frozenset[int]
    #: where a report finds the faulting address, the kernel's own frames, the code-integrity checks
    triage: Triage
    _counter_index: Mapping[str, str]
    _api_index: Mapping[str, AffectedApi]

    def subcode(self, arg1: int) -> tuple[SubcodeMeaning, ...]:
        """Every meaning 0xC4 Arg1 ``arg1`` has had, current first; empty when unknown."""
        return tuple(m for m in self.subcodes if m.covers(arg1))

    def is_code_integrity_subcode(self, arg1: int) -> bool:
        """Whether 0xC4 Arg1 ``arg1`` lies in the block of the code-integrity checks (known or not)."""
        first, last = self.code_integrity_block
        return first <= arg1 <= last

    def bugcheck(self, code: int) -> BugCheckInfo | None:
        """The bug check ``code``. A ``0x1000xxxx`` code is the ``_M`` form of ``0xxxx``, which Microsoft's
        bug check reference gives the same meaning and parameters (``0x1000007E`` is
        ``SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M``), so it is named after that code."""
        info = self.bugchecks.get(code)
        if info is None and code & M_VARIANT and (base := self.bugchecks.get(code & ~M_VARIANT)) is not None:
            info = msgspec.structs.replace(base, code=code, name=base.name + "_M")
        return info

    def category_for_counter(self, label: str) -> str | None:
        """The category of a ``!verifier``, ``verifier /query`` or readiness counter label, in any case.

        ``Execute Pool Type Count``, ``execute pool type count:`` and ``Execute Pool Type`` all match.
        """
        key = normalize_label(label)
        return self._counter_index.get(key) or self._counter_index.get(key.removesuffix("count"))

    def affected_api(self, name: str) -> AffectedApi | None:
        """Case-insensitive lookup of an affected API (``Interface::Method`` for COM methods)."""
        return self._api_index.get(name.strip().lower())

    def event(self, event_id: int) -> EventInfo | None:
        return self.events.get(event_id)

    def ci_reason(self, reason_id: int) -> CiReason | None:
        return self.ci_reasons.get(reason_id)

    def category(self, category_id: str) -> Category | None:
        return self.categories.get(category_id)

    def value(self, name: str) -> int:
        """The value of the constant ``name`` (exact spelling); KeyError when no table has it."""
        for table in self.constants.values():
            entry = table.entry(name)
            if entry is not None:
                return entry.value
        raise KeyError(name)

    def constant(self, name: str) -> tuple[ConstantTable, ConstantEntry] | None:
        """Find a constant by name or alias in any table (``NonPagedPool``, ``PAGE_EXECUTE_READWRITE`` ...).

        An exact match wins; otherwise the name is matched case-insensitively.
        """
        for table in self.constants.values():
            entry = table.entry(name)
            if entry is not None:
                return table, entry
        folded = name.lower()
        for table in self.constants.values():
            for entry in table.entries:
                if folded in (n.lower() for n in (entry.name, *entry.aliases)):
                    return table, entry
        return None
