"""Baselines and diffs: what is new since an earlier report (``--baseline``) or between two (``diff``).

An earlier report is a JSON report file (``--format json``) or a run of the results store. Its buckets and
their aliases come from its ``findings``; a report written before findings existed is read from its
incidents (each incident's bucket, and the ``category:module+0xOFFSET`` alias of one whose function is known),
so old baselines keep working. Matching is :func:`hvci.findings.same_bucket`: with or without symbols, the
same crash is the same bucket.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hvci.bucket import bucket_id
from hvci.findings import same_bucket

Keyed = tuple[str, tuple[str, ...]]


class BaselineError(Exception):
    """The baseline cannot be read; one line."""


@dataclass(frozen=True, slots=True)
class Entry:
    """A bucket of a report as a diff sees it."""

    bucket: str
    aliases: tuple[str, ...]
    count: int
    hvci_related: bool
    driver: str | None
    title: str


def _incident_alias(incident: Mapping[str, Any]) -> tuple[str, ...]:
    caller = incident.get("caller") or {}
    bucket = str(incident.get("bucket") or "")
    if not (bucket and caller.get("function") and caller.get("module") and caller.get("offset")):
        return ()
    alias = bucket_id(bucket.split(":", 1)[0], module=caller["module"], offset=int(caller["offset"], 16))
    return (alias,) if alias != bucket else ()


def entries(report: Mapping[str, Any]) -> list[Entry]:
    """The buckets of a JSON report (see the module docstring), in its order."""
    incidents = {i.get("id"): i for i in report.get("incidents", [])}
    if "findings" in report:
        return [
            Entry(
                f["bucket"],
                tuple(f.get("aliases", ())),
                int(f.get("count", 1)),
                bool(f.get("hvci_related")),
                f.get("driver"),
                str(incidents.get(f.get("incident"), {}).get("title", "")),
            )
            for f in report["findings"]
        ]
    merged: dict[str, Entry] = {}
    for incident in incidents.values():
        bucket = str(incident.get("bucket") or incident.get("id"))
        previous = merged.get(bucket)
        aliases = tuple(sorted({*(previous.aliases if previous else ()), *_incident_alias(incident)}))
        merged[bucket] = Entry(
            bucket,
            aliases,
            (previous.count if previous else 0) + int(incident.get("count", 1)),
            bool(incident.get("hvci_related")),
            incident.get("driver"),
            str(incident.get("title", "")),
        )
    return list(merged.values())


def load_report(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise BaselineError(f"cannot read the report {path}: {reason}") from None
    if not isinstance(data, dict) or not str(data.get("schema", "")).startswith("hvci-triage/"):
        raise BaselineError(f"{path} is not an hvci-triage JSON report (write one with --format json)")
    return data


def keys(found: Sequence[Entry]) -> list[Keyed]:
    return [(e.bucket, e.aliases) for e in found]


@dataclass(frozen=True, slots=True)
class Diff:
    new: tuple[Entry, ...]
    absent: tuple[Entry, ...]
    unchanged: tuple[tuple[Entry, Entry], ...]  # (old, new)


def diff(old: Sequence[Entry], new: Sequence[Entry]) -> Diff:
    """Buckets only in ``new``, only in ``old``, and in both (with both counts)."""
    by_key: dict[str, list[int]] = {}
    for index, entry in enumerate(old):
        for key in (entry.bucket, *entry.aliases):
            by_key.setdefault(key, []).append(index)
    matched_old: set[int] = set()
    fresh: list[Entry] = []
    both: list[tuple[Entry, Entry]] = []
    for entry in new:
        mine = (entry.bucket, entry.aliases)
        candidates = sorted({n for key in mine[1] + (entry.bucket,) for n in by_key.get(key, ())})
        hit = next((n for n in candidates if same_bucket(mine, (old[n].bucket, old[n].aliases))), None)
        if hit is None:
            fresh.append(entry)
        else:
            matched_old.add(hit)
            both.append((old[hit], entry))
    gone = tuple(o for n, o in enumerate(old) if n not in matched_old)
    return Diff(tuple(fresh), gone, tuple(both))
