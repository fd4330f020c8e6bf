"""De-duplication: incidents of the same bucket, across lines, reboots and files, are one :class:`Finding`.

A lab folder holds the same violation many times (a driver that trips on every boot, a log pasted twice, a
95 MB log whose verifier banner repeats every few seconds). Reports, the TUI and the results store show one
finding per bucket with a count, where it was first and last seen, and every occurrence (the incident's id
and lines), so nothing is lost and nothing is shown twenty times.

Which incidents share a bucket (docs/batch.md says it for users):

* the same :attr:`Incident.bucket` (see :mod:`hvci.bucket`: ``category:module!function`` when the function
  is known, else ``category:module+0xOFFSET``, else ``category:module`` or the category alone);
* an incident whose function is unknown (no symbols, no ``ln``) but whose caller has a module and an offset
  joins the one function bucket of this batch with the same ``category:module+0xOFFSET`` key, so the same
  crash read with and without symbols is one finding under one name. Two function buckets are never merged
  (another build may put another function at that offset), and an offset that several functions claim is
  ambiguous: its incidents keep their own bucket.

Order is deterministic: findings in the order their first occurrence appears in the report's incident list
(inputs in the order given, lines in order), occurrences likewise; the representative incident (the one whose
verdict, caller and evidence a finding shows) is the occurrence with the strongest confidence, the first of
them on a tie.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hvci.bucket import bucket_id
from hvci.model import CONFIDENCES, Incident
from parsers.records import Span


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One incident of a finding: which, where, how many reports it stands for, and when (if the input
    says: events carry a timestamp)."""

    incident_id: str
    source: Span
    count: int = 1
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """One bucket of the batch: its representative incident and every occurrence."""

    bucket: str
    incident: Incident
    occurrences: tuple[Occurrence, ...]
    #: Other keys that name the same bucket (``category:module+0xOFFSET`` of a function bucket): a baseline
    #: or store run made without symbols matches through them.
    aliases: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        """How many reports the finding stands for (the sum of its incidents' counts)."""
        return sum(o.count for o in self.occurrences)

    @property
    def first_seen(self) -> Occurrence:
        return self.occurrences[0]

    @property
    def last_seen(self) -> Occurrence:
        return self.occurrences[-1]

    @property
    def keys(self) -> tuple[str, ...]:
        """Every key this finding answers to: its bucket first, then its aliases."""
        return (self.bucket, *self.aliases)


def offset_key(incident: Incident) -> str | None:
    """``category:module+0xOFFSET`` for an incident whose caller has a module and an offset, else None."""
    caller = incident.caller
    if caller is None or caller.module is None or caller.offset is None or not incident.bucket:
        return None
    prefix = incident.bucket.split(":", 1)[0]
    return bucket_id(prefix, module=caller.module, offset=caller.offset)


def _has_function(incident: Incident) -> bool:
    return incident.caller is not None and incident.caller.function is not None


def _canonical(incidents: Sequence[Incident]) -> dict[str, str]:
    """bucket -> the bucket it joins: offset-only buckets whose offset key names exactly one function
    bucket in the batch join it; everything else stays itself."""
    functions_at: dict[str, set[str]] = {}
    for incident in incidents:
        key = offset_key(incident)
        if key is not None and _has_function(incident) and key != incident.bucket:
            functions_at.setdefault(key, set()).add(incident.bucket)
    joined: dict[str, str] = {}
    for incident in incidents:
        key = offset_key(incident)
        if key is None or _has_function(incident) or incident.bucket != key:
            continue
        targets = functions_at.get(key, set())
        if len(targets) == 1:
            joined[incident.bucket] = next(iter(targets))
    return joined


def _timestamp(incident: Incident) -> str | None:
    value = incident.details.get("timestamp")
    return value if isinstance(value, str) else None


def _representative(members: Sequence[Incident]) -> Incident:
    rank = {c: n for n, c in enumerate(CONFIDENCES)}
    return min(members, key=lambda i: rank.get(i.confidence, len(rank)))  # min keeps the first on a tie


def group_findings(incidents: Iterable[Incident]) -> tuple[Finding, ...]:
    """The findings of a batch, in order of first occurrence (see the module docstring)."""
    ordered = list(incidents)
    joined = _canonical(ordered)
    members: dict[str, list[Incident]] = {}
    for incident in ordered:
        bucket = incident.bucket or incident.id  # an incident without a bucket is its own finding
        members.setdefault(joined.get(bucket, bucket), []).append(incident)
    findings: list[Finding] = []
    for bucket, group in members.items():
        aliases = sorted({k for i in group if (k := offset_key(i)) is not None and k != bucket})
        occurrences = tuple(Occurrence(i.id, i.source, i.count, _timestamp(i)) for i in group)
        findings.append(Finding(bucket, _representative(group), occurrences, tuple(aliases)))
    return tuple(findings)
