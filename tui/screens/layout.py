"""How the main screen shares its room: list and detail side by side or stacked, the list content-sized
or at the share the user chose (remembered), any pane zoomed, and Escape/q going back one level at a time.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Input, TabbedContent

from tui.settings import SHARE_STEP, ViewSettings
from tui.widgets.evidence_log import EvidenceLog
from tui.widgets.findings_table import FindingsTable

#: Windows at least this wide show the list and the detail side by side.
WIDE = 140
#: Windows with fewer rows than this drop the title bar (the status line says what is open).
SHORT = 30
#: The detail pane keeps at least this many columns (side by side) or rows (stacked) when the list is
#: sized to its content.
DETAIL_MIN_WIDTH = 72
DETAIL_MIN_HEIGHT = 10


class PaneLayout(Screen[None]):
    """The layout half of :class:`tui.screens.triage.TriageScreen`."""

    settings: ViewSettings
    follow: bool

    def action_close_search(self) -> None:
        search = self.query_one("#search", Input)
        if search.has_class("-open"):
            search.remove_class("-open")
            self.query_one(FindingsTable).focus()

    @property
    def wide(self) -> bool:
        return self.size.width >= WIDE

    def apply_layout(self) -> None:
        """Side by side when wide, stacked otherwise; the list gets the user's share, or its content's."""
        wide = self.wide
        self.set_class(wide, "-wide")
        self.set_class(self.size.height < SHORT, "-short")
        table = self.query_one(FindingsTable)
        share = self.settings.share(wide)
        if wide:
            room = self.size.width
            cells = (
                round(room * share)
                if share is not None
                else min(table.natural_width(), room - DETAIL_MIN_WIDTH)
            )
            table.styles.width = max(30, cells)
            table.styles.height = "1fr"
        else:
            room = max(1, self.size.height - 4)
            rows = (
                round(room * share)
                if share is not None
                else min(table.row_count + 2, room - DETAIL_MIN_HEIGHT)
            )
            table.styles.height = max(5, rows)
            table.styles.width = "1fr"

    def action_resize_list(self, step: int) -> None:
        """``[`` / ``]`` give the list less or more room; ``=`` sizes it to its content again."""
        if step == 0 and self.follow:  # following a live log, = pauses and resumes it from any pane
            self.query_one(EvidenceLog).action_toggle_follow()
            return
        wide = self.wide
        table = self.query_one(FindingsTable)
        if step == 0:
            share = None
        else:
            room = self.size.width if wide else max(1, self.size.height - 4)
            current = self.settings.share(wide)
            if current is None:
                current = (table.outer_size.width if wide else table.outer_size.height) / room
            share = current + step * SHARE_STEP
        self.settings = self.settings.with_share(wide, share)
        self.apply_layout()
        self.app.remember_settings(self.settings)  # type: ignore[attr-defined]

    def action_maximize_pane(self) -> None:
        """``z``: the focused pane (the list, or the detail and evidence tabs) fills the screen, or not."""
        if self.maximized is not None:
            self.minimize()
            return
        focused = self.focused
        tabs = self.query_one(TabbedContent)
        if focused is not None and tabs in focused.ancestors_with_self:
            self.maximized = tabs
        else:
            self.maximized = self.query_one(FindingsTable)

    def action_focus_list(self) -> None:
        self.query_one(FindingsTable).focus()

    def back(self) -> bool:
        """Go back one level; False when already at the top (the list, nothing open or zoomed)."""
        search = self.query_one("#search", Input)
        if search.has_class("-open"):
            self.action_close_search()
            return True
        if self.maximized is not None:
            self.minimize()
            return True
        table = self.query_one(FindingsTable)
        if self.focused is not table:
            table.focus()
            return True
        return False

    def action_back(self) -> None:
        if not self.back():
            self.notify("At the top: q quits (Q quits from anywhere).", markup=False, timeout=3)
