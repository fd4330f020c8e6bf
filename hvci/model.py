"""The engine's model: incidents with their verdict, evidence and decoded details, and the report.

An :class:`Incident` is one thing that happened (a bug check, a verifier banner that did not stop the
machine, a counter block, an event, an image problem); it carries the category it was put in, how sure we
are, and the :class:`Evidence` that decided it, each piece pointing at the input lines behind it. The JSON
report (docs/report.schema.json) is a direct rendering of :class:`Report` (see ``hvci.report.json_report``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal, TypeAlias, get_args

import msgspec

from hvci.details import DETAILS_BY_KIND, NO_CRASH_DETAILS, Details
from parsers.records import InputInfo, Span, StackFrame

if TYPE_CHECKING:  # the resolver (pefile, PDB readers) is imported only by runs that resolve symbols
    from symbols.resolve import SymbolSource

SCHEMA = "hvci-triage/1"

#: Confidence levels, strongest first. ``certain``: two independent pieces of evidence agree (or one that
#: cannot mean anything else, such as the verifier banner text); ``likely``: one strong piece;
#: ``possible``: a weak hint (a number alone, a heuristic); ``none``: not HVCI-related.
Confidence = Literal["certain", "likely", "possible", "none"]
CONFIDENCES: tuple[Confidence, ...] = get_args(Confidence)
#: How a piece of evidence bears on the verdict.
Weight = Literal["deciding", "supporting", "conflicting"]
#: What an incident is about (the ``kind`` of the JSON report).
IncidentKind = Literal[
    "bugcheck",
    "verifier-banner",
    "verifier-counters",
    "readiness",
    "event",
    "image",
    "call-site",
    "memory-integrity",
    "verifier-notice",
    "wdf-log",
]
#: How far a caller address was resolved (see :class:`Caller`): a symbol source, or the debugger's own
#: ``ln``/frame symbol printed in the log.
ResolvedBy: TypeAlias = "SymbolSource | Literal['debugger']"


def confidence_rank(confidence: Confidence) -> int:
    """0 for ``certain`` ... 3 for ``none``: sort and threshold by it, strongest first."""
    return CONFIDENCES.index(confidence)


class Evidence(msgspec.Struct, frozen=True):
    """One reason behind a verdict, with the lines it came from."""

    reason: str
    span: Span | None = None
    weight: Weight = "supporting"


class BugCheck(msgspec.Struct, frozen=True):
    code: int
    name: str | None
    args: tuple[int, ...]


class Caller(msgspec.Struct, frozen=True):
    """The code address an incident blames, resolved as far as the inputs allow.

    ``resolved_by`` is one of ``pdb``, ``dwarf`` (debug information inside the image), ``exports``,
    ``pdata``, ``debugger`` (an ``ln``/frame symbol printed in the log), ``module`` (module + offset only)
    or ``none``.
    """

    address: int | None
    module: str | None = None
    offset: int | None = None
    function: str | None = None
    displacement: int | None = None
    file: str | None = None
    line: int | None = None
    inlined: tuple[str, ...] = ()
    resolved_by: ResolvedBy = "none"
    note: str | None = None  # e.g. what is missing to resolve further (the symbol-store key)


class Incident(msgspec.Struct, frozen=True):
    id: str
    source: Span
    kind: IncidentKind
    category: str | None
    hvci_related: bool
    confidence: Confidence
    title: str
    bugcheck: BugCheck | None = None
    caller: Caller | None = None
    driver: str | None = None
    #: decoded values and names: the kind's record of :mod:`hvci.details` (immutable, like the incident)
    details: Details = NO_CRASH_DETAILS
    evidence: tuple[Evidence, ...] = ()
    stack: tuple[StackFrame, ...] = ()
    bucket: str = ""
    count: int = 1  # how many reports this incident stands for (e.g. one 0x2004 per section, counters)

    def __post_init__(self) -> None:
        if not isinstance(self.details, DETAILS_BY_KIND[self.kind]):
            raise TypeError(f"an incident of kind {self.kind!r} cannot have {type(self.details).__name__}")


class Baseline(msgspec.Struct, frozen=True):
    """A report compared with an earlier one (``--baseline``): each finding's bucket is ``new`` or
    ``unchanged``; ``absent`` lists the earlier buckets no longer seen (see :func:`hvci.findings.compare`)."""

    source: str  # what was compared with: a report file, or a run of a results store
    states: Mapping[str, str]
    absent: tuple[str, ...] = ()

    def count(self, state: str) -> int:
        return sum(1 for s in self.states.values() if s == state)


class Report(msgspec.Struct, frozen=True):
    inputs: tuple[InputInfo, ...]
    incidents: tuple[Incident, ...]
    schema: str = SCHEMA
    baseline: Baseline | None = None

    @property
    def hvci_incidents(self) -> tuple[Incident, ...]:
        return tuple(i for i in self.incidents if i.hvci_related)

    @property
    def incomplete(self) -> bool:
        """True when some input could not be read in full (an error diagnostic)."""
        return any(d.severity == "error" for i in self.inputs for d in i.diagnostics)
