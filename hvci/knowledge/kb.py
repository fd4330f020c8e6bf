"""The knowledge base: categories, 0xC4 subcodes, bug checks, verifier facts, constants and affected APIs.

Everything here is read from the TOML files in ``hvci/knowledge/`` (knowledge is data: adding a subcode or an
API is an edit there, not here). Loading validates every file and names the file and key of any mistake,
because a silent typo in a table would turn into a wrong verdict far away. :func:`load` is cached and cheap
(it runs on every CLI start); the long remediation texts are parsed only when a category's
``remediation`` is first read.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

KNOWLEDGE_DIR = Path(__file__).resolve().parent

#: Values of ``AffectedApi.argument_kind``; all but ``none`` name a table of ``constants.toml``.
ARGUMENT_KINDS = (
    "pool-type",
    "pool-flags",
    "page-protection",
    "mdl-priority",
    "lookaside-flags",
    "cache-type",
    "none",
)
#: Values of ``SubcodeMeaning.era``.
ERAS = ("current", "older-build", "pre-2020-docs")
DESCRIPTION_SOURCES = ("capture", "docs", "old-docs", "ours")
#: Kinds of 0xC4 Arg2..Arg4 (``SubcodeMeaning.arg_kinds``).
ARG_KINDS = (
    "code-address",
    "pool-type",
    "pool-tag",
    "page-protection",
    "mdl-priority",
    "unicode-string-ptr",
    "section-header-ptr",
    "iat-directory-ptr",
    "section-name-ptr",
    "reloc-block-ptr",
    "reloc-entry-ptr",
    "zero",
    "other",
)
ROLES = ("value", "flag", "field")
VERIFIER_BUGCHECK = 0xC4
#: The bit that turns a bug check code into its ``_M`` variant (0x7E -> 0x1000007E).
M_VARIANT = 0x10000000


class KnowledgeError(ValueError):
    """A knowledge file is missing, is not valid TOML, or has a wrong or missing key."""


# ---------------------------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True, slots=True)
class Remediation:
    """How to fix one category: in our own words, with before/after code and how to verify."""

    what: str
    why: str
    fix: str
    before: str
    after: str
    verify: str
    links: tuple[Link, ...]
    code_language: str = "c"


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    name: str
    short: str
    hvci_related: bool
    counter_labels: tuple[str, ...]
    subcodes: tuple[int, ...]
    bugchecks: tuple[int, ...]
    event_ids: tuple[int, ...]
    detected: str
    static_check: bool
    summary: str
    sources: tuple[str, ...]
    remediation_path: Path = field(repr=False)
    incident_title: str = ""
    title_details: tuple[str, ...] = ()

    @property
    def remediation(self) -> Remediation:
        """Parsed on first use: the long texts are not needed to classify, only to explain."""
        return _load_remediation(self.remediation_path)

    def title_for(self, who: str, details: Mapping[str, Any]) -> str:
        """``incident_title`` for the driver ``who``, then the ``title_details`` whose every ``{key}`` /
        ``{key.name}`` the incident's details have, in parentheses: "Drv.sys allocated executable pool
        (NonPagedPool, tag MEMH)"."""
        parts = [p for p in (_fill(part, details) for part in self.title_details) if p]
        return self.incident_title.replace("{who}", who) + (f" ({', '.join(parts)})" if parts else "")


@dataclass(frozen=True, slots=True)
class SubcodeMeaning:
    """One meaning a 0xC4 Arg1 value has had (a number can have several, see ``era``)."""

    arg1: int
    arg1_last: int
    era: str
    era_note: str
    category: str | None
    hvci_related: bool
    description: str  # the text !analyze prints after Arg1 (see description_source)
    description_source: str  # "capture" | "docs" | "old-docs" | "ours"
    args: tuple[str, str, str]  # Arg2..Arg4
    arg_kinds: tuple[str, str, str]
    banner_issues: tuple[str, ...]
    banner_formats: tuple[str, ...]
    identify_by: str
    sources: tuple[str, ...]
    bugcheck: int = VERIFIER_BUGCHECK

    def covers(self, arg1: int) -> bool:
        return self.arg1 <= arg1 <= self.arg1_last


