"""Charts as inline SVG for the self-contained HTML reports: no script, no font, no fetch.

Horizontal bars for counts per label (findings per category, per driver) and columns for counts over time
(runs of the results store). Labels come from inputs (driver names, bucket ids), so every text node goes
through :func:`html.escape` after :func:`hvci.report.common.one_line`.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from hvci.report.common import one_line

BAR_HEIGHT = 18
LABEL_WIDTH = 260
BAR_WIDTH = 360
MAX_BARS = 20


def _text(value: object) -> str:
    return escape(one_line(value), quote=True)


def bar_chart(title: str, rows: Sequence[tuple[str, int]]) -> str:
    """Horizontal bars, largest first, at most :data:`MAX_BARS` (the rest summed as "others")."""
    ordered = sorted(rows, key=lambda row: (-row[1], row[0]))
    if len(ordered) > MAX_BARS:
        rest = sum(count for _, count in ordered[MAX_BARS - 1 :])
        ordered = [*ordered[: MAX_BARS - 1], (f"{len(rows) - MAX_BARS + 1} others", rest)]
    top = max((count for _, count in ordered), default=0) or 1
    height = BAR_HEIGHT * len(ordered) + 8
    width = LABEL_WIDTH + BAR_WIDTH + 60
    parts = [
        f"<figure><figcaption>{_text(title)}</figcaption>"
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
    ]
    for number, (label, count) in enumerate(ordered):
        y = number * BAR_HEIGHT + 4
        length = max(1, round(BAR_WIDTH * count / top))
        shown = label if len(label) <= 40 else label[:37] + "..."
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 13}" text-anchor="end" font-size="12">{_text(shown)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 2}" width="{length}" height="{BAR_HEIGHT - 5}" fill="#b3261e">'
            f"<title>{_text(label)}: {count}</title></rect>"
            f'<text x="{LABEL_WIDTH + length + 4}" y="{y + 13}" font-size="12">{count}</text>'
        )
    parts.append("</svg></figure>")
    return "".join(parts)


def column_chart(title: str, columns: Sequence[tuple[str, int]]) -> str:
    """Columns left to right in the order given (runs over time), each labelled on hover."""
    top = max((count for _, count in columns), default=0) or 1
    step = max(6, min(40, 600 // max(1, len(columns))))
    height, plot = 160, 130
    width = step * len(columns) + 40
    parts = [
        f"<figure><figcaption>{_text(title)}</figcaption>"
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
        f'<text x="0" y="12" font-size="11">{top}</text>'
    ]
    for number, (label, count) in enumerate(columns):
        tall = round(plot * count / top)
        x = 30 + number * step
        parts.append(
            f'<rect x="{x}" y="{plot - tall + 15}" width="{step - 2}" height="{tall}" fill="#1b5e9b">'
            f"<title>{_text(label)}: {count}</title></rect>"
        )
    parts.append(
        f'<line x1="28" y1="{plot + 15}" x2="{width}" y2="{plot + 15}" stroke="#555"/></svg></figure>'
    )
    return "".join(parts)
