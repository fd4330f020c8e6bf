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

import heapq
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import itemgetter
from typing import Protocol

import msgspec

from hvci.bucket import bucket_id
from hvci.details import EventDetails
from hvci.model import Baseline, Incident, confidence_rank
from parsers.records import Span


class Occurrence(msgspec.Struct, frozen=True):
    """One incident of a finding: which, where, how many reports it stands for, and when (if the input
    says: events carry a timestamp)."""

    incident_id: str
    source: Span
    count: int = 1
    timestamp: str | None = None


class Finding(msgspec.Struct, frozen=True):
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
    def size(self) -> int:
        """How many occurrences."""
        return len(self.occurrences)

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


class OccurrenceStore(Protocol):
    """Where a :class:`FindingsBuilder` keeps occurrences until the findings are written: in memory, or on
    disk for a batch too large for that (:mod:`hvci.batch.spill`)."""

    def add(self, bucket: int, seq: int, occurrence: Occurrence) -> None: ...

    def read(self, buckets: Sequence[int]) -> Iterator[Occurrence]:
        """The occurrences of these buckets, in the order they were added (by ``seq``)."""
        ...


class MemoryOccurrences:
    """Occurrences in lists, one per bucket."""

    def __init__(self) -> None:
        self._lists: dict[int, list[tuple[int, Occurrence]]] = {}

    def add(self, bucket: int, seq: int, occurrence: Occurrence) -> None:
        self._lists.setdefault(bucket, []).append((seq, occurrence))

    def items(self) -> Iterator[tuple[int, int, Occurrence]]:
        """(bucket, seq, occurrence) for everything held, bucket by bucket."""
        for bucket, held in self._lists.items():
            for seq, occurrence in held:
                yield bucket, seq, occurrence

    def read(self, buckets: Sequence[int]) -> Iterator[Occurrence]:
        lists = [self._lists.get(bucket, []) for bucket in buckets]
        return (occurrence for _, occurrence in heapq.merge(*lists, key=itemgetter(0)))


class _Bucket(msgspec.Struct):
    """What a finding needs of one bucket's incidents, without the incidents: the representative (rank,
    order, incident), the keys for joining, the total count, the first and last occurrence."""

    number: int
    best: tuple[int, int, Incident]
    first: tuple[int, Occurrence]
    last: tuple[int, Occurrence]
    #: the offset keys of incidents whose function is known
    aliases: set[str] = msgspec.field(default_factory=set)
    bare: bool = False  # an incident with no alias (offset only, or no caller): it may join a function bucket
    offset_keys: set[str] = msgspec.field(default_factory=set)
    count: int = 0
    size: int = 0


class FindingTally(msgspec.Struct, frozen=True):
    """A finding as :class:`FindingsBuilder` hands it out: everything but the occurrences, which are read
    (in order) each time :attr:`occurrences` is iterated."""

    bucket: str
    incident: Incident
    aliases: tuple[str, ...]
    count: int
    size: int  # how many occurrences
    first_seen: Occurrence
    last_seen: Occurrence
    _read: Callable[[], Iterator[Occurrence]]

    @property
    def occurrences(self) -> Iterator[Occurrence]:
        return self._read()

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.bucket, *self.aliases)


#: A finding as the report writers and the results store read it: whole (:class:`Finding`, occurrences in a
#: tuple) or tallied (:class:`FindingTally`, occurrences read as they are written).
FindingLike = Finding | FindingTally


class FindingsBuilder:
    """Findings made incrementally: :meth:`add` each incident of the batch in report order, then
    :meth:`tallies` (or :meth:`findings`). Memory grows with the number of buckets, not of incidents; the
    occurrences go to ``occurrences`` (in memory unless a store on disk is given)."""

    def __init__(self, occurrences: OccurrenceStore | None = None) -> None:
        self._store = occurrences if occurrences is not None else MemoryOccurrences()
        self._buckets: dict[str, _Bucket] = {}
        self._seq = 0

    def add(self, incident: Incident) -> None:
        seq = self._seq = self._seq + 1
        key, aliases = _keyed(incident)
        occurrence = Occurrence(incident.id, incident.source, incident.count, _timestamp(incident))
        rank = confidence_rank(incident.confidence)
        found = self._buckets.get(key)
        if found is None:
            found = self._buckets[key] = _Bucket(
                len(self._buckets), (rank, seq, incident), (seq, occurrence), (seq, occurrence)
            )
        elif rank < found.best[0]:  # the first of the strongest stays on a tie
            found.best = (rank, seq, incident)
        found.last = (seq, occurrence)
        found.aliases.update(aliases)
        found.bare = found.bare or not aliases
        if (offset := offset_key(incident)) is not None:
            found.offset_keys.add(offset)
        found.count += incident.count
        found.size += 1
        self._store.add(found.number, seq, occurrence)

    def tallies(self) -> tuple[FindingTally, ...]:
        """The findings in order of first occurrence (see the module docstring)."""
        pairs = [(key, tuple(sorted(b.aliases))) for key, b in self._buckets.items() if b.aliases]
        pairs += [(key, ()) for key, b in self._buckets.items() if b.bare]
        joined = joined_buckets(pairs)
        groups: dict[str, list[_Bucket]] = {}
        for key, found in self._buckets.items():
            groups.setdefault(joined.get(key, key), []).append(found)
        ordered = sorted(groups.items(), key=lambda item: min(b.first[0] for b in item[1]))
        return tuple(self._tally(bucket, members) for bucket, members in ordered)

    def _tally(self, bucket: str, members: list[_Bucket]) -> FindingTally:
        numbers = tuple(b.number for b in members)
        store = self._store
        return FindingTally(
            bucket=bucket,
            incident=min(b.best for b in members)[2],
            aliases=tuple(sorted({k for b in members for k in b.offset_keys if k != bucket})),
            count=sum(b.count for b in members),
            size=sum(b.size for b in members),
            first_seen=min(b.first for b in members)[1],
            last_seen=max(b.last for b in members)[1],
            _read=lambda: store.read(numbers),
        )

    def findings(self) -> tuple[Finding, ...]:
        return tuple(Finding(t.bucket, t.incident, tuple(t.occurrences), t.aliases) for t in self.tallies())


def group_findings(incidents: Iterable[Incident]) -> tuple[Finding, ...]:
    """The findings of a batch, in order of first occurrence (see the module docstring)."""
    builder = FindingsBuilder()
    for incident in incidents:
        builder.add(incident)
    return builder.findings()


def compare(
    findings: Sequence[FindingLike], earlier: Sequence[tuple[str, tuple[str, ...]]], source: str
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
