"""A self-contained HTML report (no scripts, no external resources) to attach to a bug or a lab run.

Built with the standard library: every string from an input goes through :func:`html.escape` (after
:func:`hvci.report.common.plain`), so a log line cannot inject markup.
"""

from __future__ import annotations

from html import escape

from hvci.findings import Finding
from hvci.model import Baseline, Report
from hvci.report.charts import bar_chart
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

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; color: #1b1b1b; }
h1 { font-size: 1.5em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; }
section.incident { border: 1px solid #ddd; border-radius: 4px; padding: 0.5em 1em; margin: 1em 0; }
section.hvci { border-left: 6px solid #b3261e; } section.other { border-left: 6px solid #777; }
table { border-collapse: collapse; } th, td { text-align: left; vertical-align: top; padding: 2px 8px; }
th { color: #555; font-weight: normal; } pre { background: #f5f5f5; padding: 0.5em; overflow-x: auto; }
.conflicting { color: #b3261e; } code { font-family: ui-monospace, monospace; }
section.incident:target { outline: 3px solid #1b5e9b; } .charts { display: flex; flex-wrap: wrap; gap: 2em; }
figure { margin: 0.5em 0; } figcaption { color: #555; }
"""


def h(text: object) -> str:
    return escape(one_line(text), quote=True)


def _finding_html(finding: Finding, baseline: Baseline | None, number: int) -> str:
    """A finding's section: its representative incident, then how often and where it was seen."""
    incident = finding.incident
    css = "hvci" if incident.hvci_related else "other"
    rows: list[tuple[str, str]] = [
        ("Verdict", f"{h(verdict(incident))} ({h(incident.confidence)})"),
        ("Source", f"<code>{h(where(incident.source))}</code>"),
        ("Kind", h(incident.kind)),
    ]
    name = category_name(incident.category)
    if name is not None and name != incident.category:
        rows.append(("Category", h(name)))
    bugcheck = bugcheck_text(incident)
    if bugcheck is not None:
        rows.append(("Bug check", f"<code>{h(bugcheck)}</code>"))
    if incident.driver:
        rows.append(("Driver", h(incident.driver)))
    caller = caller_text(incident.caller)
    if caller is not None:
        rows.append(("Caller", f"<code>{h(caller)}</code>"))
    if incident.count != 1:
        rows.append(("Count", str(incident.count)))
    rows.extend((h(key), h(value)) for key, value in detail_lines(incident))
    fix = fix_summary(incident.category)
    if fix is not None:
        rows.append(("Fix", h(fix)))
    rows.append(("Bucket", f"<code>{h(finding.bucket)}</code>"))
    state = baseline_state(finding, baseline)
    if state is not None:
        rows.append((h(state[0]), h(state[1])))
    rows.extend((h(label), h(value)) for label, value in repeat_lines(finding))
    parts = [
        f'<section class="incident {css}" id="finding-{number}">',
        f'<h3><a href="#finding-{number}">#{number}</a> {h(incident.title)}</h3>',
        "<table>",
        *(f"<tr><th>{key}</th><td>{value}</td></tr>" for key, value in rows),
        "</table>",
    ]
    if incident.evidence:
        parts.append("<p>Evidence</p><ul>")
        parts.extend(
            f'<li class="{h(e.weight)}"><code>{h(where(e.span))}</code> {h(e.reason)} ({h(e.weight)})</li>'
            for e in incident.evidence
        )
        parts.append("</ul>")
    if incident.stack:
        stack = "\n".join(escape(plain(f.text)) for f in incident.stack)
        parts.append(f"<p>Stack</p><pre>{stack}</pre>")
    parts.append("</section>")
    return "\n".join(parts)


def _rollup(findings: list[Finding], baseline: Baseline | None) -> list[str]:
    """The findings at a glance: charts per category and per driver, and a table linking to each one."""
    per_category: dict[str, int] = {}
    per_driver: dict[str, int] = {}
    for finding in findings:
        category = verdict(finding.incident)
        per_category[category] = per_category.get(category, 0) + finding.count
        driver = finding.incident.driver or "(unknown driver)"
        per_driver[driver] = per_driver.get(driver, 0) + finding.count
    parts = [
        "<h2>Roll-up</h2>",
        '<div class="charts">',
        bar_chart("Reports per category", list(per_category.items())),
        bar_chart("Reports per driver", list(per_driver.items())),
        "</div>",
        "<table><tr><th>#</th><th>Verdict</th><th>Driver</th><th>Bucket</th><th>Reports</th>"
        "<th>Incidents</th><th>Baseline</th></tr>",
    ]
    for number, finding in enumerate(findings, 1):
        incident = finding.incident
        state = baseline_state(finding, baseline)
        parts.append(
            f'<tr><td><a href="#finding-{number}">{number}</a></td>'
            f"<td>{h(verdict(incident))} ({h(incident.confidence)})</td><td>{h(incident.driver or '-')}</td>"
            f"<td><code>{h(finding.bucket)}</code></td><td>{finding.count}</td>"
            f"<td>{len(finding.occurrences)}</td><td>{h(state[1]) if state else '-'}</td></tr>"
        )
    parts.append("</table>")
    return parts


def render_html(report: Report) -> str:
    hvci, others = ordered_findings(report)
    findings = [*hvci, *others]
    summary = baseline_summary(report.baseline)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>hvci-triage report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>hvci-triage report</h1>",
        f"<p>{len(report.incidents)} incident(s) in {len(findings)} finding(s), {len(hvci)} "
        f"HVCI-related, in {len(report.inputs)} input(s)."
        + (" <strong>Analysis incomplete</strong> (see Inputs)." if report.incomplete else "")
        + "</p>",
        *([f"<p>{h(summary)}</p>"] if summary else []),
    ]
    if findings:
        parts.extend(_rollup(findings, report.baseline))
    number = 0
    for heading, group in (("HVCI-related findings", hvci), ("Other findings", others)):
        if group:
            parts.append(f"<h2>{heading}</h2>")
        for finding in group:
            number += 1
            parts.append(_finding_html(finding, report.baseline, number))
    parts.append(
        "<h2>Inputs</h2><table><tr><th>Input</th><th>Format</th><th>Encoding</th><th>Lines</th></tr>"
    )
    parts.extend(
        f"<tr><td><code>{h(i.path)}</code></td><td>{h(i.format)}</td><td>{h(i.encoding)}</td><td>{i.lines}</td></tr>"
        for i in report.inputs
    )
    parts.append("</table>")
    diagnostics = [d for info in report.inputs for d in info.diagnostics]
    if diagnostics:
        parts.append("<ul>")
        parts.extend(
            f"<li><code>{h(where(d.span))}</code> {h(d.severity)}: {h(d.message)}</li>" for d in diagnostics
        )
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
