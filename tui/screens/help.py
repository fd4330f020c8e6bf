"""The help screen: every key binding with its id, and how to remap them.

The table is built from the ``BINDINGS`` of the app, screens and widgets (with the user's keymap applied),
so it cannot drift from what the keys really do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.keys import format_key
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

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


class HelpScreen(ModalScreen[None]):
    """Lists the bindings; any of q, Escape, ? or F1 closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q,escape,question_mark,f1", "close", "Close", id="help.close"),
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 110; height: 90%; border: thick $accent; background: $panel; padding: 0 1;
    }
    HelpScreen DataTable { height: auto; }
    HelpScreen Static { margin: 1 0 0 0; }
    """

    def __init__(self, owners: Iterable[tuple[str, type]], keymap: Mapping[str, str]) -> None:
        super().__init__()
        self.rows = binding_rows(owners, keymap)

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text("hvci-triage keys", style="bold"))
            yield DataTable(id="keys", cursor_type="row", zebra_stripes=True)
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

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Keys", "Binding id", "What", "Where")
        for row in self.rows:
            table.add_row(*(Text(cell) for cell in row))
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)
