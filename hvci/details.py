"""An incident's details: one typed, immutable record per incident kind (``Incident.details``).

Each record is a frozen msgspec Struct: a reader (and mypy) sees which keys an incident of a kind has and
their types; nothing can change it after the incident is made (the pipeline re-emits incidents, and the TUI,
the reports and the findings share them); it pickles across the worker pipe; and a decoded value is made
once and shared (see ``hvci.logs.classify.details``). Structs rather than dataclasses: this module is
imported by every ``analyze``, and a Struct class is made in C (~0.1 ms) where a dataclass compiles its
methods from source (~1 ms each, 18 ms for these records); msgspec is imported by every run anyway (the
parsers' records are Structs).

The JSON report renders a record with :func:`details_json`: its fields in the order they are declared here,
a field that has a default (``None``) left out while it has that default, a field without one always there
(``null`` when it is None). So the declaration order IS the report's key order, and "optional" means "absent
from the report", never ``null``; where the same kind shows a key as ``null`` in one incident and leaves it
out in another, those are two records (:class:`MemoryIntegrityDetails` and :class:`MemoryIntegrityState`,
:class:`CallSiteDetails` and :class:`UncalledImportDetails`). docs/report.schema.json describes the JSON of
each (``$defs`` named after the record, tied to the kind in ``incidentFields.allOf``);
``tests/hvci/test_details.py`` checks that those definitions are what the types say and that every record
round-trips through its JSON.

To add a kind: a record here, a member in :data:`Details` and in :data:`DETAILS_BY_KIND`, its JSON in the
schema (see docs/extending.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal, TypeAlias

import msgspec

from hvci.knowledge.eras import Era

if TYPE_CHECKING:
    from hvci.model import IncidentKind

#: How much a failed image rule or call site matters; ``none`` for results that are not failures.
Level = Literal["error", "warning", "note", "none"]
#: The verdict of an image rule.
RuleStatus = Literal["pass", "fail", "not-applicable", "could-not-analyse"]
#: The verdict on one call site: a finding, a pass, unknown (never called clean or bad), or an API that no
#: argument makes safe.
CallVerdict = Literal["executable", "safe", "unknown", "banned"]
#: What a details record looks like in the JSON report (:func:`details_json`).
JsonValue: TypeAlias = "str | int | float | bool | None | list[JsonValue] | dict[str, JsonValue]"


class Record(msgspec.Struct, frozen=True):
    """A details record (and its parts): a frozen Struct whose fields :func:`details_json` renders in order,
    leaving out a field that has a default (None) while it has it."""


# ------------------------------------------------------------------------------------------ values


class NamedValue(Record, frozen=True):
    """A constant and its name: ``{"value": 512, "name": "NonPagedPoolNx"}``."""

    value: int
    name: str


class DecodedValue(Record, frozen=True):
    """A bug check argument decoded by its kind (pool type, page protection, MDL priority): its name, whether
    it asks for executable memory, the flags it is made of, and the value to use instead."""

    value: int
    name: str
    executable: bool | None
    parts: tuple[str, ...] | None = None  # the flags, when the name is more than one
    note: str | None = None
    safe_value: NamedValue | None = None  # the non-executable replacement, when it differs


class Subcode(Record, frozen=True):
    """A 0xC4 Arg1 with what it meant when (``era``)."""

    value: int
    meaning: str
    era: Era


class Argument(Record, frozen=True):
    """A bug check argument (``index`` from 1) and what it means (None: the knowledge base does not say)."""

    index: int
    value: int
    meaning: str | None


class SectionDetail(Record, frozen=True):
    """A PE section header as an image rule shows it."""

    name: str
    rva: int
    size: int
    characteristics: int
    flags: tuple[str, ...]


class Relocation(Record, frozen=True):
    """A base relocation an image rule objects to (``type``: IMAGE_REL_BASED_*)."""

    rva: int
    type: int


# ------------------------------------------------------------------------------------ one per kind


class CrashDetails(Record, frozen=True):
    """Kinds ``bugcheck`` and ``verifier-banner``: every argument with its meaning, then the decoded value,
    then the names and addresses the verifier banner (or a ``dS``/``da`` of Arg2/Arg4) printed.

    The decoded value sits under the ``detail_key`` its argument kind has in constants.toml
    (``pool_type``, ``protection``, ``priority``); a banner's address under the name of its pointer kind
    (subcodes.toml ``arg_kinds``: ``section_header``, ``iat_directory``, ``reloc_block``). A test checks
    that every such key of the knowledge base is a field here.
    """

    subcode: Subcode | None = None
    arguments: tuple[Argument, ...] | None = None
    pool_type: DecodedValue | None = None
    protection: DecodedValue | None = None
    priority: DecodedValue | None = None
    pool_tag: str | None = None  # the tag's four characters, or hex when they are not printable
    image: str | None = None
    section: str | None = None
    reloc_block: str | None = None  # hex addresses, as the banner printed them
    reloc_entry: str | None = None
    section_header: str | None = None
    iat_directory: str | None = None
    banner_caller: str | None = None  # the banner's caller when it is not the bug check's Arg2


class CounterDetails(Record, frozen=True):
    """Kind ``verifier-counters``: a non-zero code-integrity counter (``!verifier``, ``verifier /query``)."""

    counter: str
    value: int
    source: str


class ReadinessDetails(Record, frozen=True):
    """Kind ``readiness``: a readiness tool's verdict on a driver (``reason``, ``count`` as printed)."""

    tool: str
    reason: str | None
    count: int | None
    incompatible: bool


