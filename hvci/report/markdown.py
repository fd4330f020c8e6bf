"""Markdown for pull-request comments, issue bodies and the TUI's "copy finding".

Text from the inputs is escaped for Markdown (it is data, not formatting): inline text gets its special
characters backslash-escaped and HTML-significant characters turned into entities; stack listings go into
fenced blocks whose fence is longer than any run of backticks inside (x64 addresses contain backticks).
"""

from __future__ import annotations

import re

from hvci.model import Incident, Report
from hvci.report.common import (
    bugcheck_text,
    caller_text,
    category_name,
    detail_lines,
    fix_summary,
    one_line,
    ordered,
    plain,
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


def render_markdown(report: Report) -> str:
    hvci, others = ordered(report)
    lines = [
        "# hvci-triage report",
        "",
        f"{len(report.incidents)} incident(s), {len(hvci)} HVCI-related, "
        f"in {len(report.inputs)} input(s)."
        + (" **Analysis incomplete** (see Inputs)." if report.incomplete else ""),
        "",
    ]
    for heading, incidents in (("HVCI-related incidents", hvci), ("Other incidents", others)):
        if incidents:
            lines.extend([f"## {heading}", ""])
            lines.extend(incident_markdown(i, level=3) for i in incidents)
    lines.extend(
        ["## Inputs", "", "| Input | Format | Encoding | Lines | Diagnostics |", "|---|---|---|---|---|"]
    )
    for info in report.inputs:
        count = len(info.diagnostics)
        cells = (md(info.path), md(info.format), md(info.encoding), f"{info.lines}", f"{count}")
        lines.append("| " + " | ".join(cells) + " |")
    diagnostics = [d for info in report.inputs for d in info.diagnostics]
    if diagnostics:
        lines.extend(["", "**Diagnostics**", ""])
        lines.extend(f"- {md(where(d.span))}: {md(d.severity)}: {md(d.message)}" for d in diagnostics)
    return "\n".join(lines) + "\n"
