"""The command palette (ctrl+p): "verb: object" commands, offered only where they fit.

Exports need something loaded, copies need a selected finding, filters list the categories and drivers
actually present, sort and group offer only the orders not already in use (as posting does with layouts).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui.labels import category_name, driver_label
from tui.widgets.findings_table import GROUP_KEYS, SORT_KEYS, Filter, FindingsTable

if TYPE_CHECKING:
    from tui.app import TriageApp

#: Export formats offered, in palette order: (label, format name for ``hvci.report.render``).
EXPORTS = (
    ("JSON", "json"),
    ("SARIF", "sarif"),
    ("Markdown", "markdown"),
    ("HTML", "html"),
    ("JSONL", "jsonl"),
)

Command = tuple[str, Callable[[], object], str]


def palette_commands(app: TriageApp) -> list[Command]:
    """Every command that makes sense right now, as ``(name, callback, help)``."""
    screen = app.triage
    commands: list[Command] = []
    if screen.loads:
        for label, fmt in EXPORTS:
            commands.append(
                (
                    f"export: {label}",
                    partial(app.action_export, fmt),
                    f"write the report as {label} (asks where)",
                )
            )
    if screen.current is not None:
        commands.append(
            ("copy: finding as Markdown", app.action_copy_finding, "the selected finding, for an issue")
        )
        commands.append(
            ("copy: WinDbg commands", app.action_copy_windbg, "ln, !verifier, verifier /flags ...")
        )
        if screen.current.category is not None:
            commands.append(("copy: remediation", app.action_copy_remediation, "the fix for this category"))
    commands.append(
        ("symbols: set path", app.action_set_symbol_path, "PDB folders or srv* path; re-analyses")
    )
    commands.append(
        ("images: add driver folder", app.action_add_image_folder, ".sys files to resolve callers")
    )
    table = screen.query_one(FindingsTable)
    where = table.where
    incidents = screen.all_incidents()
    for category in sorted({i.category for i in incidents if i.category is not None}):
        new = Filter(category=category, driver=where.driver, show_other=where.show_other)
        commands.append(
            (f"filter: category {category_name(category)}", partial(screen.set_filter, new), category)
        )
    for driver in sorted({driver_label(i) for i in incidents if i.driver or i.caller is not None}):
        new = Filter(category=where.category, driver=driver, show_other=where.show_other)
        commands.append((f"filter: driver {driver}", partial(screen.set_filter, new), "only this driver"))
    if where.active:
        commands.append(
            ("filter: clear", partial(screen.set_filter, Filter(show_other=where.show_other)), "")
        )
    toggled = Filter(where.category, where.driver, show_other=not where.show_other)
    other = "filter: show other incidents" if not where.show_other else "filter: hide other incidents"
    commands.append((other, partial(screen.set_filter, toggled), "incidents that are not HVCI-related"))
    for key in SORT_KEYS:
        if key != table.order:
            commands.append((f"sort: by {key}", partial(screen.set_order, sort=key), ""))
    for key in GROUP_KEYS:
        if key != table.grouping:
            name = "group: none" if key == "none" else f"group: by {key}"
            commands.append((name, partial(screen.set_order, group=key), ""))
    commands.append(("view: paste a log", app.action_paste, "analyse pasted debugger output"))
    commands.append(("view: help", app.action_help, "keys and how to remap them"))
    return commands


class TriageCommands(Provider):
    """Palette provider over :func:`palette_commands`."""

    def _commands(self) -> list[Command]:
        # Only TriageApp lists this provider in its COMMANDS, so the app is always one.
        return palette_commands(cast("TriageApp", self.app))

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            if name.startswith(("export:", "copy:")):
                yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> AsyncGenerator[Hit, None]:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, text=name, help=help_text)