class EventDetails(Record, frozen=True):
    """Kind ``event``: an event log entry; ``status`` and ``failure_bitmap`` in hex."""

    provider: str
    event_id: int
    message: str
    process: str | None = None
    timestamp: str | None = None  # as the input printed it (findings order occurrences by it)
    status: str | None = None
    failure_bitmap: str | None = None


class ImageDetails(Record, frozen=True, kw_only=True):
    """Kind ``image``: a failed image rule (a ``!dh`` dump in a log, or ``scan``; ``scan`` adds ``status``
    and ``message``), with the facts the rule found (:class:`RuleFacts`' fields)."""

    rule: str
    status: RuleStatus | None = None
    level: Level
    message: str | None = None
    section_alignment: int | None = None
    sections: tuple[SectionDetail, ...] | None = None
    iat_rva: int | None = None
    iat_size: int | None = None
    section: SectionDetail | None = None
    relocations: int | None = None
    straddled: tuple[Relocation, ...] | None = None
    unsupported: tuple[Relocation, ...] | None = None
    dll_characteristics: int | None = None


class RuleFacts(Record, frozen=True, kw_only=True):
    """What an image rule found (``RuleResult.details``): the fields of :class:`ImageDetails` after its
    first four, which an incident adds (:func:`image_details`)."""

    section_alignment: int | None = None
    sections: tuple[SectionDetail, ...] | None = None
    iat_rva: int | None = None
    iat_size: int | None = None
    section: SectionDetail | None = None
    relocations: int | None = None
    straddled: tuple[Relocation, ...] | None = None
    unsupported: tuple[Relocation, ...] | None = None
    dll_characteristics: int | None = None


def image_details(
    rule: str, level: Level, facts: RuleFacts, status: RuleStatus | None = None, message: str | None = None
) -> ImageDetails:
    """An image incident's details: the rule and its level (and for ``scan`` its status and message), then
    what the rule found."""
    return ImageDetails(
        rule=rule,
        status=status,
        level=level,
        message=message,
        section_alignment=facts.section_alignment,
        sections=facts.sections,
        iat_rva=facts.iat_rva,
        iat_size=facts.iat_size,
        section=facts.section,
        relocations=facts.relocations,
        straddled=facts.straddled,
        unsupported=facts.unsupported,
        dll_characteristics=facts.dll_characteristics,
    )


