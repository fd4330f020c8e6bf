"""The knowledge base: categories, 0xC4 subcodes, bug checks, verifier facts, constants and affected APIs.

Everything here is read from the TOML files in ``hvci/knowledge/`` (knowledge is data: adding a subcode or an
API is an edit there, not here). :mod:`hvci.knowledge.records` defines the records and what each must
satisfy, :mod:`hvci.knowledge.files` reads one file (naming the file and key of any mistake) and
:mod:`hvci.knowledge.crossrefs` checks what spans files. :func:`load` is cached and cheap (it runs on every
CLI start); the long remediation texts are parsed only when a category's ``remediation`` is first read.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hvci.knowledge.files import KnowledgeError, VerifierFile
    from hvci.knowledge.records import (
        ARG_KINDS,
        ARGUMENT_KINDS,
        ERAS,
        M_VARIANT,
        VERIFIER_BUGCHECK,
        AffectedApi,
        ArgumentKind,
        BannerFormat,
        BugCheckInfo,
        Category,
        CiReason,
        ConstantEntry,
        ConstantTable,
        CounterLabel,
        EventInfo,
        ImageRule,
        Link,
        Remediation,
        SafeWhen,
        SubcodeMeaning,
        VerifierFacts,
    )

__all__ = [
    "ARGUMENT_KINDS",
    "ARG_KINDS",
    "ERAS",
    "KNOWLEDGE_DIR",
    "M_VARIANT",
    "VERIFIER_BUGCHECK",
    "AffectedApi",
    "ArgumentKind",
    "BannerFormat",
    "BugCheckInfo",
    "Category",
    "CiReason",
    "ConstantEntry",
    "ConstantTable",
    "CounterLabel",
    "EventInfo",
    "ImageRule",
    "KnowledgeBase",
    "KnowledgeError",
    "Link",
    "Remediation",
    "SafeWhen",
    "SubcodeMeaning",
    "VerifierFacts",
    "load",
    "load_from",
    "normalize_label",
]

KNOWLEDGE_DIR = Path(__file__).resolve().parent


def __getattr__(name: str) -> Any:
    """The names re-exported from :mod:`hvci.knowledge.records` and ``files``, imported at their first use:
    the records are msgspec structs and the files need the TOML reader, which a run that meets no bug check,
    counter or event (a log of noise, ``--help``) never needs; importing this module stays cheap."""
    if name == "KnowledgeError":
        from hvci.knowledge.files import KnowledgeError

        return KnowledgeError
    if name in __all__ and name not in globals():
        from hvci.knowledge import records

        return getattr(records, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def normalize_label(label: str) -> str:
    """Key for counter labels: case, spaces and a trailing colon do not matter (``/query`` lowercases)."""
    return re.sub(r"\s+", "", label).rstrip(":").lower()


@dataclass(frozen=True, slots=True)
class KnowledgeBase:
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
    _counter_index: Mapping[str, str] = field(repr=False)
    _api_index: Mapping[str, AffectedApi] = field(repr=False)

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
        import msgspec

        from hvci.knowledge.records import M_VARIANT

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


def _verifier_facts(doc: VerifierFile) -> VerifierFacts:
    from hvci.knowledge.records import VerifierFacts

    return VerifierFacts(
        flag=doc.flag.value,
        flag_bit=doc.flag.bit,
        rule_class=doc.rule_class.value,
        commands=MappingProxyType(dict(doc.commands)),
        readiness_tools=MappingProxyType(dict(doc.readiness_tools)),
        banner_header=doc.banner.header,
        banner_prefix=doc.banner.prefix,
        banner_footer=doc.banner.footer,
    )


def _counter_index(counters: tuple[CounterLabel, ...]) -> dict[str, str]:
    index: dict[str, str] = {}
    for counter in counters:
        key = normalize_label(counter.label)
        index[key] = counter.category
        index.setdefault(key.removesuffix("count"), counter.category)
    return index


def _with_banners(meaning: SubcodeMeaning, formats: tuple[BannerFormat, ...]) -> SubcodeMeaning:
    """The meaning with the banner formats printed with it (verifier.toml names them by issue)."""
    import msgspec

    printed = tuple(
        f.format for f in formats if f.issue in meaning.banner_issues and meaning.arg1 in f.subcodes
    )
    return msgspec.structs.replace(meaning, banner_formats=printed)


def load_from(directory: Path) -> KnowledgeBase:
    """Read and validate every knowledge file in ``directory`` (uncached; :func:`load` is the cached one)."""
    import msgspec

    from hvci.knowledge import crossrefs
    from hvci.knowledge.files import (
        ApisFile,
        BugChecksFile,
        CategoriesFile,
        EventsFile,
        RulesFile,
        SubcodesFile,
        VerifierFile,
        read,
        read_constants,
    )
    from hvci.knowledge.records import ARGUMENT_KINDS, ERAS

    categories_file = read(directory / "categories.toml", CategoriesFile)
    verifier = read(directory / "verifier.toml", VerifierFile)
    subcodes = read(directory / "subcodes.toml", SubcodesFile)
    bugchecks = read(directory / "bugchecks.toml", BugChecksFile)
    constants = read_constants(directory / "constants.toml")
    apis = read(directory / "apis.toml", ApisFile)
    events = read(directory / "events.toml", EventsFile)
    rules = read(directory / "rules.toml", RulesFile)

    crossrefs.check_remediation_files(directory, categories_file.category)
    categories = {
        c.id: msgspec.structs.replace(c, remediation_path=str(directory / "remediation" / c.remediation_file))
        for c in categories_file.category
    }
    crossrefs.check_category_refs(categories, verifier, subcodes, bugchecks, apis, events, rules)
    crossrefs.check_banner_issues(subcodes, verifier.banner_format)
    crossrefs.check_replacements(constants)
    crossrefs.check_argument_kinds(constants, ARGUMENT_KINDS)
    crossrefs.check_categories_agree(categories, verifier, subcodes, bugchecks, events)

    meanings = tuple(
        sorted(
            (_with_banners(m, verifier.banner_format) for m in subcodes.subcode),
            key=lambda m: (m.arg1, ERAS.index(m.era)),
        )
    )
    return KnowledgeBase(
        categories=MappingProxyType(categories),
        subcodes=meanings,
        subcode_policy=" ".join(subcodes.how_we_decide.split()),
        bugchecks=MappingProxyType({b.code: b for b in bugchecks.bugcheck}),
        kernel_images=frozenset(name.lower() for name in bugchecks.kernel_images),
        banner_formats=verifier.banner_format,
        counters=verifier.counter,
        verifier=_verifier_facts(verifier),
        constants=MappingProxyType(constants),
        affected_apis=apis.api,
        events=MappingProxyType({e.id: e for e in events.event}),
        ci_reasons=MappingProxyType({r.id: r for r in events.ci_reason}),
        code_integrity_block=subcodes.code_integrity_block,
        image_rules=MappingProxyType({r.id: r for r in rules.rule}),
        caller_subcodes=frozenset(
            m.arg1
            for m in meanings
            if m.era == "current" and m.hvci_related and m.arg_kinds[0] == "code-address"
        ),
        _counter_index=MappingProxyType(_counter_index(verifier.counter)),
        _api_index=MappingProxyType({api.name.lower(): api for api in apis.api}),
    )


@functools.cache
def load() -> KnowledgeBase:
    """The knowledge base shipped with the package, read once per process."""
    return load_from(KNOWLEDGE_DIR)
