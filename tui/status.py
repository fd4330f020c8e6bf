"""The status line: the counts (always visible, on the left) and what each input is doing.

Counts come first and are never cut; the per-input part ends in an ellipsis when the window is narrow (the
Input column and the help screen have the full names). Progress says what is known: bytes read of the
total, findings so far, and ``done`` (or the reason an input could not be read) at the end.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from hvci.model import Incident
from tui.loading import Load
from tui.safe_text import clean
from tui.widgets.findings_table import Filter


def size_text(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def counts_text(
    incidents: Sequence[Incident], where: Filter, shown: int, *, incomplete: bool = False
) -> Text:
    """``3 HVCI · 1 other (hidden)`` and, when a filter hides some, how many are listed. Never green when an
    input could not be read in full: nothing unread may look clean."""
    text = Text(no_wrap=True, end="")
    hvci = sum(1 for i in incidents if i.hvci_related)
    text.append(f"{hvci} HVCI", "bold red" if hvci else "yellow" if incomplete else "green")
    if incomplete:
        text.append(" (incomplete)", "yellow")
    other = len(incidents) - hvci
    if other:
        text.append(f" · {other} other{'' if where.show_other else ' (hidden: o)'}")
    if shown != len(incidents) and where.active:
        text.append(f" · {shown} listed", "magenta")
    return text


def load_text(load: Load) -> Text:
    """One input: its name, then ``reading 12.0 MB / 91.2 MB``, ``following``, ``done`` or the error."""
    text = Text(no_wrap=True, end="")
    text.append(clean(load.display_name), "bold")
    found = len(load.incidents)
    if load.error:
        text.append(f" ✗ {clean(load.error)}", "red")
    elif load.follow and not load.incidents_done:
        text.append(f" following, {len(load.lines):,} lines", "green")
    elif not load.done:
        total = f" / {size_text(load.bytes_total)}" if load.bytes_total else ""
        parsed = load.bytes_parsed
        text.append(f" read {size_text(load.bytes_read)}{total}", "yellow")
        if not load.incidents_done:
            text.append(f", analysed {size_text(parsed)}", "yellow")
        text.append(f", {found} incident{'s' if found != 1 else ''} so far", "yellow")
    else:
        text.append(f" {len(load.lines):,} lines, {found} incident{'s' if found != 1 else ''}, done", "dim")
    return text


def loads_text(loads: Sequence[Load], order: str, grouping: str, where: Filter) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    if not loads:
        text.append("No input (p: paste)", "dim")
        return text
    if len(loads) > 3:
        done = sum(1 for load in loads if load.done)
        failed = sum(1 for load in loads if load.error)
        text.append(f"{len(loads)} inputs, {done} done", "bold")
        if failed:
            text.append(f", {failed} unreadable", "red")
        for load in loads:
            if not load.done:
                text.append("  ")
                text.append_text(load_text(load))
                break
    else:
        for number, load in enumerate(loads):
            if number:
                text.append("  ")
            text.append_text(load_text(load))
    text.append(f"  sort {order}", "dim")
    if grouping != "none":
        text.append(f"  group {grouping}", "dim")
    if where.active:
        text.append(f"  filter {clean(where.category or where.driver or '')}", "magenta")
    return text


def _input_summary(load: Load) -> Text:
    text = Text(end="")
    info = load.info
    text.append(f"• {clean(load.display_name)}: ", "bold")
    if load.error:
        text.append(f"not read in full: {clean(load.error)}\n", "red")
    elif info is not None:
        text.append(f"read as {info.format}, {info.encoding}, {info.lines:,} lines\n")
    else:
        text.append("still being read\n", "yellow")
    diagnostics = info.diagnostics if info is not None else ()
    shown = [d for d in diagnostics if d.severity != "info" and d.message != load.error]
    for diagnostic in shown[:3]:
        text.append(f"    {diagnostic.severity}: line {diagnostic.span.first_line}: ", "yellow")
        text.append(clean(diagnostic.message) + "\n")
    return text


def empty_text(loads: Sequence[Load], found: int, where: Filter) -> Text:
    """What the detail pane says when no finding is selected: why, and what to try."""
    text = Text(end="")
    if not loads:
        text.append("No input yet.\n\n", "bold")
        text.append(
            "Press p to paste debugger output (!analyze -v, the verifier banner, lm, k...), or start "
            "hvci-triage with log files, folders, event exports or dumps."
        )
        return text
    if found and where.active or found and not where.show_other:
        text.append(f"All {found} findings are hidden by the filter.\n\n", "bold")
        text.append(
            "o shows incidents that are not HVCI-related; ctrl+p, 'filter: clear' removes the filter."
        )
        return text
    if not all(load.done for load in loads):
        text.append("Nothing found yet; still reading.\n\n", "bold")
        text.append("Findings appear as soon as each crash, banner or event is complete.")
        return text
    text.append("No incidents found.\n\n", "bold")
    for load in loads[:20]:
        text.append_text(_input_summary(load))
    if len(loads) > 20:
        text.append(f"• and {len(loads) - 20} more inputs\n")
    text.append(
        "\nThe view lists bug checks (!analyze -v, 'Fatal System Error'), Driver Verifier code-integrity "
        "banners, CodeIntegrity events and readiness-tool reports. If the input should have one, "
        "check that it holds the debugger's output (not a screenshot or a summary), or press p and paste "
        "the crash text.",
        "dim",
    )
    return text
