"""The roll-up across runs of the results store (``hvci-triage report --db``): what it holds and how it reads.

The store (:mod:`hvci.batch.store`) fills a :class:`Rollup`; the writers here render it as text, JSON or
Markdown, and :mod:`hvci.report.html` draws it with charts. Per bucket: how many reports in all, in how many
runs, first and last seen (run start times), and the trend (its count in each of the last runs, oldest
first); per driver the same totals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hvci.report.common import one_line
from hvci.report.json_report import dumps
from hvci.report.markdown import md

ROLLUP_SCHEMA = "hvci-triage-rollup/1"


@dataclass(frozen=True, slots=True)
class RunRow:
    id: int
    started: str
    inputs: int
    incidents: int
    findings: int
    command: str


@dataclass(frozen=True, slots=True)
class BucketRow:
    bucket: str
    category: str | None
    driver: str | None
    hvci_related: bool
    title: str
    count: int
    runs: int
    first_seen: str
    last_seen: str
    trend: tuple[int, ...]  # count in each of the last runs, oldest first (0: not seen in that run)


@dataclass(frozen=True, slots=True)
class DriverRow:
    driver: str
    count: int
    buckets: int
    first_seen: str
    last_seen: str


@dataclass(frozen=True, slots=True)
class Rollup:
    store: str
    since: str | None
    runs: tuple[RunRow, ...]
    buckets: tuple[BucketRow, ...]
    drivers: tuple[DriverRow, ...]
    by_category: tuple[tuple[str, int], ...]


def trend_word(trend: Sequence[int]) -> str:
    """``rising``, ``falling``, ``steady``, ``new`` (only in the last run) or ``gone`` (not in it)."""
    if not trend:
        return "-"
    last, earlier = trend[-1], trend[:-1]
    if last == 0:
        return "gone"
    if not any(earlier):
        return "new" if earlier else "steady"
    previous = next(c for c in reversed(earlier) if c)
    return "rising" if last > previous else "falling" if last < previous else "steady"


def rollup_dict(rollup: Rollup) -> dict[str, Any]:
    return {
        "schema": ROLLUP_SCHEMA,
        "store": rollup.store,
        "since": rollup.since,
        "runs": [vars_of(r) for r in rollup.runs],
        "buckets": [
            {**vars_of(b), "trend": list(b.trend), "direction": trend_word(b.trend)} for b in rollup.buckets
        ],
        "drivers": [vars_of(d) for d in rollup.drivers],
        "by_category": dict(rollup.by_category),
    }


def vars_of(row: object) -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__slots__}  # type: ignore[attr-defined]


def render_rollup_json(rollup: Rollup) -> str:
    return dumps(rollup_dict(rollup), indent=2) + "\n"


def render_rollup_text(rollup: Rollup) -> str:
    since = f" since {rollup.since}" if rollup.since else ""
    lines = [
        f"hvci-triage roll-up of {one_line(rollup.store)}{since}: {len(rollup.runs)} run(s), "
        f"{len(rollup.buckets)} bucket(s), {len(rollup.drivers)} driver(s)",
        "",
        "Buckets (most reports first)",
        "============================",
    ]
    for row in rollup.buckets:
        trend = " ".join(str(c) for c in row.trend)
        lines.append(
            f"{row.count:>7}  {one_line(row.bucket)}  runs={row.runs}  first={row.first_seen}  "
            f"last={row.last_seen}  trend=[{trend}] {trend_word(row.trend)}"
        )
    lines += ["", "Drivers", "======="]
    for driver in rollup.drivers:
        lines.append(
            f"{driver.count:>7}  {one_line(driver.driver)}  buckets={driver.buckets}  "
            f"first={driver.first_seen}  last={driver.last_seen}"
        )
    lines += ["", "Runs", "===="]
    for run in rollup.runs:
        lines.append(
            f"#{run.id}  {run.started}  {run.inputs} input(s), {run.findings} finding(s)  "
            f"{one_line(run.command)}"
        )
    return "\n".join(lines) + "\n"


def render_rollup_markdown(rollup: Rollup) -> str:
    since = f" since {md(rollup.since)}" if rollup.since else ""
    lines = [
        "# hvci-triage roll-up",
        "",
        f"{len(rollup.runs)} run(s){since}, {len(rollup.buckets)} bucket(s), "
        f"{len(rollup.drivers)} driver(s).",
        "",
        "| Reports | Bucket | Driver | Runs | First seen | Last seen | Trend |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rollup.buckets:
        lines.append(
            f"| {row.count} | {md(row.bucket)} | {md(row.driver or '-')} | {row.runs} | {md(row.first_seen)} "
            f"| {md(row.last_seen)} | {trend_word(row.trend)} |"
        )
    lines += ["", "| Reports | Driver | Buckets | First seen | Last seen |", "|---|---|---|---|---|"]
    for driver in rollup.drivers:
        lines.append(
            f"| {driver.count} | {md(driver.driver)} | {driver.buckets} | {md(driver.first_seen)} "
            f"| {md(driver.last_seen)} |"
        )
    return "\n".join(lines) + "\n"