@dataclass(frozen=True, slots=True)
class BugCheckInfo:
    code: int
    name: str
    hvci_related: bool
    category: str | None
    decided_by_subcode: bool
    args: tuple[str, str, str, str]
    hvci_note: str
    url: str
    sources: tuple[str, ...]
    analyze_text: str = ""


@dataclass(frozen=True, slots=True)
class BannerFormat:
    """A message format (printf syntax) of the ``Verifier Detected a Code Integrity Issue`` banner."""

    issue: str  # parsers.records.VerifierBannerRecord.issue
    format: str
    subcodes: tuple[int, ...]
    category: str
    era: str
    fields: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True, slots=True)
class CounterLabel:
    label: str
    category: str
    error: bool = False  # the readiness script reports it as an error rather than a warning


@dataclass(frozen=True, slots=True)
class VerifierFacts:
    flag: int
    flag_bit: int
    flag_label: str
    rule_class: int
    rule_class_note: str
    commands: Mapping[str, str]
    readiness_tools: Mapping[str, str]  # tool id (parsers.readiness) -> how titles name it
    banner_header: str
    banner_prefix: str
    banner_footer: str


@dataclass(frozen=True, slots=True)
class ConstantEntry:
    name: str
    value: int
    role: str  # "value" | "flag" | "field"
    mask: int
    executable: bool | None = None
    replacement: str | None = None
    aliases: tuple[str, ...] = ()
    note: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class ConstantTable:
    """One kind of value (``pool_type``, ``page_protection`` ...) and the rule that says what executes."""

    key: str
    title: str
    width: int
    entries: tuple[ConstantEntry, ...]
    source: str
    executable_if_any: int | None = None
    nx_if_any: int | None = None
    otherwise: bool | None = None
    safe_or: int | None = None
    detail_key: str | None = None
    undecided_note: str = ""

    @property
    def has_rule(self) -> bool:
        return self.executable_if_any is not None or self.nx_if_any is not None or self.otherwise is not None

    def entry(self, name: str) -> ConstantEntry | None:
        for entry in self.entries:
            if name == entry.name or name in entry.aliases:
                return entry
        return None


@dataclass(frozen=True, slots=True)
class SafeWhen:
    """Another argument whose value makes the call safe whatever the deciding argument says (e.g.
    ``AccessMode == UserMode`` for ``MmMapLockedPagesSpecifyCache``: user-mode mappings are always NX)."""

    argument_index: int  # 0-based, in the documented prototype
    value: int
    bits: int  # the parameter's width: only its low bits are compared (a KPROCESSOR_MODE is a CCHAR)
    reason: str


@dataclass(frozen=True, slots=True)
class AffectedApi:
    """An API that can give a driver executable memory, and which argument decides."""

    name: str
    module: str
    category: str
    argument_index: int | None  # 0-based, in the documented prototype; None when no argument decides
    argument_kind: str
    group: str
    note: str
    implicit_args: int = 0  # WdfDriverGlobals / COM this, passed before the documented arguments
    lists: tuple[str, ...] = ()
    prototype: str = ""
    safe_when: SafeWhen | None = None

    @property
    def binary_argument_index(self) -> int | None:
        """The argument slot in the compiled call (documented index + hidden leading arguments)."""
        return None if self.argument_index is None else self.argument_index + self.implicit_args


@dataclass(frozen=True, slots=True)
class EventInfo:
    id: int
    provider: str
    category: str | None
    template: str
    explanation: str
    template_v0: str = ""
    audit: bool = False


@dataclass(frozen=True, slots=True)
class ImageRule:
    """An image rule that is not a category (a ``category/sub`` case or an informational check)."""

    id: str
    name: str
    short: str
    help: str
    level: str  # "error" | "warning" | "note"


@dataclass(frozen=True, slots=True)
class CiReason:
    id: int
    text: str
    category: str | None


_PLACEHOLDER = re.compile(r"\{([a-z_]+)(?:\.([a-z_]+))?\}")