class CallSiteDetails(Record, frozen=True):
    """Kind ``call-site``: a call of an affected API in a driver image and its verdict.

    The argument's possible constant values sit under the name of its argument kind (apis.toml
    ``argument_kind``, ``-`` as ``_``); a test checks that every kind but ``none`` is a field here.
    """

    level: Level
    verdict: CallVerdict
    api: str
    dll: str | None
    rva: int
    how: str  # how the call reaches the API: "call [IAT]", "tail jump [IAT]", ...
    instruction: str
    argument_index: int | None
    argument_kind: str
    reason: str
    pool_type: tuple[NamedValue, ...] | None = None
    pool_flags: tuple[NamedValue, ...] | None = None
    page_protection: tuple[NamedValue, ...] | None = None
    mdl_priority: tuple[NamedValue, ...] | None = None
    lookaside_flags: tuple[NamedValue, ...] | None = None
    cache_type: tuple[NamedValue, ...] | None = None
    replacement: int | None = None


class UncalledImportDetails(Record, frozen=True):
    """Kind ``call-site``: an affected API the image imports with no call site found (unknown, not clean)."""

    level: Level
    verdict: CallVerdict
    api: str
    dll: str
    reason: str


class MemoryIntegrityDetails(Record, frozen=True):
    """Kind ``memory-integrity``: Windows Security blocks a driver or lists it as incompatible."""

    source: str
    running: bool | None


class MemoryIntegrityState(MemoryIntegrityDetails, frozen=True):
    """Kind ``memory-integrity``: memory integrity's state where the text was taken."""

    configured: bool | None


class VerifierNoticeDetails(Record, frozen=True):
    """Kind ``verifier-notice``: Driver Verifier names a driver; its flags in hex (None: not printed)."""

    flags: str | None


class WdfLogDetails(Record, frozen=True):
    """Kind ``wdf-log``: a KMDF in-flight recorder log, its size and how many entries are verifier reports."""

    entries: int
    verifier_reports: int


#: Any incident's details.
Details: TypeAlias = (
    CrashDetails
    | CounterDetails
    | ReadinessDetails
    | EventDetails
    | ImageDetails
    | CallSiteDetails
    | UncalledImportDetails
    | MemoryIntegrityDetails
    | VerifierNoticeDetails
    | WdfLogDetails
)

#: The details record(s) of each incident kind (``Incident`` checks it when made).
DETAILS_BY_KIND: Mapping[IncidentKind, tuple[type[Details], ...]] = {
    "bugcheck": (CrashDetails,),
    "verifier-banner": (CrashDetails,),
    "verifier-counters": (CounterDetails,),
    "readiness": (ReadinessDetails,),
    "event": (EventDetails,),
    "image": (ImageDetails,),
    "call-site": (CallSiteDetails, UncalledImportDetails),
    "memory-integrity": (MemoryIntegrityDetails, MemoryIntegrityState),
    "verifier-notice": (VerifierNoticeDetails,),
    "wdf-log": (WdfLogDetails,),
}


def level_of(details: Details) -> Level | None:
    """How much an image rule's or a call site's failure matters (None: other kinds have no level)."""
    if isinstance(details, ImageDetails | CallSiteDetails | UncalledImportDetails):
        return details.level
    return None


#: Details with nothing in them (a crash whose bug check the input did not show).
NO_CRASH_DETAILS = CrashDetails()


#: Per record class: its fields in order, each with whether it is left out while None (it has a default).
_LAYOUTS: dict[type[Record], tuple[tuple[str, bool], ...]] = {}


def _layout(cls: type[Record]) -> tuple[tuple[str, bool], ...]:
    layout = _LAYOUTS.get(cls)
    if layout is None:
        layout = _LAYOUTS[cls] = tuple((f.name, f.default is None) for f in msgspec.structs.fields(cls))
    return layout


def _json(value: object) -> JsonValue:
    if isinstance(value, Record):
        return details_json(value)
    if isinstance(value, tuple):
        return [_json(item) for item in value]
    return value  # type: ignore[return-value]  # the records hold str, int, bool and None otherwise


def details_json(details: Record) -> dict[str, JsonValue]:
    """The record as the JSON report shows it: fields in declaration order, a field with a default left out
    while it is None, tuples as lists."""
    out: dict[str, JsonValue] = {}
    for name, optional in _layout(type(details)):
        value = getattr(details, name)
        if value is None and optional:
            continue
        out[name] = _json(value)
    return out
