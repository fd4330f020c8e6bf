"""The records of the knowledge base, as the TOML files spell them.

Each record is a frozen ``msgspec.Struct``: the TOML table is converted into it by ``msgspec.convert`` (types,
``Literal`` value sets, required and unknown keys are checked there, with the key path of every mistake), and
the rules that tie one field to another are checked in ``__post_init__``. A ``__post_init__`` raises
``ValueError("key: what is wrong")``; :mod:`hvci.knowledge.files` puts the file and the table's path in
front. Rules that span several tables or files are in :mod:`hvci.knowledge.crossrefs`.

Why msgspec (pinned in pyproject.toml): it validates into immutable, slotted records with the same type
annotations mypy reads, reports the path of each error, and imports in about a millisecond, which matters
because the knowledge base loads on every CLI start. pydantic would do the same job at ten times the import
cost.
"""

# No ``from __future__ import annotations`` here nor in ``files``: msgspec reads the fields' types when a
# decoder is first built, and string annotations would be evaluated one by one then (about 1.5 ms of every
# start from the cache); these are plain objects from the start.

import re
from collections.abc import Mapping
from typing import Any, Literal, get_args

import msgspec

from hvci.knowledge.eras import Era

#: Kinds of the deciding argument of an affected API; all but ``none`` name a table of constants.toml.
ArgumentKind = Literal[
    "pool-type", "pool-flags", "page-protection", "mdl-priority", "lookaside-flags", "cache-type", "none"
]
ARGUMENT_KINDS: tuple[ArgumentKind, ...] = get_args(ArgumentKind)
#: When a subcode meaning held (``SubcodeMeaning.era``; an incident's details show it: hvci.details).
ERAS: tuple[Era, ...] = get_args(Era)
DescriptionSource = Literal["capture", "docs", "old-docs", "ours"]
#: Kinds of 0xC4 Arg2..Arg4 (``SubcodeMeaning.arg_kinds``).
ArgKind = Literal[
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
]
ARG_KINDS: tuple[ArgKind, ...] = get_args(ArgKind)
#: How a constant matches a value: an enumeration value, one or more flag bits, or a value of a bit field.
Role = Literal["value", "flag", "field"]
Detected = Literal["run time", "image load"]
RuleLevel = Literal["error", "warning", "note"]
CodeLanguage = Literal["c", "text"]
MicrosoftList = Literal["2015", "current"]

VERIFIER_BUGCHECK = 0xC4
#: The bit that turns a bug check code into its ``_M`` variant (0x7E -> 0x1000007E).
M_VARIANT = 0x10000000

_KEBAB = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_BUGCHECK_NAME = re.compile(r"[A-Z0-9_]+")
_CONVERSION = re.compile(r"%(?:wZ|[psx])")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)(?:\.([a-z_]+))?\}")


#: Encoded-name prefix of the fields the loader fills from other files (no knowledge file sets them).
DERIVED = "derived:"


