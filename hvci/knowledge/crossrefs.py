"""Checks that span files: every category a table names exists, and what categories.toml says about each
category agrees with the tables that report it (counters, subcodes, bug checks, events).

Each error names the file and key of the reference that does not resolve, like the per-file checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from hvci.knowledge.files import (
    ApisFile,
    BugChecksFile,
    EventsFile,
    KnowledgeError,
    RulesFile,
    SubcodesFile,
    VerifierFile,
)
from hvci.knowledge.records import BannerFormat, Category, ConstantTable


def check_remediation_files(directory: Path, categories: Iterable[Category]) -> None:
    for i, category in enumerate(categories):
        if not (directory / "remediation" / category.remediation_file).is_file():
            raise KnowledgeError(
                f"categories.toml: category[{i}].remediation: file {category.remediation_file!r} "
                "not found in remediation/"
            )


def _refs(file: str, array: str, items: Iterable[object], categories: Mapping[str, Category]) -> None:
    for i, item in enumerate(items):
        category = getattr(item, "category", None)
        if category is not None and category not in categories:
            raise KnowledgeError(f"{file}: {array}[{i}].category: unknown category {category!r}")


def check_category_refs(
    categories: Mapping[str, Category],
    verifier: VerifierFile,
    subcodes: SubcodesFile,
    bugchecks: BugChecksFile,
    apis: ApisFile,
    events: EventsFile,
    rules: RulesFile,
) -> None:
    """Every ``category`` key names a category of categories.toml; rules.toml adds no category id."""
    _refs("verifier.toml", "counter", verifier.counter, categories)
    _refs("verifier.toml", "banner_format", verifier.banner_format, categories)
    _refs("subcodes.toml", "subcode", subcodes.subcode, categories)
    _refs("bugchecks.toml", "bugcheck", bugchecks.bugcheck, categories)
    _refs("apis.toml", "api", apis.api, categories)
    _refs("events.toml", "event", events.event, categories)
    _refs("events.toml", "ci_reason", events.ci_reason, categories)
    for i, rule in enumerate(rules.rule):
        if rule.id in categories:
            raise KnowledgeError(f"rules.toml: rule[{i}].id: {rule.id!r} is a category id")


def check_banner_issues(subcodes: SubcodesFile, formats: Iterable[BannerFormat]) -> None:
    issues = {f.issue for f in formats}
    for i, meaning in enumerate(subcodes.subcode):
        for issue in meaning.banner_issues:
            if issue not in issues:
                raise KnowledgeError(
                    f"subcodes.toml: subcode[{i}].banner_issues: no banner_format with issue {issue!r} "
                    "in verifier.toml"
                )


def check_replacements(tables: Mapping[str, ConstantTable]) -> None:
    """A constant's ``replacement`` names a constant of the same table."""
    for key, table in tables.items():
        for i, entry in enumerate(table.entries):
            if entry.replacement is not None and table.entry(entry.replacement) is None:
                raise KnowledgeError(
                    f"constants.toml: {key}.entry[{i}].replacement: {entry.replacement!r} is not a constant "
                    f"of [{key}]"
                )


def check_argument_kinds(tables: Mapping[str, ConstantTable], kinds: Iterable[str]) -> None:
    """Every argument kind but ``none`` has its table of constants (its decoder is derived from it)."""
    for kind in kinds:
        if kind != "none" and kind.replace("-", "_") not in tables:
            raise KnowledgeError(
                f"constants.toml: {kind.replace('-', '_')}: missing table for argument kind {kind!r}"
            )


def check_categories_agree(
    categories: Mapping[str, Category],
    verifier: VerifierFile,
    subcodes: SubcodesFile,
    bugchecks: BugChecksFile,
    events: EventsFile,
) -> None:
    """What categories.toml says about each category must agree with the other tables."""
    codes = {b.code: b for b in bugchecks.bugcheck}
    event_index = {e.id: e for e in events.event}
    for category in categories.values():
        where = f"categories.toml: category {category.id!r}"
        for label in category.counter_labels:
            if not any(c.label == label and c.category == category.id for c in verifier.counter):
                raise KnowledgeError(
                    f"{where}: counter label {label!r} is not a [[counter]] of it in verifier.toml"
                )
        for arg1 in category.subcodes:
            if not any(m.category == category.id and m.covers(arg1) for m in subcodes.subcode):
                raise KnowledgeError(
                    f"{where}: subcode {arg1:#x} has no meaning of this category in subcodes.toml"
                )
        for code in category.bugchecks:
            info = codes.get(code)
            if info is None or info.category != category.id:
                raise KnowledgeError(
                    f"{where}: bug check {code:#x} is not of this category in bugchecks.toml"
                )
        for event_id in category.event_ids:
            event = event_index.get(event_id)
            if event is None or event.category != category.id:
                raise KnowledgeError(f"{where}: event {event_id} is not of this category in events.toml")
