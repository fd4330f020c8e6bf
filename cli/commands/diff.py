"""``hvci-triage diff OLD.json NEW.json``: which buckets are new, which are gone, which stayed.

Both are JSON reports (``analyze --format json``); buckets match with or without symbols
(:func:`hvci.findings.same_bucket`). Exit codes: 0 no new HVCI-related bucket; 1 at least one (a CI gate:
"nothing new since the last build"); 2 a report cannot be read.
"""

from __future__ import annotations

import json

import click

from cli.exitcodes import ExitCode
from cli.output import emit
from hvci.batch.baseline import BaselineError, Diff, Entry, diff, entries, load_report
from hvci.report.common import one_line


def _entry(entry: Entry) -> dict[str, object]:
    return {
        "bucket": entry.bucket,
        "aliases": list(entry.aliases),
        "count": entry.count,
        "hvci_related": entry.hvci_related,
        "driver": entry.driver,
        "title": entry.title,
    }


def render_json(result: Diff) -> str:
    data = {
        "schema": "hvci-triage-diff/1",
        "new": [_entry(e) for e in result.new],
        "absent": [_entry(e) for e in result.absent],
        "unchanged": [{**_entry(new), "old_count": old.count} for old, new in result.unchanged],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def render_text(result: Diff) -> str:
    lines = [
        f"hvci-triage diff: {len(result.new)} new, {len(result.absent)} gone, "
        f"{len(result.unchanged)} unchanged bucket(s)"
    ]
    for heading, rows in (("New", result.new), ("Gone", result.absent)):
        if rows:
            lines += ["", heading, "=" * len(heading)]
            lines += [f"{e.count:>7}  {one_line(e.bucket)}  {one_line(e.title)}" for e in rows]
    if result.unchanged:
        lines += ["", "Unchanged (old -> new count)", "============================"]
        lines += [f"{old.count:>7} -> {new.count:<7} {one_line(new.bucket)}" for old, new in result.unchanged]
    return "\n".join(lines) + "\n"


@click.command("diff")
@click.argument("old", metavar="OLD.json")
@click.argument("new", metavar="NEW.json")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def command(ctx: click.Context, old: str, new: str, fmt: str) -> None:
    """Compare two JSON reports: buckets that are new, gone or unchanged, with their counts."""
    try:
        result = diff(entries(load_report(old)), entries(load_report(new)))
    except BaselineError as error:
        raise click.UsageError(str(error)) from None
    emit(render_json(result) if fmt == "json" else render_text(result), None)
    ctx.exit(ExitCode.FINDINGS if any(e.hvci_related for e in result.new) else ExitCode.OK)
