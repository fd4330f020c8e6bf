"""The key line at the bottom of the main screen: the keys that matter most, at every width.

Textual's ``Footer`` rebuilds its widgets whenever focus moves (its keys follow the focused widget); on the
main screen that made every Detail/Evidence switch restyle a dozen widgets, the largest part of a key's
cost while a big log loads. The main screen's important keys do not depend on focus, so this one line is
drawn from the bindings marked ``show`` (remapped by the user's keymap) and whole hints are left out from
the end when the window is narrow, never cut in the middle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rich.text import Text
from textual.binding import Binding
from textual.keys import format_key
from textual.widget import Widget


def hints(bindings: Iterable[Binding], keymap: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(keys, description)`` of each binding to show, keys as the user mapped them (first key only)."""
    shown = []
    for binding in bindings:
        if not binding.show:
            continue
        keys = keymap.get(binding.id, binding.key) if binding.id else binding.key
        shown.append((format_key(keys.split(",")[0].strip()), binding.description))
    return shown


def hints_text(items: Iterable[tuple[str, str]], width: int) -> Text:
    text = Text(no_wrap=True, end="")
    for keys, description in items:
        piece = Text.assemble((f" {keys} ", "bold reverse"), f" {description} ")
        if text.cell_len + piece.cell_len > width:
            break
        text.append_text(piece)
    return text


class KeyHints(Widget):
    """One line of key hints; :meth:`show` sets them."""

    DEFAULT_CSS = """
    KeyHints { height: 1; dock: bottom; background: $panel; color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 (Textual names it id)
        super().__init__(id=id)
        self._items: list[tuple[str, str]] = []

    def show(self, items: list[tuple[str, str]]) -> None:
        self._items = items
        self.refresh()

    def render(self) -> Text:
        return hints_text(self._items, self.size.width)
