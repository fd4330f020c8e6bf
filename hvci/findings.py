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
from hvci.details import EventDetails
from hvci.model import CONFIDENCES, Baseline, Incident
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


def joined_buckets(keyed: Iterable[tuple[str, tuple[str, ...]]]) -> dict[str, str]:
    """bucket -> the bucket it joins, from ``(bucket, aliases)`` pairs: a bucket without aliases (offset
    only) that is the alias of exactly one other bucket joins it; everything else stays itself."""
    pairs = list(keyed)
    owners: dict[str, set[str]] = {}
    for bucket, aliases in pairs:
        for alias in aliases:
            owners.setdefault(alias, set()).add(bucket)
    joined: dict[str, str] = {}
    for bucket, aliases in pairs:
        targets = owners.get(bucket, set()) - {bucket}
        if not aliases and len(targets) == 1:
            joined[bucket] = next(iter(targets))
    return joined


def _keyed(incident: Incident) -> tuple[str, tuple[str, ...]]:
    """An incident's bucket and, when its function is known, its offset key as an alias."""
    bucket = incident.bucket or incident.id  # an incident without a bucket is its own finding
    key = offset_key(incident)
    has_function = incident.caller is not None and incident.caller.function is not None
    return bucket, (key,) if has_function and key is not None and key != bucket else ()


def same_bucket(one: tuple[str, tuple[str, ...]], other: tuple[str, tuple[str, ...]]) -> bool:
    """Whether two ``(bucket, aliases)`` name one bucket (see the module docstring): the same key, or one
    offset-only key that is the other's alias. Two function buckets never match through an alias."""
    (bucket, aliases), (other_bucket, other_aliases) = one, other
    if bucket == other_bucket:
        return True
    return (not aliases and bucket in other_aliases) or (not other_aliases and other_bucket in aliases)


def _timestamp(incident: Incident) -> str | None:
    details = incident.details
    return details.timestamp if isinstance(details, EventDetails) else None


def _representative(members: Sequence[Incident]) -> Incident:
    rank = {c: n for n, c in enumerate(CONFIDENCES)}
    return min(members, key=lambda i: rank.get(i.confidence, len(rank)))  # min keeps the first on a tie


def group_findings(incidents: Iterable[Incident]) -> tuple[Finding, ...]:
    """The findings of a batch, in order of first occurrence (see the module docstring)."""
    ordered = list(incidents)
    keyed = [_keyed(i) for i in ordered]
    joined = joined_buckets(keyed)
    members: dict[str, list[Incident]] = {}
    for incident, (bucket, _) in zip(ordered, keyed, strict=True):
        members.setdefault(joined.get(bucket, bucket), []).append(incident)
    findings: list[Finding] = []
    for bucket, group in members.items():
        aliases = sorted({k for i in group if (k := offset_key(i)) is not None and k != bucket})
        occurrences = tuple(Occurrence(i.id, i.source, i.count, _timestamp(i)) for i in group)
        findings.append(Finding(bucket, _representative(group), occurrences, tuple(aliases)))
    return tuple(findings)


def compare(
    findings: Sequence[Finding], earlier: Sequence[tuple[str, tuple[str, ...]]], source: str
) -> Baseline:
    """Each finding ``new`` or ``unchanged`` against the ``(bucket, aliases)`` of an earlier report, and the
    earlier buckets no finding matches (:func:`same_bucket`), in their order."""
    by_key: dict[str, list[int]] = {}
    for index, (bucket, aliases) in enumerate(earlier):
        for key in (bucket, *aliases):
            by_key.setdefault(key, []).append(index)
    states: dict[str, str] = {}
    matched: set[int] = set()
    for finding in findings:
        mine = (finding.bucket, finding.aliases)
        candidates = {i for key in finding.keys for i in by_key.get(key, ())}
        hits = {i for i in candidates if same_bucket(mine, earlier[i])}
        matched |= hits
        states[finding.bucket] = "unchanged" if hits else "new"
    absent = tuple(bucket for index, (bucket, _) in enumerate(earlier) if index not in matched)
    return Baseline(source, states, absent)
