"""``hvci-triage report --db FILE``: the roll-up of a results store across runs.

Per bucket and per driver: reports in all, in how many runs, first and last seen, and the trend over the last
runs (:mod:`hvci.report.rollup`); ``--since`` keeps the runs started on or after a date. ``--format html`` is
the self-contained page with charts (findings per category, per driver, over time).

Exit codes: 0 the roll-up was written; 2 the store cannot be read or the date is not one.
"""

from __future__ import annotations

from datetime import date, datetime

import click

from cli.lab import open_store
from cli.output import emit
from hvci.report.rollup import render_rollup_json, render_rollup_markdown, render_rollup_text
from hvci.report.rollup_html import render_rollup_html

WRITERS = {
    "text": render_rollup_text,
    "json": render_rollup_json,
    "markdown": render_rollup_markdown,
    "html": render_rollup_html,
}


def _since(value: str | None) -> str | None:
    """An ISO date or date-time, as the UTC start times in the store compare with it."""
    if value is None:
        return None
    try:
        return (datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)).isoformat()
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO date (2026-12-01) or time", param_hint="--since"
        ) from None


@click.command("report")
@click.option("--db", required=True, metavar="FILE", help="The results store written by analyze --db.")
@click.option("--since", metavar="DATE", help="Only runs started on or after DATE (ISO, UTC).")
@click.option(
    "--format", "fmt", type=click.Choice(sorted(WRITERS)), default="text", show_default=True, help="Format."
)
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
def command(db: str, since: str | None, fmt: str, output: str | None) -> None:
    """Roll up the runs of a results store: counts, first and last seen and trend per bucket and driver."""
    with open_store(db) as store:
        rollup = store.rollup(_since(since))
    emit(WRITERS[fmt](rollup), output)
