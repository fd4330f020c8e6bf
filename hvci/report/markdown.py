"""Markdown for pull-request comments, issue bodies and the TUI's "copy finding".

A whole report fits a pull-request comment (GitHub takes 65,536 characters): a table of the findings first,
then one section per finding while the budget lasts, each listing at most :data:`SHOWN_OCCURRENCES` places;
what is left out is counted and the JSON or HTML report has it all.

Text from the inputs is escaped for Markdown (it is data, not formatting): inline text gets its special
characters backslash-escaped and HTML-significant characters turned into entities; stack listings go into
fenced blocks whose fence is longer than any run of backticks inside (x64 addresses contain backticks).
"""

from __future__ import annotations

import re

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
    occurrence_text,
    one_line,
    ordered_findings,
    plain,
    repeat_lines,
    verdict,
    where,
)

#: Characters that start inline formatting (emphasis, code, links, tables, strike-through) wherever they are.
#: ``<``/``>``/``&`` become entities below; block markers (``#``, ``-``, ``1.``) cannot start our lines.
_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md(text: object) -> str:
    """Inline Markdown text that renders as exactly the characters given."""
    escaped = _SPECIAL.sub(r"\\\1", one_line(text))
    return escaped.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code_block(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{plain(text)}\n{fence}"


def incident_markdown(incident: Incident, level: int = 2) -> str:
    """One incident as a self-contained Markdown section."""
    hashes = "#" * level
    lines = [f"{hashes} {md(incident.title)}", ""]
    rows: list[tuple[str, str]] = [
        ("Verdict", f"{md(verdict(incident))} ({md(incident.confidence)})"),
        ("Source", md(where(incident.source))),
        ("Kind", md(incident.kind)),
    ]
    name = category_name(incident.category)
    if name is not None and name != incident.category:
        rows.append(("Category", md(name)))
    bugcheck = bugcheck_text(incident)
    if bugcheck is not None:
        rows.append(("Bug check", md(bugcheck)))
    if incident.driver:
        rows.append(("Driver", md(incident.driver)))
    caller = caller_text(incident.caller)
    if caller is not None:
        rows.append(("Caller", md(caller)))
    if incident.count != 1:
        rows.append(("Count", str(incident.count)))
    rows.extend((md(key), md(value)) for key, value in detail_lines(incident))
    rows.append(("Bucket", md(incident.bucket)))
    lines.append("| | |")
    lines.append("|---|---|")
    lines.extend(f"| {key} | {value} |" for key, value in rows)
    if incident.evidence:
        lines.extend(["", "**Evidence**", ""])
        lines.extend(
            f"- `{where(e.span).replace('`', '')}` {md(e.reason)} ({md(e.weight)})" for e in incident.evidence
        )
    fix = fix_summary(incident.category)
    if fix is not None:
        lines.extend(["", f"**Fix:** {md(fix)}"])
    if incident.stack:
        lines.extend(["", "**Stack**", "", code_block("\n".join(f.text for f in incident.stack))])
    return "\n".join(lines) + "\n"


#: A pull-request comment holds 65,536 characters; the rest of the budget is the inputs table.
COMMENT_BUDGET = 60_000
SHOWN_OCCURRENCES = 20


def finding_markdown(finding: Finding, level: int = 2, baseline: Baseline | None = None) -> str:
    """One finding: its representative incident, then how often and where it was seen."""
    text = incident_markdown(finding.incident, level)
    state = baseline_state(finding, baseline)
    repeats = repeat_lines(finding)
    if not repeats and state is None:
        return text
    heads = [*([state] if state else []), *repeats[:3]]
    lines = [text, *(f"**{label}:** {md(value)}  " for label, value in heads)]
    if not repeats:
        return "\n".join(lines) + "\n"
    shown = [f"`{occurrence_text(o).replace('`', '')}`" for o in finding.occurrences[:SHOWN_OCCURRENCES]]
    more = len(finding.occurrences) - len(shown)
    lines.append("**Seen at:** " + ", ".join(shown) + (f" and {more} more" if more > 0 else ""))
    return "\n".join(lines) + "\n"


def _findings_table(findings: list[Finding], baseline: Baseline | None) -> list[str]:
    lines = ["| # | Verdict | Driver | Bucket | Count | Baseline |", "|---|---|---|---|---|---|"]
    for number, finding in enumerate(findings, 1):
        incident = finding.incident
        state = baseline_state(finding, baseline)
        cells = (
            str(number),
            f"{md(verdict(incident))} ({md(incident.confidence)})",
            md(incident.driver or "-"),
            md(finding.bucket),
            str(finding.count),
            state[1] if state else "-",
        )
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def render_markdown(report: Report) -> str:
    hvci, others = ordered_findings(report)
    findings = [*hvci, *others]
    lines = [
        "# hvci-triage report",
        "",
        f"{len(report.incidents)} incident(s) in {len(findings)} finding(s), {len(hvci)} HVCI-related, "
        f"in {len(report.inputs)} input(s)."
        + (" **Analysis incomplete** (see Inputs)." if report.incomplete else ""),
        "",
    ]
    summary = baseline_summary(report.baseline)
    if summary is not None:
        lines.extend([md(summary) + ".", ""])
    if findings:
        lines.extend(_findings_table(findings, report.baseline))
    used = sum(len(line) + 1 for line in lines)
    left_out = 0
    for heading, group in (("HVCI-related findings", hvci), ("Other findings", others)):
        if group:
            lines.extend([f"## {heading}", ""])
        for finding in group:
            section = finding_markdown(finding, level=3, baseline=report.baseline)
            if used + len(section) > COMMENT_BUDGET:
                left_out += 1
                continue
            used += len(section) + 1
            lines.append(section)
    if left_out:
        lines.extend([f"_{left_out} finding(s) left out to fit a comment: see the JSON or HTML report._", ""])
    lines.extend(_inputs_section(report))
    return "\n".join(lines) + "\n"


#: Inputs listed one per row up to this many; a lab batch lists only those with diagnostics.
LISTED_INPUTS = 50


def _inputs_section(report: Report) -> list[str]:
    infos = list(report.inputs)
    lines = ["## Inputs", ""]
    if len(infos) > LISTED_INPUTS:
        troubled = [i for i in infos if i.diagnostics]
        lines.extend([f"{len(infos)} input(s), {len(troubled)} with diagnostics (listed).", ""])
        infos = troubled[:LISTED_INPUTS]
    lines.extend(["| Input | Format | Encoding | Lines | Diagnostics |", "|---|---|---|---|---|"])
    for info in infos:
        count = len(info.diagnostics)
        cells = (md(info.path), md(info.format), md(info.encoding), f"{info.lines}", f"{count}")
        lines.append("| " + " | ".join(cells) + " |")
    diagnostics = [d for info in infos for d in info.diagnostics]
    if diagnostics:
        shown = diagnostics[: LISTED_INPUTS * 2]
        lines.extend(["", "**Diagnostics**", ""])
        lines.extend(f"- {md(where(d.span))}: {md(d.severity)}: {md(d.message)}" for d in shown)
        if len(diagnostics) > len(shown):
            lines.append(f"- and {len(diagnostics) - len(shown)} more (see the JSON report)")
    return lines
