"""The help screen: every key binding with its id, and how to remap them.

The table is built from the ``BINDINGS`` of the app, screens and widgets (with the user's keymap applied),
so it cannot drift from what the keys really do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.keys import format_key
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.keymap import KEYMAP_ENV, keymap_path


def _bindings(owner: type) -> Iterable[Binding]:
    for item in getattr(owner, "BINDINGS", ()):
        if isinstance(item, Binding):
            yield item
        elif isinstance(item, tuple):
            yield Binding(*item)


def binding_rows(
    owners: Iterable[tuple[str, type]], keymap: Mapping[str, str]
) -> list[tuple[str, str, str, str]]:
    """``(keys, id, what, where)`` for each binding with an id, keys as remapped by ``keymap``."""
    rows = []
    for where, owner in owners:
        for binding in _bindings(owner):
            if binding.id is None:
                continue
            keys = " ".join(format_key(k.strip()) for k in keymap.get(binding.id, binding.key).split(","))
            rows.append((keys, binding.id, binding.tooltip or binding.description or binding.action, where))
    return rows


#: Section titles for the ``where`` of a binding, in the order shown.
PLACES = {
    "app": "Everywhere",
    "main": "Main screen",
    "findings": "Findings list",
    "detail": "Detail pane",
    "evidence": "Evidence view",
    "paste": "Paste view",
}


def keys_table(rows: Iterable[tuple[str, str, str, str]]) -> Table:
    """The bindings as a table that wraps its descriptions to the window (nothing cut at 80x24), one
    section per place, the binding id last (for the keymap file)."""
    table = Table(box=None, expand=True, show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("Keys", no_wrap=True, style="bold cyan")
    table.add_column("What", ratio=1)
    table.add_column("Binding id", no_wrap=True, style="dim")
    by_place: dict[str, list[tuple[str, str, str, str]]] = {}
    for row in rows:
        by_place.setdefault(row[3], []).append(row)
    for place, title in PLACES.items():
        if place not in by_place:
            continue
        table.add_row(Text(title, style="bold underline"), "", "")
        for keys, binding_id, what, _ in by_place[place]:
            table.add_row(Text(keys), Text(what), Text(binding_id))
    return table


class HelpScreen(ModalScreen[None]):
    """Lists the bindings; any of q, Escape, ? or F1 closes it; j/k/g/G/space/b scroll it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q,escape,question_mark,f1", "close", "Close", id="help.close"),
        Binding("j,down", "scroll('down')", "Down", show=False, id="help.down"),
        Binding("k,up", "scroll('up')", "Up", show=False, id="help.up"),
        Binding("space,pagedown", "scroll('page_down')", "Page down", show=False, id="help.page_down"),
        Binding("b,pageup", "scroll('page_up')", "Page up", show=False, id="help.page_up"),
        Binding("g,home", "scroll('home')", "Top", show=False, id="help.top"),
        Binding("G,end", "scroll('end')", "Bottom", show=False, id="help.bottom"),
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 96%; max-width: 120; height: 94%; border: thick $accent; background: $panel; padding: 0 1;
    }
    HelpScreen Static { margin: 1 0 0 0; }
    HelpScreen #keys { margin: 0; }
    """

    def __init__(self, owners: Iterable[tuple[str, type]], keymap: Mapping[str, str]) -> None:
        super().__init__()
        self.rows = binding_rows(owners, keymap)

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text("hvci-triage keys (q or Esc closes; j/k scroll)", style="bold"))
            yield Static(keys_table(self.rows), id="keys")
            remap = Text(end="")
            remap.append("Remapping keys\n", "bold")
            remap.append(
                "Put binding ids and keys in a TOML file, one per line, for example\n"
                '    "finding.next" = "e,right"\n'
                '    "search.open" = "slash,ctrl+f"\n'
                f"in {keymap_path()} or in the file named by ${KEYMAP_ENV}. Read at startup.\n"
            )
            remap.append("Command palette: ctrl+p (export, copy, symbols, images, filter, sort, group).\n")
            remap.append(
                "Paste view: F5 or Ctrl+S analyses (Ctrl+Enter is not used: Windows Terminal sends it "
                "as Ctrl+J)."
            )
            yield Static(remap)

    def action_scroll(self, where: str) -> None:
        scroller = self.query_one(VerticalScroll)
        {
            "down": scroller.scroll_down,
            "up": scroller.scroll_up,
            "page_down": scroller.scroll_page_down,
            "page_up": scroller.scroll_page_up,
            "home": scroller.scroll_home,
            "end": scroller.scroll_end,
        }[where](animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