def _fill(template: str, details: Mapping[str, Any]) -> str | None:
    """``template`` with each ``{key}`` / ``{key.field}`` taken from ``details``; None when one is absent."""
    values: list[str] = []
    for key, name in _PLACEHOLDER.findall(template):
        value = details.get(key)
        if name:
            value = value.get(name) if isinstance(value, Mapping) else None
        if value is None or value == "":
            return None
        values.append(str(value))
    filled = iter(values)
    return _PLACEHOLDER.sub(lambda _: next(filled), template)


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
        info = self.bugchecks.get(code)
        if info is None and code & M_VARIANT and (base := self.bugchecks.get(code & ~M_VARIANT)) is not None:
            info = dataclasses.replace(base, code=code, name=base.name + "_M")
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


# ---------------------------------------------------------------------------------------------- reading


class _Node:
    """A TOML table with its file and key path, so that every error says where it is."""

    def __init__(self, data: Mapping[str, Any], file: str, path: str) -> None:
        self.data = data
        self.file = file
        self.path = path

    def _where(self, key: str) -> str:
        return f"{self.file}: {self.path}.{key}" if self.path else f"{self.file}: {key}"

    def fail(self, key: str, message: str) -> KnowledgeError:
        return KnowledgeError(f"{self._where(key)}: {message}")

    def _get(self, key: str, kind: type | tuple[type, ...], what: str, required: bool) -> Any:
        if key not in self.data:
            if required:
                raise self.fail(key, "missing")
            return None
        value = self.data[key]
        # bool is an int in Python; a table of numbers must not accept true/false and vice versa
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            raise self.fail(key, f"expected {what}, got {type(value).__name__} {value!r}")
        return value

    def text(self, key: str, *, required: bool = True, nonempty: bool = False) -> str:
        value = self._get(key, str, "a string", required)
        if value is None:
            return ""
        if nonempty and not value.strip():
            raise self.fail(key, "must not be empty")
        return str(value)

    def integer(self, key: str, *, required: bool = True) -> int | None:
        value = self._get(key, int, "an integer", required)
        return None if value is None else int(value)

    def number(self, key: str) -> int:
        value = self.integer(key)
        assert value is not None
        return value

    def flag(self, key: str, *, required: bool = True) -> bool | None:
        value = self._get(key, bool, "true or false", required)
        return None if value is None else bool(value)

    def texts(self, key: str, *, required: bool = True) -> tuple[str, ...]:
        values = self._get(key, list, "a list of strings", required) or []
        for i, value in enumerate(values):
            if not isinstance(value, str):
                raise self.fail(f"{key}[{i}]", f"expected a string, got {value!r}")
        return tuple(values)

    def integers(self, key: str, *, required: bool = True) -> tuple[int, ...]:
        values = self._get(key, list, "a list of integers", required) or []
        for i, value in enumerate(values):
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.fail(f"{key}[{i}]", f"expected an integer, got {value!r}")
        return tuple(values)

    def choice(self, key: str, choices: tuple[str, ...]) -> str:
        value = self.text(key)
        if value not in choices:
            raise self.fail(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def table(self, key: str) -> _Node:
        value = self._get(key, dict, "a table", True)
        return _Node(value, self.file, f"{self.path}.{key}" if self.path else key)

    def array(self, key: str, *, required: bool = True) -> Iterator[_Node]:
        values = self._get(key, list, "an array of tables", required) or []
        if required and not values:
            raise self.fail(key, "must have at least one entry")
        for i, value in enumerate(values):
            where = f"{self.path}.{key}[{i}]" if self.path else f"{key}[{i}]"
            if not isinstance(value, dict):
                raise KnowledgeError(f"{self.file}: {where}: expected a table, got {value!r}")
            yield _Node(value, self.file, where)

    def check_keys(self, allowed: set[str]) -> None:
        """Unknown keys are typos until proven otherwise."""
        for key in self.data:
            if key not in allowed:
                raise self.fail(key, f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _read(path: Path) -> _Node:
    try:
        with path.open("rb") as handle:
            return _Node(tomllib.load(handle), path.name, "")
    except FileNotFoundError:
        raise KnowledgeError(f"{path}: knowledge file is missing") from None
    except tomllib.TOMLDecodeError as error:
        raise KnowledgeError(f"{path.name}: not valid TOML: {error}") from None


def _opt(value: str) -> str | None:
    return value or None


def _categories(directory: Path) -> dict[str, Category]:
    doc = _read(directory / "categories.toml")
    doc.check_keys({"category"})
    categories: dict[str, Category] = {}
    keys = {
        "id",
        "name",
        "short",
        "hvci_related",
        "counter_labels",
        "subcodes",
        "bugchecks",
        "event_ids",
        "detected",
        "static_check",
        "summary",
        "remediation",
        "sources",
        "incident_title",
        "title_details",
    }
    for node in doc.array("category"):
        node.check_keys(keys)
        category_id = node.text("id", nonempty=True)
        if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", category_id):
            raise node.fail("id", f"{category_id!r} is not kebab-case")
        if category_id in categories:
            raise node.fail("id", f"duplicate category id {category_id!r}")
        remediation = directory / "remediation" / node.text("remediation", nonempty=True)
        if not remediation.is_file():
            raise node.fail("remediation", f"file {remediation.name!r} not found in remediation/")
        hvci_related = node.flag("hvci_related")
        categories[category_id] = Category(
            id=category_id,
            name=node.text("name", nonempty=True),
            short=node.text("short", nonempty=True),
            hvci_related=bool(hvci_related),
            counter_labels=node.texts("counter_labels"),
            subcodes=node.integers("subcodes"),
            bugchecks=node.integers("bugchecks"),
            event_ids=node.integers("event_ids"),
            detected=node.choice("detected", ("run time", "image load")),
            static_check=bool(node.flag("static_check")),
            summary=node.text("summary", nonempty=True).strip(),
            sources=node.texts("sources"),
            remediation_path=remediation,
            incident_title=node.text("incident_title", required=False),
            title_details=node.texts("title_details", required=False),
        )
    return categories


def _category_ref(node: _Node, key: str, categories: Mapping[str, Category], *, optional: bool) -> str | None:
    value = node.text(key, required=not optional)
    if not value:
        if optional:
            return None
        raise node.fail(key, "must name a category")
    if value not in categories:
        raise node.fail(key, f"unknown category {value!r}")
    return value


def _verifier(
    directory: Path, categories: Mapping[str, Category]
) -> tuple[VerifierFacts, tuple[CounterLabel, ...], tuple[BannerFormat, ...]]:
    doc = _read(directory / "verifier.toml")
    doc.check_keys(
        {"flag", "rule_class", "commands", "readiness_tools", "banner", "counter", "banner_format"}
    )
    tools = doc.table("readiness_tools")
    flag, rule_class, commands, banner = (doc.table(k) for k in ("flag", "rule_class", "commands", "banner"))
    flag.check_keys({"value", "bit", "label", "note", "sources"})
    rule_class.check_keys({"value", "label", "note", "sources"})
    banner.check_keys({"header", "prefix", "footer"})
    facts = VerifierFacts(
        flag=flag.number("value"),
        flag_bit=flag.number("bit"),
        flag_label=flag.text("label", nonempty=True),
        rule_class=rule_class.number("value"),
        rule_class_note=rule_class.text("note"),
        commands=MappingProxyType({key: commands.text(key, nonempty=True) for key in commands.data}),
        readiness_tools=MappingProxyType({key: tools.text(key, nonempty=True) for key in tools.data}),
        banner_header=banner.text("header", nonempty=True),
        banner_prefix=banner.text("prefix", nonempty=True),
        banner_footer=banner.text("footer", nonempty=True),
    )
    if facts.flag != 1 << facts.flag_bit:
        raise flag.fail("bit", f"bit {facts.flag_bit} does not match value {facts.flag:#x}")
    counters = []
    for node in doc.array("counter"):
        node.check_keys({"label", "category", "error"})
        counters.append(
            CounterLabel(
                node.text("label", nonempty=True),
                str(_category_ref(node, "category", categories, optional=False)),
                bool(node.flag("error", required=False)),
            )
        )
    formats = []
    for node in doc.array("banner_format"):
        node.check_keys({"issue", "format", "subcodes", "category", "era", "fields", "note"})
        text = node.text("format", nonempty=True)
        fields = node.texts("fields")
        conversions = re.findall(r"%(?:wZ|[psx])", text)
        if len(conversions) != len(fields):
            raise node.fail(
                "fields", f"{len(fields)} field names for {len(conversions)} conversions in the format"
            )
        formats.append(
            BannerFormat(
                issue=node.text("issue", nonempty=True),
                format=text,
                subcodes=node.integers("subcodes"),
                category=str(_category_ref(node, "category", categories, optional=False)),
                era=node.choice("era", ERAS),
                fields=fields,
                note=node.text("note", required=False),
            )
        )
    return facts, tuple(counters), tuple(formats)


def _subcodes(
    directory: Path, categories: Mapping[str, Category], formats: tuple[BannerFormat, ...]
) -> tuple[tuple[SubcodeMeaning, ...], str, tuple[int, int]]:
    doc = _read(directory / "subcodes.toml")
    doc.check_keys({"how_we_decide", "code_integrity_block", "subcode"})
    policy = " ".join(doc.text("how_we_decide", nonempty=True).split())
    block = doc.integers("code_integrity_block")
    if len(block) != 2 or block[0] > block[1]:
        raise doc.fail("code_integrity_block", "needs [first, last] with first <= last")
    issues = {f.issue for f in formats}
    meanings = []
    keys = {
        "arg1",
        "arg1_last",
        "era",
        "era_note",
        "category",
        "hvci_related",
        "description",
        "description_source",
        "args",
        "arg_kinds",
        "banner_issues",
        "identify_by",
        "sources",
    }
    for node in doc.array("subcode"):
        node.check_keys(keys)
        arg1 = node.number("arg1")
        last = node.integer("arg1_last", required=False)
        last = arg1 if last is None else last
        if last < arg1:
            raise node.fail("arg1_last", f"{last:#x} is below arg1 {arg1:#x}")
        args, kinds = node.texts("args"), node.texts("arg_kinds")
        if len(args) != 3 or len(kinds) != 3:
            raise node.fail("args", "args and arg_kinds need exactly three entries (Arg2..Arg4)")
        for i, kind in enumerate(kinds):
            if kind not in ARG_KINDS:
                raise node.fail(f"arg_kinds[{i}]", f"{kind!r} is not one of {', '.join(ARG_KINDS)}")
        category = _category_ref(node, "category", categories, optional=True)
        hvci_related = bool(node.flag("hvci_related"))
        if hvci_related != (category is not None):
            raise node.fail("hvci_related", "must be true exactly when a category is given")
        banner_issues = node.texts("banner_issues")
        for issue in banner_issues:
            if issue not in issues:
                raise node.fail("banner_issues", f"no banner_format with issue {issue!r} in verifier.toml")
        era = node.choice("era", ERAS)
        meanings.append(
            SubcodeMeaning(
                arg1=arg1,
                arg1_last=last,
                era=era,
                era_note=node.text("era_note", nonempty=True),
                category=category,
                hvci_related=hvci_related,
                description=node.text("description", nonempty=True),
                description_source=node.choice("description_source", DESCRIPTION_SOURCES),
                args=(args[0], args[1], args[2]),
                arg_kinds=(kinds[0], kinds[1], kinds[2]),
                banner_issues=banner_issues,
                banner_formats=tuple(
                    f.format for f in formats if f.issue in banner_issues and arg1 in f.subcodes
                ),
                identify_by=node.text("identify_by", nonempty=True),
                sources=node.texts("sources"),
            )
        )
    return tuple(meanings), policy, (block[0], block[1])


def _bugchecks(
    directory: Path, categories: Mapping[str, Category]
) -> tuple[dict[int, BugCheckInfo], frozenset[str]]:
    doc = _read(directory / "bugchecks.toml")
    doc.check_keys({"bugcheck", "kernel_images"})
    kernel_images = frozenset(name.lower() for name in doc.texts("kernel_images"))
    result: dict[int, BugCheckInfo] = {}
    keys = {
        "code",
        "name",
        "hvci_related",
        "category",
        "decided_by_subcode",
        "args",
        "hvci_note",
        "url",
        "sources",
        "analyze_text",
    }
    for node in doc.array("bugcheck"):
        node.check_keys(keys)
        code = node.number("code")
        if code in result:
            raise node.fail("code", f"duplicate bug check {code:#x}")
        args = node.texts("args")
        if len(args) != 4:
            raise node.fail("args", "needs exactly four entries (Arg1..Arg4)")
        category = _category_ref(node, "category", categories, optional=True)
        hvci_related = bool(node.flag("hvci_related"))
        if hvci_related != (category is not None):
            raise node.fail("hvci_related", "must be true exactly when a category is given")
        name = node.text("name", nonempty=True)
        if not re.fullmatch(r"[A-Z0-9_]+", name):
            raise node.fail("name", f"{name!r} is not an upper-case bug check name")
        result[code] = BugCheckInfo(
            code=code,
            name=name,
            hvci_related=hvci_related,
            category=category,
            decided_by_subcode=bool(node.flag("decided_by_subcode", required=False)),
            args=(args[0], args[1], args[2], args[3]),
            hvci_note=node.text("hvci_note"),
            url=node.text("url", nonempty=True),
            sources=node.texts("sources"),
            analyze_text=node.text("analyze_text", required=False),
        )
    return result, kernel_images


def _constants(directory: Path) -> dict[str, ConstantTable]:
    doc = _read(directory / "constants.toml")
    tables: dict[str, ConstantTable] = {}
    table_keys = {
        "title",
        "width",
        "executable_if_any",
        "nx_if_any",
        "otherwise",
        "safe_or",
        "source",
        "detail_key",
        "undecided_note",
        "entry",
    }
    entry_keys = {"name", "value", "role", "mask", "executable", "replacement", "aliases", "note", "source"}
    for key in doc.data:
        table = doc.table(key)
        table.check_keys(table_keys)
        width = table.number("width")
        if width not in (16, 32, 64):
            raise table.fail("width", f"{width} is not 16, 32 or 64")
        entries = []
        names: set[str] = set()
        for node in table.array("entry"):
            node.check_keys(entry_keys)
            role = node.choice("role", ROLES)
            value = node.number("value")
            mask = node.integer("mask", required=(role == "field"))
            if role == "field" and mask is not None and value & ~mask:
                raise node.fail("value", f"{value:#x} has bits outside its field mask {mask:#x}")
            if role == "flag" and value == 0:
                raise node.fail("value", "a flag must have at least one bit")
            if value >> width:
                raise node.fail("value", f"{value:#x} does not fit in {width} bits")
            entry = ConstantEntry(
                name=node.text("name", nonempty=True),
                value=value,
                role=role,
                mask=mask if mask is not None else value,
                executable=node.flag("executable", required=False),
                replacement=_opt(node.text("replacement", required=False)),
                aliases=node.texts("aliases", required=False),
                note=node.text("note", required=False),
                source=node.text("source", required=False),
            )
            for name in (entry.name, *entry.aliases):
                if name in names:
                    raise node.fail("name", f"duplicate constant name {name!r} in [{key}]")
                names.add(name)
            entries.append(entry)
        for node, entry in zip(table.array("entry"), entries, strict=True):
            if entry.replacement is not None and entry.replacement not in names:
                raise node.fail("replacement", f"{entry.replacement!r} is not a constant of [{key}]")
        tables[key] = ConstantTable(
            key=key,
            title=table.text("title", nonempty=True),
            width=width,
            entries=tuple(entries),
            source=table.text("source", nonempty=True),
            executable_if_any=table.integer("executable_if_any", required=False),
            nx_if_any=table.integer("nx_if_any", required=False),
            otherwise=table.flag("otherwise", required=False),
            safe_or=table.integer("safe_or", required=False),
            detail_key=_opt(table.text("detail_key", required=False)),
            undecided_note=table.text("undecided_note", required=False),
        )
    for kind in ARGUMENT_KINDS[:-1]:
        if kind.replace("-", "_") not in tables:
            raise doc.fail(kind.replace("-", "_"), f"missing table for argument kind {kind!r}")
    return tables


def _apis(directory: Path, categories: Mapping[str, Category]) -> tuple[AffectedApi, ...]:
    doc = _read(directory / "apis.toml")
    doc.check_keys({"api"})
    apis: list[AffectedApi] = []
    seen: set[str] = set()
    keys = {
        "name",
        "module",
        "category",
        "argument_index",
        "argument_kind",
        "implicit_args",
        "group",
        "lists",
        "prototype",
        "note",
        "safe_when",
    }
    for node in doc.array("api"):
        node.check_keys(keys)
        name = node.text("name", nonempty=True)
        if name.lower() in seen:
            raise node.fail("name", f"duplicate API {name!r}")
        seen.add(name.lower())
        kind = node.choice("argument_kind", ARGUMENT_KINDS)
        index = node.integer("argument_index", required=False)
        if (index is None) != (kind == "none"):
            raise node.fail("argument_index", "give an index exactly when argument_kind is not 'none'")
        prototype = node.text("prototype", nonempty=True)
        if index is not None:
            count = len([p for p in prototype.strip("()").split(",") if p.strip()])
            if prototype.startswith("(") and not 0 <= index < count:
                raise node.fail("argument_index", f"{index} is outside the {count} documented parameters")
        lists = node.texts("lists")
        for value in lists:
            if value not in ("2015", "current"):
                raise node.fail("lists", f"{value!r} is not '2015' or 'current'")
        apis.append(
            AffectedApi(
                name=name,
                module=node.text("module", nonempty=True),
                category=str(_category_ref(node, "category", categories, optional=False)),
                argument_index=index,
                argument_kind=kind,
                group=node.text("group", nonempty=True),
                note=node.text("note", nonempty=True),
                implicit_args=node.integer("implicit_args", required=False) or 0,
                lists=lists,
                prototype=prototype,
                safe_when=_safe_when(node, index),
            )
        )
    return tuple(apis)


def _safe_when(node: _Node, deciding: int | None) -> SafeWhen | None:
    table = node.data.get("safe_when")
    if table is None:
        return None
    if not isinstance(table, dict) or set(table) != {"argument_index", "value", "bits", "reason"}:
        raise node.fail("safe_when", "needs exactly argument_index, value, bits and reason")
    index, value, bits, reason = table["argument_index"], table["value"], table["bits"], table["reason"]
    if not all(isinstance(n, int) for n in (index, value, bits)) or not isinstance(reason, str) or not reason:
        raise node.fail("safe_when", "argument_index, value and bits are integers, reason a non-empty string")
    if bits not in (8, 16, 32, 64) or not 0 <= value < 1 << bits:
        raise node.fail("safe_when", "bits is 8, 16, 32 or 64 and value fits in it")
    if deciding is None or index == deciding:
        raise node.fail("safe_when", "names another argument than the deciding one, which must exist")
    return SafeWhen(index, value, bits, reason)


def _events(
    directory: Path, categories: Mapping[str, Category]
) -> tuple[dict[int, EventInfo], dict[int, CiReason]]:
    doc = _read(directory / "events.toml")
    doc.check_keys({"event", "ci_reason"})
    events: dict[int, EventInfo] = {}
    for node in doc.array("event"):
        node.check_keys({"id", "provider", "category", "template", "template_v0", "explanation", "audit"})
        event_id = node.number("id")
        if event_id in events:
            raise node.fail("id", f"duplicate event id {event_id}")
        events[event_id] = EventInfo(
            id=event_id,
            provider=node.text("provider", nonempty=True),
            category=_category_ref(node, "category", categories, optional=True),
            template=node.text("template"),
            explanation=node.text("explanation"),
            template_v0=node.text("template_v0", required=False),
            audit=bool(node.flag("audit", required=False)),
        )
        if not events[event_id].template and not events[event_id].explanation:
            raise node.fail("template", "give a template or an explanation")
    reasons: dict[int, CiReason] = {}
    for node in doc.array("ci_reason"):
        node.check_keys({"id", "text", "category"})
        reason_id = node.number("id")
        reasons[reason_id] = CiReason(
            reason_id,
            node.text("text", nonempty=True),
            _category_ref(node, "category", categories, optional=True),
        )
    return events, reasons


def _image_rules(directory: Path, categories: Mapping[str, Category]) -> dict[str, ImageRule]:
    doc = _read(directory / "rules.toml")
    doc.check_keys({"rule"})
    rules: dict[str, ImageRule] = {}
    for node in doc.array("rule"):
        node.check_keys({"id", "name", "short", "help", "level"})
        rule_id = node.text("id", nonempty=True)
        if rule_id in categories or rule_id in rules:
            raise node.fail("id", f"{rule_id!r} is a category or a duplicate")
        rules[rule_id] = ImageRule(
            rule_id,
            node.text("name", nonempty=True),
            node.text("short", nonempty=True),
            " ".join(node.text("help", nonempty=True).split()),
            node.choice("level", ("error", "warning", "note")),
        )
    return rules


def _cross_check(
    categories: Mapping[str, Category],
    counters: tuple[CounterLabel, ...],
    subcodes: tuple[SubcodeMeaning, ...],
    bugchecks: Mapping[int, BugCheckInfo],
    events: Mapping[int, EventInfo],
) -> None:
    """What categories.toml says about each category must agree with the other tables."""
    for category in categories.values():
        where = f"categories.toml: category {category.id!r}"
        for label in category.counter_labels:
            if not any(c.label == label and c.category == category.id for c in counters):
                raise KnowledgeError(
                    f"{where}: counter label {label!r} is not a [[counter]] of it in verifier.toml"
                )
        for arg1 in category.subcodes:
            if not any(m.category == category.id and m.covers(arg1) for m in subcodes):
                raise KnowledgeError(
                    f"{where}: subcode {arg1:#x} has no meaning of this category in subcodes.toml"
                )
        for code in category.bugchecks:
            info = bugchecks.get(code)
            if info is None or info.category != category.id:
                raise KnowledgeError(
                    f"{where}: bug check {code:#x} is not of this category in bugchecks.toml"
                )
        for event_id in category.event_ids:
            event = events.get(event_id)
            if event is None or event.category != category.id:
                raise KnowledgeError(f"{where}: event {event_id} is not of this category in events.toml")


def load_from(directory: Path) -> KnowledgeBase:
    """Read and validate every knowledge file in ``directory`` (uncached; :func:`load` is the cached one)."""
    categories = _categories(directory)
    verifier, counters, formats = _verifier(directory, categories)
    subcodes, policy, block = _subcodes(directory, categories, formats)
    bugchecks, kernel_images = _bugchecks(directory, categories)
    constants = _constants(directory)
    apis = _apis(directory, categories)
    events, reasons = _events(directory, categories)
    image_rules = _image_rules(directory, categories)
    _cross_check(categories, counters, subcodes, bugchecks, events)
    counter_index: dict[str, str] = {}
    for counter in counters:
        key = normalize_label(counter.label)
        counter_index[key] = counter.category
        counter_index.setdefault(key.removesuffix("count"), counter.category)
    return KnowledgeBase(
        categories=MappingProxyType(categories),
        subcodes=tuple(sorted(subcodes, key=lambda m: (m.arg1, ERAS.index(m.era)))),
        subcode_policy=policy,
        bugchecks=MappingProxyType(bugchecks),
        kernel_images=kernel_images,
        banner_formats=formats,
        counters=counters,
        verifier=verifier,
        constants=MappingProxyType(constants),
        affected_apis=apis,
        events=MappingProxyType(events),
        ci_reasons=MappingProxyType(reasons),
        code_integrity_block=block,
        image_rules=MappingProxyType(image_rules),
        caller_subcodes=frozenset(
            m.arg1
            for m in subcodes
            if m.era == "current" and m.hvci_related and m.arg_kinds[0] == "code-address"
        ),
        _counter_index=MappingProxyType(counter_index),
        _api_index=MappingProxyType({api.name.lower(): api for api in apis}),
    )


@functools.cache
def load() -> KnowledgeBase:
    """The knowledge base shipped with the package, read once per process."""
    return load_from(KNOWLEDGE_DIR)


@functools.cache
def _load_remediation(path: Path) -> Remediation:
    doc = _read(path)
    doc.check_keys({"code_language", "what", "why", "fix", "before", "after", "verify", "link"})
    links = []
    for node in doc.array("link"):
        node.check_keys({"title", "url"})
        url = node.text("url", nonempty=True)
        if not url.startswith("https://"):
            raise node.fail("url", f"{url!r} is not an https URL")
        links.append(Link(node.text("title", nonempty=True), url))
    return Remediation(
        what=doc.text("what", nonempty=True).strip(),
        why=doc.text("why", nonempty=True).strip(),
        fix=doc.text("fix", nonempty=True).strip(),
        before=doc.text("before").strip("\n"),
        after=doc.text("after").strip("\n"),
        verify=doc.text("verify", nonempty=True).strip(),
        links=tuple(links),
        code_language=doc.choice("code_language", ("c", "text")),
    )
