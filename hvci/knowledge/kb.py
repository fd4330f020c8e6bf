"""The knowledge base: categories, 0xC4 subcodes, bug checks, verifier facts, constants and affected APIs.

Everything here is read from the TOML files in ``hvci/knowledge/`` (knowledge is data: adding a subcode or an
API is an edit there, not here). :mod:`hvci.knowledge.records` defines the records and what each must
satisfy, :mod:`hvci.knowledge.files` reads one file (naming the file and key of any mistake) and
:mod:`hvci.knowledge.crossrefs` checks what spans files. :func:`load` is cached and cheap (it runs on every
CLI start, from :mod:`hvci.knowledge.cache`); :mod:`hvci.knowledge.base` is the assembled knowledge base.
"""

from __future__ import annotations

import functools
import os
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from hvci.knowledge.base import KnowledgeBase, normalize_label
    from hvci.knowledge.files import KnowledgeError, KnowledgeFiles, VerifierFile
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

#: The folder of the knowledge files, as text: ``KNOWLEDGE_DIR`` is the same as a ``Path``, made on first use
#: (a start from the cache needs no ``pathlib``, which costs more than the rest of a cache hit).
_DIRECTORY = os.path.dirname(os.path.realpath(__file__))

if TYPE_CHECKING:
    KNOWLEDGE_DIR: Path


def __getattr__(name: str) -> Any:
    """The names re-exported from :mod:`hvci.knowledge.records` and ``files``, imported at their first use:
    the records are msgspec structs and the files need the TOML reader, which a run that meets no bug check,
    counter or event (a log of noise, ``--help``) never needs; importing this module stays cheap."""
    if name == "KNOWLEDGE_DIR":
        from pathlib import Path

        return Path(_DIRECTORY)
    if name == "KnowledgeError":
        from hvci.knowledge.files import KnowledgeError

        return KnowledgeError
    if name in ("KnowledgeBase", "normalize_label"):
        from hvci.knowledge import base

        return getattr(base, name)
    if name in __all__ and name not in globals():
        from hvci.knowledge import records

        return getattr(records, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    from hvci.knowledge.base import normalize_label

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


def read_files(directory: Path, *, remediations: bool = False) -> KnowledgeFiles:
    """Read and check every knowledge file in ``directory``, each file alone and then what spans files;
    with ``remediations``, the remediation files too (else they are read when first shown)."""
    from hvci.knowledge import crossrefs
    from hvci.knowledge.files import (
        ApisFile,
        BugChecksFile,
        CategoriesFile,
        EventsFile,
        KnowledgeFiles,
        RulesFile,
        SubcodesFile,
        VerifierFile,
        read,
        read_constants,
    )
    from hvci.knowledge.records import ARGUMENT_KINDS, Remediation
    from hvci.knowledge.triage import Triage

    files = KnowledgeFiles(
        categories=read(directory / "categories.toml", CategoriesFile),
        verifier=read(directory / "verifier.toml", VerifierFile),
        subcodes=read(directory / "subcodes.toml", SubcodesFile),
        bugchecks=read(directory / "bugchecks.toml", BugChecksFile),
        constants=read_constants(directory / "constants.toml"),
        apis=read(directory / "apis.toml", ApisFile),
        events=read(directory / "events.toml", EventsFile),
        rules=read(directory / "rules.toml", RulesFile),
        triage=read(directory / "triage.toml", Triage),
    )
    crossrefs.check_remediation_files(directory, files.categories.category)
    categories = _categories(files, directory)
    verifier, subcodes = files.verifier, files.subcodes
    crossrefs.check_category_refs(
        categories, verifier, subcodes, files.bugchecks, files.apis, files.events, files.rules
    )
    crossrefs.check_banner_issues(subcodes, verifier.banner_format)
    crossrefs.check_replacements(files.constants)
    crossrefs.check_argument_kinds(files.constants, ARGUMENT_KINDS)
    crossrefs.check_categories_agree(categories, verifier, subcodes, files.bugchecks, files.events)
    if remediations:
        for category in files.categories.category:
            name = category.remediation_file
            files.remediations[name] = read(directory / "remediation" / name, Remediation)
    return files


def _categories(files: KnowledgeFiles, directory: str | Path) -> dict[str, Category]:
    """The categories by id, each with the path of its remediation file."""
    import msgspec

    return {
        c.id: msgspec.structs.replace(c, remediation_path=_remediation_path(directory, c.remediation_file))
        for c in files.categories.category
    }


def _remediation_path(directory: str | Path, name: str) -> str:
    return os.path.join(directory, "remediation", name)


def load_from(directory: Path) -> KnowledgeBase:
    """Read and validate every knowledge file in ``directory`` (uncached; :func:`load` is the cached one)."""
    return assemble(read_files(directory), directory)


def assemble(files: KnowledgeFiles, directory: str | Path) -> KnowledgeBase:
    """The knowledge base of the checked ``files`` read from ``directory``: indexes built, banner formats
    joined to their subcodes."""
    from hvci.knowledge.base import KnowledgeBase
    from hvci.knowledge.files import remember_remediations
    from hvci.knowledge.records import ERAS

    remember_remediations({_remediation_path(directory, n): r for n, r in files.remediations.items()})
    verifier, subcodes, bugchecks, apis, events = (
        files.verifier,
        files.subcodes,
        files.bugchecks,
        files.apis,
        files.events,
    )
    meanings = tuple(
        sorted(
            (_with_banners(m, verifier.banner_format) for m in subcodes.subcode),
            key=lambda m: (m.arg1, ERAS.index(m.era)),
        )
    )
    return KnowledgeBase(
        categories=MappingProxyType(_categories(files, directory)),
        subcodes=meanings,
        subcode_policy=" ".join(subcodes.how_we_decide.split()),
        bugchecks=MappingProxyType({b.code: b for b in bugchecks.bugcheck}),
        kernel_images=frozenset(name.lower() for name in bugchecks.kernel_images),
        banner_formats=verifier.banner_format,
        counters=verifier.counter,
        verifier=_verifier_facts(verifier),
        constants=MappingProxyType(files.constants),
        affected_apis=apis.api,
        events=MappingProxyType({e.id: e for e in events.event}),
        ci_reasons=MappingProxyType({r.id: r for r in events.ci_reason}),
        code_integrity_block=subcodes.code_integrity_block,
        image_rules=MappingProxyType({r.id: r for r in files.rules.rule}),
        caller_subcodes=frozenset(
            m.arg1
            for m in meanings
            if m.era == "current" and m.hvci_related and m.arg_kinds[0] == "code-address"
        ),
        triage=files.triage,
        _counter_index=MappingProxyType(_counter_index(verifier.counter)),
        _api_index=MappingProxyType({api.name.lower(): api for api in apis.api}),
    )


@functools.cache
def load() -> KnowledgeBase:
    """The knowledge base shipped with the package, read once per process: from the start-up cache when
    it holds these very files (:mod:`hvci.knowledge.cache`), else from the files (and then cached)."""
    from hvci.knowledge.cache import cached_files

    return assemble(cached_files(_DIRECTORY), _DIRECTORY)
