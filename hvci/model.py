"""The engine's model: incidents with their verdict, evidence and decoded details, and the report.

An :class:`Incident` is one thing that happened (a bug check, a verifier banner that did not stop the
machine, a counter block, an event, an image problem); it carries the category it was put in, how sure we
are, and the :class:`Evidence` that decided it, each piece pointing at the input lines behind it. The JSON
report (docs/report.schema.json) is a direct rendering of :class:`Report` (see ``hvci.report.json_report``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from parsers.records import InputInfo, Span, StackFrame

SCHEMA = "hvci-triage/1"

#: Confidence levels, strongest first. ``certain``: two independent pieces of evidence agree (or one that
#: cannot mean anything else, such as the verifier banner text); ``likely``: one strong piece;
#: ``possible``: a weak hint (a number alone, a heuristic); ``none``: not HVCI-related.
CONFIDENCES = ("certain", "likely", "possible", "none")


@dataclass(frozen=True, slots=True)
class Evidence:
    """One reason behind a verdict, with the lines it came from."""

    reason: str
    span: Span | None = None
    weight: str = "supporting"  # "deciding" | "supporting" | "conflicting"


@dataclass(frozen=True, slots=True)
class BugCheck:
    code: int
    name: str | None
    args: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Caller:
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
    resolved_by: str = "none"
    note: str | None = None  # e.g. what is missing to resolve further (the symbol-store key)


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    source: Span
    #: "bugcheck" | "verifier-banner" | "verifier-counters" | "readiness" | "event" | "image" | "call-site"
    #: | "memory-integrity" | "verifier-notice"
    kind: str
    category: str | None
    hvci_related: bool
    confidence: str
    title: str
    bugcheck: BugCheck | None = None
    caller: Caller | None = None
    driver: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    evidence: tuple[Evidence, ...] = ()
    stack: tuple[StackFrame, ...] = ()
    bucket: str = ""
    count: int = 1  # how many reports this incident stands for (e.g. one 0x2004 per section, counters)


@dataclass(frozen=True, slots=True)
class Baseline:
    """A report compared with an earlier one (``--baseline``): each finding's bucket is ``new`` or
    ``unchanged``; ``absent`` lists the earlier buckets no longer seen (see :func:`hvci.findings.compare`)."""

    source: str  # what was compared with: a report file, or a run of a results store
    states: Mapping[str, str]
    absent: tuple[str, ...] = ()

    def count(self, state: str) -> int:
        return sum(1 for s in self.states.values() if s == state)


@dataclass(frozen=True, slots=True)
class Report:
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
