"""Report writers: one module per format, one entry point.

``render(report, fmt)`` for ``text``, ``json``, ``jsonl``, ``markdown``, ``html`` and ``sarif`` (SARIF is
written by :mod:`hvci.report.sarif`, shared with ``scan``); ``to_json_dict`` is the JSON contract of
``docs/report.schema.json``; ``incident_markdown`` is one finding as Markdown (the TUI's "copy finding").

Adding a report format is a module with a ``render_x(report) -> str`` and one line in :data:`WRITERS`
(``analyze --format`` offers every key; see docs/extending.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from hvci.model import Report
from hvci.report.html import render_html
from hvci.report.json_report import dumps, render_json, render_jsonl, to_json_dict
from hvci.report.markdown import incident_markdown, render_markdown
from hvci.report.sarif import render_sarif
from hvci.report.text import render_text

__all__ = ["FORMATS", "WRITERS", "incident_markdown", "render", "to_json_dict"]


def _render_sarif(report: Report) -> str:
    """SARIF 2.1.0 through the writer ``scan`` uses too, so both commands upload the same way."""
    return dumps(render_sarif(report.incidents, inputs=report.inputs), indent=2) + "\n"


#: Every report format by the name ``--format`` takes, in the order help lists them.
WRITERS: Mapping[str, Callable[[Report], str]] = MappingProxyType(
    {
        "text": render_text,
        "json": render_json,
        "jsonl": render_jsonl,
        "sarif": _render_sarif,
        "markdown": render_markdown,
        "html": render_html,
    }
)
FORMATS = tuple(WRITERS)


def render(report: Report, fmt: str) -> str:
    """The report in one of :data:`FORMATS`; raises ``ValueError`` for any other name."""
    writer = WRITERS.get(fmt)
    if writer is None:
        raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return writer(report)
