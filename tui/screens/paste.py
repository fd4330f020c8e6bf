"""The paste view: paste debugger output, analyse it.

Analysing is bound to F5 and Ctrl+S and to a button, deliberately not to Ctrl+Enter alone: Windows
Terminal sends Ctrl+Enter as Ctrl+J (microsoft/terminal #18852), which a TextArea reads as a newline.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Label, TextArea


class PasteScreen(Screen[str | None]):
    """Dismisses with the pasted text on analyse, ``None`` on cancel."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f5,ctrl+s", "analyse", "Analyse", id="paste.analyse", priority=True),
        Binding("escape", "cancel", "Back", id="paste.cancel", priority=True),
    ]

    DEFAULT_CSS = """
    PasteScreen > Vertical { padding: 0 1; }
    PasteScreen Label { color: $text-muted; height: auto; width: 1fr; }
    PasteScreen TextArea { height: 1fr; }
    PasteScreen Horizontal { height: auto; align-horizontal: right; }
    PasteScreen Button { margin-left: 1; }
    """

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical():
            yield Label(
                "Paste kernel-debugger or Driver Verifier output below (!analyze -v, k, lm, !verifier, the "
                "verifier banner...), then press F5 or Ctrl+S, or the Analyse button.",
                markup=False,
            )
            yield TextArea(id="paste-text", soft_wrap=False, show_line_numbers=True, tab_behavior="indent")
            with Horizontal():
                yield Button("Cancel (Esc)", id="cancel")
                yield Button("Analyse (F5 / Ctrl+S)", id="analyse", variant="primary")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "paste a log"
        self.query_one(TextArea).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "analyse":
            self.action_analyse()
        else:
            self.action_cancel()

    def action_analyse(self) -> None:
        text = self.query_one(TextArea).text
        if not text.strip():
            self.notify("Nothing pasted yet.", severity="warning", markup=False)
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
