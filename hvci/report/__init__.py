"""Report writers: one module per format, one entry point.

``render(report, fmt)`` for ``text``, ``json``, ``jsonl``, ``markdown``, ``html`` and ``sarif`` (SARIF is
written by :mod:`hvci.report.sarif`, shared with ``scan``); ``to_json_dict`` is the DESIGN.md contract;
``incident_markdown`` is one finding as Markdown (the TUI's "copy finding").
"""

from __future__ import annotations

from hvci.model import Report
from hvci.report.html import render_html
from hvci.report.json_report import dumps, render_json, render_jsonl, to_json_dict
from hvci.report.markdown import incident_markdown, render_markdown
from hvci.report.sarif import render_sarif
from hvci.report.text import render_text

FORMATS = ("text", "json", "jsonl", "sarif", "markdown", "html")

__all__ = ["FORMATS", "incident_markdown", "render", "to_json_dict"]


def _render_sarif(report: Report) -> str:
    """SARIF 2.1.0 through the writer ``scan`` uses too, so both commands upload the same way."""
    return dumps(render_sarif(report.incidents, inputs=report.inputs), indent=2) + "\n"


def render(report: Report, fmt: str) -> str:
    """The report in one of :data:`FORMATS`; raises ``ValueError`` for any other name."""
    writers = {
        "text": render_text,
        "json": render_json,
        "jsonl": render_jsonl,
        "markdown": render_markdown,
        "html": render_html,
        "sarif": _render_sarif,
    }
    writer = writers.get(fmt)
    if writer is None:
        raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return writer(report)
