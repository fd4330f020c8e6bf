"""Report writers: one module per format, one entry point.

``render(report, fmt)`` for ``text``, ``json``, ``jsonl``, ``markdown``, ``html`` and ``sarif`` (SARIF is
written by :mod:`hvci.report.sarif`, shared with ``scan``; :mod:`hvci.report.sarif_findings` makes it one
result per finding for ``analyze``); ``to_json_dict`` is the JSON contract of ``docs/report.schema.json``;
``incident_markdown`` is one finding as Markdown (the TUI's "copy finding").

Adding a report format is a module with a ``render_x(report) -> str`` and one line in :data:`WRITERS`
(``analyze --format`` offers every key; see docs/extending.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hvci.model import Report

__all__ = [
    "FORMATS",
    "STREAMING",
    "WRITERS",
    "incident_markdown",
    "render",
    "render_pieces",
    "to_json_dict",
    "writer",
]

#: Every report format by the name ``--format`` takes, in the order help lists them: the module under
#: ``hvci.report`` and its writer function. A writer's module is imported when the format is used, so a
#: run loads only the writer it needs (start-up time; SARIF's alone reads the package metadata).
WRITERS: Mapping[str, str] = MappingProxyType(
    {
        "text": "text:render_text",
        "json": "json_report:render_json",
        "jsonl": "json_report:render_jsonl",
        "sarif": "sarif_findings:render_report",
        "markdown": "markdown:render_markdown",
        "html": "html:render_html",
    }
)
FORMATS = tuple(WRITERS)

#: Names this package hands out from its writers' modules, imported on first use.
_LAZY = {"incident_markdown": "markdown", "to_json_dict": "json_report"}


def writer(fmt: str) -> Callable[[Report], str]:
    """The writer function of one of :data:`FORMATS`; raises ``ValueError`` for any other name."""
    target = WRITERS.get(fmt)
    if target is None:
        raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
    module, _, name = target.partition(":")
    function: Callable[[Report], str] = getattr(importlib.import_module(f"hvci.report.{module}"), name)
    return function


def render(report: Report, fmt: str) -> str:
    """The report in one of :data:`FORMATS`; raises ``ValueError`` for any other name."""
    return writer(fmt)(report)


#: Formats whose writer can also hand the report out in pieces, made as they are written (memory for one
#: incident at a time instead of the whole document; the text is the same).
STREAMING: Mapping[str, str] = MappingProxyType(
    {"json": "json_report:iter_json", "jsonl": "json_report:iter_jsonl"}
)


def render_pieces(report: Report, fmt: str) -> Iterable[str]:
    """:func:`render` in pieces for a :data:`STREAMING` format, else the whole text as one piece."""
    target = STREAMING.get(fmt)
    if target is None:
        return (render(report, fmt),)
    module, _, name = target.partition(":")
    loaded = importlib.import_module(f"hvci.report.{module}")
    pieces: Callable[[Report], Iterable[str]] = getattr(loaded, name)
    return pieces(report)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"hvci.report.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'hvci.report' has no attribute {name!r}")
