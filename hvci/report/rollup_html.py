"""The roll-up of a results store as one self-contained HTML page: charts (reports per category, per
driver, per run over time), then the bucket and driver tables. No script and no external resource; every
string from the store (bucket ids, driver names, commands) is escaped.
"""

from __future__ import annotations

from html import escape

from hvci.report.charts import bar_chart, column_chart
from hvci.report.common import one_line
from hvci.report.html import STYLE
from hvci.report.rollup import Rollup, trend_word


def _h(text: object) -> str:
    return escape(one_line(text), quote=True)


def render_rollup_html(rollup: Rollup) -> str:
    since = f" since {_h(rollup.since)}" if rollup.since else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>hvci-triage roll-up</title>',
        f"<style>{STYLE}</style></head><body>",
        "<h1>hvci-triage roll-up</h1>",
        f"<p><code>{_h(rollup.store)}</code>: {len(rollup.runs)} run(s){since}, {len(rollup.buckets)} "
        f"bucket(s), {len(rollup.drivers)} driver(s).</p>",
        '<div class="charts">',
        bar_chart("Reports per category", list(rollup.by_category)),
        bar_chart("Reports per driver", [(d.driver, d.count) for d in rollup.drivers]),
        column_chart("Findings per run", [(f"run {r.id} {r.started}", r.findings) for r in rollup.runs]),
        "</div>",
        "<h2>Buckets</h2><table><tr><th>Reports</th><th>Bucket</th><th>Driver</th><th>Runs</th>"
        "<th>First seen</th><th>Last seen</th><th>Trend</th></tr>",
    ]
    parts.extend(
        f"<tr><td>{b.count}</td><td><code>{_h(b.bucket)}</code><br>{_h(b.title)}</td>"
        f"<td>{_h(b.driver or '-')}</td><td>{b.runs}</td><td>{_h(b.first_seen)}</td>"
        f"<td>{_h(b.last_seen)}</td>"
        f"<td>{_h(' '.join(map(str, b.trend)))} ({trend_word(b.trend)})</td></tr>"
        for b in rollup.buckets
    )
    parts.append(
        "</table><h2>Drivers</h2><table><tr><th>Reports</th><th>Driver</th><th>Buckets</th>"
        "<th>First seen</th><th>Last seen</th></tr>"
    )
    parts.extend(
        f"<tr><td>{d.count}</td><td>{_h(d.driver)}</td><td>{d.buckets}</td><td>{_h(d.first_seen)}</td>"
        f"<td>{_h(d.last_seen)}</td></tr>"
        for d in rollup.drivers
    )
    parts.append(
        "</table><h2>Runs</h2><table><tr><th>Run</th><th>Started</th><th>Inputs</th><th>Findings</th>"
        "<th>Command</th></tr>"
    )
    parts.extend(
        f"<tr><td>{r.id}</td><td>{_h(r.started)}</td><td>{r.inputs}</td><td>{r.findings}</td>"
        f"<td><code>{_h(r.command)}</code></td></tr>"
        for r in rollup.runs
    )
    parts.append("</table></body></html>")
    return "\n".join(parts) + "\n"