class Record(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Base of every record: immutable, and a key the record does not have is an error (a typo)."""


def _set(record: Record, name: str, value: Any) -> None:
    """Normalise a field of a frozen record while it is being built (in ``__post_init__`` only)."""
    msgspec.structs.force_setattr(record, name, value)


def _nonempty(record: Record, *names: str) -> None:
    for name in names:
        if not str(getattr(record, name)).strip():
            raise ValueError(f"{name}: must not be empty")


# ---------------------------------------------------------------------------------------------- categories


class Link(Record, frozen=True):
    title: str
    url: str

    def __post_init__(self) -> None:
        _nonempty(self, "title", "url")
        if not self.url.startswith("https://"):
            raise ValueError(f"url: {self.url!r} is not an https URL")


class Remediation(Record, frozen=True):
    """How to fix one category: in our own words, with before/after code and how to verify."""

    what: str
    why: str
    fix: str
    verify: str
    before: str = ""
    after: str = ""
    links: tuple[Link, ...] = msgspec.field(default=(), name="link")
    code_language: CodeLanguage = "c"

    def __post_init__(self) -> None:
        _nonempty(self, "what", "why", "fix", "verify")
        for name in ("what", "why", "fix", "verify"):
            _set(self, name, getattr(self, name).strip())
        _set(self, "before", self.before.strip("\n"))
        _set(self, "after", self.after.strip("\n"))


class Category(Record, frozen=True):
    id: str
    name: str
    short: str
    hvci_related: bool
    counter_labels: tuple[str, ...]
    subcodes: tuple[int, ...]
    bugchecks: tuple[int, ...]
    event_ids: tuple[int, ...]
    detected: Detected
    static_check: bool
    summary: str
    sources: tuple[str, ...]
    remediation_file: str = msgspec.field(name="remediation")
    #: The title of an incident of this category, ``{who}`` being the driver (empty: the bug check names it).
    incident_title: str = ""
    #: Parts put in parentheses after the title; a part is left out when a detail it names is absent.
    title_details: tuple[str, ...] = ()
    #: the remediation file's path (set when the knowledge base loads; read lazily by ``remediation``)
    remediation_path: str = msgspec.field(default="", name=f"{DERIVED}remediation_path")

    def __post_init__(self) -> None:
        _nonempty(self, "id", "name", "short", "summary", "remediation_file")
        if not _KEBAB.fullmatch(self.id):
            raise ValueError(f"id: {self.id!r} is not kebab-case")
        _set(self, "summary", self.summary.strip())

    @property
    def remediation(self) -> Remediation:
        """Parsed on first use: the long texts are not needed to classify, only to explain."""
        from hvci.knowledge.files import read_remediation  # the reader needs these records first

        return read_remediation(self.remediation_path)

    def title_for(self, who: str, details: Mapping[str, object]) -> str:
        """``incident_title`` for the driver ``who``, then the ``title_details`` whose every ``{key}`` /
        ``{key.name}`` the incident's details have, in parentheses: "Drv.sys allocated executable pool
        (NonPagedPool, tag MEMH)"."""
        parts = [p for p in (_fill(part, details) for part in self.title_details) if p]
        return self.incident_title.replace("{who}", who) + (f" ({', '.join(parts)})" if parts else "")


def _fill(template: str, details: Mapping[str, object]) -> str | None:
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


def _optional_category(record: Record, category: str | None) -> str | None:
    """``category = ""`` in a file means "no category"."""
    if category == "":
        _set(record, "category", None)
        return None
    return category


def _check_relation(hvci_related: bool, category: str | None) -> None:
    if hvci_related != (category is not None):
        raise ValueError("hvci_related: must be true exactly when a category is given")


# ------------------------------------------------------------------------------------- subcodes, bug checks


class SubcodeMeaning(Record, frozen=True):
    """One meaning a 0xC4 Arg1 value has had (a number can have several, see ``era``)."""

    arg1: int
    era: Era
    era_note: str
    category: str | None
    hvci_related: bool
    description: str  # the text !analyze prints after Arg1 (see description_source)
    description_source: DescriptionSource
    args: tuple[str, str, str]  # Arg2..Arg4
    arg_kinds: tuple[ArgKind, ArgKind, ArgKind]
    banner_issues: tuple[str, ...]
    identify_by: str
    sources: tuple[str, ...]
    arg1_last: int = -1  # inclusive end of a range of subcodes; -1 in the file means arg1 alone
    #: the banner formats printed with it (filled from verifier.toml when the knowledge base loads)
    banner_formats: tuple[str, ...] = msgspec.field(default=(), name=f"{DERIVED}banner_formats")
    bugcheck: int = VERIFIER_BUGCHECK

    def __post_init__(self) -> None:
        _nonempty(self, "era_note", "description", "identify_by")
        if self.arg1_last == -1:
            _set(self, "arg1_last", self.arg1)
        if self.arg1_last < self.arg1:
            raise ValueError(f"arg1_last: {self.arg1_last:#x} is below arg1 {self.arg1:#x}")
        _check_relation(self.hvci_related, _optional_category(self, self.category))

    def covers(self, arg1: int) -> bool:
        return self.arg1 <= arg1 <= self.arg1_last


class BugCheckInfo(Record, frozen=True):
    code: int
    name: str
    hvci_related: bool
    category: str | None
    args: tuple[str, str, str, str]
    hvci_note: str
    url: str
    sources: tuple[str, ...]
    decided_by_subcode: bool = False
    analyze_text: str = ""

    def __post_init__(self) -> None:
        _nonempty(self, "name", "url")
        if not _BUGCHECK_NAME.fullmatch(self.name):
            raise ValueError(f"name: {self.name!r} is not an upper-case bug check name")
        _check_relation(self.hvci_related, _optional_category(self, self.category))


# ---------------------------------------------------------------------------------------------- verifier


class BannerFormat(Record, frozen=True):
    """A message format (printf syntax) of the ``Verifier Detected a Code Integrity Issue`` banner."""

    issue: str  # parsers.records.VerifierBannerRecord.issue
    format: str
    subcodes: tuple[int, ...]
    category: str
    era: Era
    fields: tuple[str, ...]
    note: str = ""

    def __post_init__(self) -> None:
        _nonempty(self, "issue", "format")
        conversions = len(_CONVERSION.findall(self.format))
        if conversions != len(self.fields):
            raise ValueError(
                f"fields: {len(self.fields)} field names for {conversions} conversions in the format"
            )


class CounterLabel(Record, frozen=True):
    label: str
    category: str
    error: bool = False  # the readiness script reports it as an error rather than a warning

    def __post_init__(self) -> None:
        _nonempty(self, "label")


class VerifierFacts(msgspec.Struct, frozen=True):
    """The verifier's code-integrity flag, rule class, commands and banner (verifier.toml, flattened)."""

    flag: int
    flag_bit: int
    rule_class: int
    commands: Mapping[str, str]
    readiness_tools: Mapping[str, str]  # tool id (parsers.readiness) -> how titles name it
    banner_header: str
    banner_prefix: str
    banner_footer: str


# --------------------------------------------------------------------------------------------- constants


class ConstantEntry(Record, frozen=True):
    name: str
    value: int
    role: Role
    mask: int = -1  # a field's mask; for values and flags the value itself (-1 in the file: not given)
    executable: bool | None = None
    replacement: str | None = None
    aliases: tuple[str, ...] = ()
    note: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        _nonempty(self, "name")
        if self.role == "field" and self.mask == -1:
            raise ValueError("mask: missing (a field needs its mask)")
        if self.mask == -1:
            _set(self, "mask", self.value)
        if self.role == "field" and self.value & ~self.mask:
            raise ValueError(f"value: {self.value:#x} has bits outside its field mask {self.mask:#x}")
        if self.role == "flag" and self.value == 0:
            raise ValueError("value: a flag must have at least one bit")


class ConstantTable(Record, frozen=True):
    """One kind of value (``pool_type``, ``page_protection`` ...) and the rule that says what executes."""

    title: str
    width: Literal[16, 32, 64]
    entries: tuple[ConstantEntry, ...] = msgspec.field(name="entry")
    source: str = ""
    executable_if_any: int | None = None
    nx_if_any: int | None = None
    otherwise: bool | None = None
    safe_or: int | None = None
    detail_key: str | None = None  # the key of incident details that shows a decoded value of this kind
    undecided_note: str = ""  # said when the rule leaves executable-ness open
    key: str = msgspec.field(default="", name=f"{DERIVED}key")  # its name in constants.toml (set on load)

    def __post_init__(self) -> None:
        _nonempty(self, "title", "source")
        if not self.entries:
            raise ValueError("entry: must have at least one entry")
        names: set[str] = set()
        for i, entry in enumerate(self.entries):
            if entry.value >> self.width:
                raise ValueError(f"entry[{i}].value: {entry.value:#x} does not fit in {self.width} bits")
            for name in (entry.name, *entry.aliases):
                if name in names:
                    raise ValueError(f"entry[{i}].name: duplicate constant name {name!r}")
                names.add(name)

    @property
    def has_rule(self) -> bool:
        return self.executable_if_any is not None or self.nx_if_any is not None or self.otherwise is not None

    def entry(self, name: str) -> ConstantEntry | None:
        for entry in self.entries:
            if name == entry.name or name in entry.aliases:
                return entry
        return None


# -------------------------------------------------------------------------------------------------- apis


class SafeWhen(Record, frozen=True):
    """Another argument whose value makes the call safe whatever the deciding argument says (e.g.
    ``AccessMode == UserMode`` for ``MmMapLockedPagesSpecifyCache``: user-mode mappings are always NX)."""

    argument_index: int  # 0-based, in the documented prototype
    value: int
    bits: int  # the parameter's width: only its low bits are compared (a KPROCESSOR_MODE is a CCHAR)
    reason: str

    def __post_init__(self) -> None:
        _nonempty(self, "reason")
        if self.bits not in (8, 16, 32, 64):
            raise ValueError(f"bits: {self.bits} is not 8, 16, 32 or 64")
        if not 0 <= self.value < 1 << self.bits:
            raise ValueError(f"value: {self.value} does not fit in {self.bits} bits")


class AffectedApi(Record, frozen=True):
    """An API that can give a driver executable memory, and which argument decides."""

    name: str
    module: str
    category: str
    argument_kind: ArgumentKind
    group: str
    note: str
    prototype: str
    lists: tuple[MicrosoftList, ...]
    argument_index: int | None = None  # 0-based, in the documented prototype; None when no argument decides
    implicit_args: int = 0  # WdfDriverGlobals / COM this, passed before the documented arguments
    safe_when: SafeWhen | None = None

    def __post_init__(self) -> None:
        _nonempty(self, "name", "module", "category", "group", "note", "prototype")
        index = self.argument_index
        if (index is None) != (self.argument_kind == "none"):
            raise ValueError("argument_index: give an index exactly when argument_kind is not 'none'")
        if index is not None and self.prototype.startswith("("):
            count = len([p for p in self.prototype.strip("()").split(",") if p.strip()])
            if not 0 <= index < count:
                raise ValueError(f"argument_index: {index} is outside the {count} documented parameters")
        if self.safe_when is not None and (index is None or self.safe_when.argument_index == index):
            raise ValueError("safe_when: names another argument than the deciding one, which must exist")

    @property
    def binary_argument_index(self) -> int | None:
        """The argument slot in the compiled call (documented index + hidden leading arguments)."""
        return None if self.argument_index is None else self.argument_index + self.implicit_args


# ------------------------------------------------------------------------------------ events, image rules


class EventInfo(Record, frozen=True):
    id: int
    provider: str
    category: str | None
    template: str
    explanation: str
    template_v0: str = ""
    audit: bool = False

    def __post_init__(self) -> None:
        _nonempty(self, "provider")
        _optional_category(self, self.category)
        if not self.template and not self.explanation:
            raise ValueError("template: give a template or an explanation")


class CiReason(Record, frozen=True):
    id: int
    text: str
    category: str | None

    def __post_init__(self) -> None:
        _nonempty(self, "text")
        _optional_category(self, self.category)


class ImageRule(Record, frozen=True):
    """An image rule that is not a category (a ``category/sub`` case or an informational check)."""

    id: str
    name: str
    short: str
    help: str
    level: RuleLevel

    def __post_init__(self) -> None:
        _nonempty(self, "id", "name", "short", "help")
        _set(self, "help", " ".join(self.help.split()))
