"""The human summary for a terminal or a CI log: HVCI incidents first, each with its verdict, decoded
parameters, caller, the evidence with ``path:line``, and the fix from the knowledge base.

Plain text only (no colour, no markup): it is stable across runs, diffable, and every string that came from
an input goes through :func:`hvci.report.common.plain`, so a log line can never act as a terminal escape.
"""

from __future__ import annotations

from hvci.findings import Finding
from hvci.model import Baseline, Incident, Report
from hvci.report.common import (
    baseline_state,
    baseline_summary,
    bugcheck_text,
    caller_text,
    category_name,
    detail_lines,
    fix_summary,
    one_line,
    ordered_findings,
    plain,
    repeat_lines,
    verdict,
    where,
)

_INDENT = "    "


def _finding_lines(number: int, finding: Finding, baseline: Baseline | None) -> list[str]:
    """The representative incident, then (for a repeated bucket) its count and every occurrence."""
    lines = _incident_lines(number, finding.incident)
    state = baseline_state(finding, baseline)
    rows = [*([state] if state else []), *repeat_lines(finding)]
    lines.extend(f"{_INDENT}{label + ':':<12}{one_line(value)}" for label, value in rows)
    return lines


def _incident_lines(number: int, incident: Incident) -> list[str]:
    head = f"[{number}] {verdict(incident)}  ({incident.confidence})  {where(incident.source)}"
    lines = [plain(head), _INDENT + one_line(incident.title)]
    name = category_name(incident.category)
    if name is not None and name != incident.category:
        lines.append(f"{_INDENT}Category:   {plain(name)}")
    bugcheck = bugcheck_text(incident)
    if bugcheck is not None:
        lines.append(f"{_INDENT}Bug check:  {one_line(bugcheck)}")
    if incident.driver:
        lines.append(f"{_INDENT}Driver:     {one_line(incident.driver)}")
    caller = caller_text(incident.caller)
    if caller is not None:
        lines.append(f"{_INDENT}Caller:     {one_line(caller)}")
    if incident.count != 1:
        lines.append(f"{_INDENT}Count:      {incident.count}")
    for key, value in detail_lines(incident):
        lines.append(f"{_INDENT}{one_line(key)}: {one_line(value)}")
    if incident.evidence:
        lines.append(f"{_INDENT}Evidence:")
        marks = {"deciding": "+", "supporting": "+", "conflicting": "!"}
        for evidence in incident.evidence:
            mark = marks.get(evidence.weight, "-")
            place = one_line(where(evidence.span))
            lines.append(f"{_INDENT}  {mark} {place}  {one_line(evidence.reason)} ({evidence.weight})")
    fix = fix_summary(incident.category)
    if fix is not None:
        lines.append(f"{_INDENT}Fix:        {one_line(fix)}")
    lines.append(f"{_INDENT}Bucket:     {one_line(incident.bucket)}")
    return lines


def render_text(report: Report) -> str:
    hvci, others = ordered_findings(report)
    inputs = len(report.inputs)
    lines = [
        f"hvci-triage: {len(report.incidents)} incident(s) in {inputs} input(s), "
        f"{len(hvci) + len(others)} finding(s) after de-duplication, {len(hvci)} HVCI-related"
        + ("; analysis INCOMPLETE (see diagnostics)" if report.incomplete else ""),
        "",
    ]
    summary = baseline_summary(report.baseline)
    if summary is not None:
        lines[1:1] = [summary]
        if report.baseline is not None and report.baseline.absent:
            lines[2:2] = [f"  no longer seen: {one_line(b)}" for b in report.baseline.absent]
    number = 0
    if hvci:
        lines.append("HVCI-related findings")
        lines.append("=====================")
        for finding in hvci:
            number += 1
            lines.extend(_finding_lines(number, finding, report.baseline))
            lines.append("")
    if others:
        lines.append("Other findings (not HVCI-related)")
        lines.append("=================================")
        for finding in others:
            number += 1
            lines.extend(_finding_lines(number, finding, report.baseline))
            lines.append("")
    if not report.incidents and report.incomplete:
        lines.append("No incidents found in what could be read; the analysis is INCOMPLETE (see Inputs).")
    elif not report.incidents:
        lines.append("No incidents found.")
        lines.append("")
    lines.append("Inputs")
    lines.append("======")
    for info in report.inputs:
        lines.append(
            f"{one_line(info.path)}: {one_line(info.format)}, {one_line(info.encoding)}, {info.lines} line(s)"
        )
        for diagnostic in info.diagnostics:
            lines.append(
                f"  {one_line(where(diagnostic.span))}: {diagnostic.severity}: {one_line(diagnostic.message)}"
            )
    return "\n".join(lines) + "\n"
