"""The findings list: one row per incident, HVCI findings first, sortable and groupable.

Rows are rebuilt from the screen's incident list whenever the order, grouping or filter changes, and
appended in place while a file is loading in input order (the cheap, common case). Cells are
:class:`rich.text.Text`, never ``str``: ``DataTable`` would read a ``str`` cell as markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable

from hvci.model import Incident
from tui.labels import CONFIDENCE_RANK, caller_label, category_label, driver_label
from tui.safe_text import safe

SORT_KEYS = ("input", "category", "driver", "confidence", "count")
GROUP_KEYS = ("none", "category", "driver")

#: Fixed widths keep the list readable next to the detail pane; longer cells end in an ellipsis.
COLUMN_WIDTHS = {"Category": 22, "Driver": 13, "Function": 18, "Confidence": 10, "Count": 5}

_CONFIDENCE_STYLE = {"certain": "bold red", "likely": "yellow", "possible": "cyan", "none": "dim"}


@dataclass(frozen=True, slots=True)
class Filter:
    """Which incidents are listed: by category id, by driver name, and whether non-HVCI ones are shown."""

    category: str | None = None
    driver: str | None = None
    show_other: bool = True

    def accepts(self, incident: Incident) -> bool:
        if not self.show_other and not incident.hvci_related:
            return False
        if self.category is not None and incident.category != self.category:
            return False
        return self.driver is None or driver_label(incident).lower() == self.driver.lower()

    @property
    def active(self) -> bool:
        return self.category is not None or self.driver is not None


def _sort_key(name: str) -> Callable[[tuple[int, Incident]], tuple[object, ...]]:
    def key(item: tuple[int, Incident]) -> tuple[object, ...]:
        position, incident = item
        first: tuple[object, ...] = (not incident.hvci_related,)
        if name == "category":
            return (*first, category_label(incident).lower(), position)
        if name == "driver":
            return (*first, driver_label(incident).lower(), position)
        if name == "confidence":
            return (*first, CONFIDENCE_RANK.get(incident.confidence, 9), position)
        if name == "count":
            return (*first, -incident.count, position)
        return (*first, position)

    return key


def arrange(incidents: Sequence[Incident], sort: str, group: str, where: Filter) -> list[Incident]:
    """The incidents to list, in display order: HVCI first, then by group, then by the sort key."""
    items = [(i, incident) for i, incident in enumerate(incidents) if where.accepts(incident)]
    items.sort(key=_sort_key(sort))
    if group != "none":
        label = category_label if group == "category" else driver_label
        items.sort(key=lambda item: (not item[1].hvci_related, label(item[1]).lower()))
    return [incident for _, incident in items]


class FindingsTable(DataTable[Text]):
    """The list of incidents; posts :class:`FindingsTable.Highlighted` as the cursor moves."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False, id="findings.down"),
        Binding("k", "cursor_up", "Up", show=False, id="findings.up"),
        Binding("g,home", "scroll_top", "Top", show=False, id="findings.top"),
        Binding("G,end", "scroll_bottom", "Bottom", show=False, id="findings.bottom"),
    ]

    class IncidentHighlighted(Message):
        """The cursor is on ``incident`` (``None`` when the list is empty)."""

        def __init__(self, incident: Incident | None) -> None:
            super().__init__()
            self.incident = incident

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 (Textual names it id)
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.order = "input"
        self.grouping = "none"
        self.where = Filter()
        self.listed: list[Incident] = []
        self._columns_for = ""

    def _columns(self) -> None:
        layout = self.grouping
        if layout == self._columns_for:
            return
        self.clear(columns=True)
        names = ["Category", "Driver", "Function", "Confidence", "Count"]
        if layout == "driver":
            names = ["Driver", "Category", "Function", "Confidence", "Count"]
        for name in names:
            self.add_column(name, key=name.lower(), width=COLUMN_WIDTHS.get(name))
        self._columns_for = layout

    def _cells(self, incident: Incident, previous: Incident | None) -> list[Text]:
        category = safe(category_label(incident), "" if incident.hvci_related else "dim")
        driver = safe(driver_label(incident), "bold" if self.grouping == "driver" else "")
        if self.grouping != "none" and previous is not None:
            same = (
                category_label(previous) == category_label(incident)
                if self.grouping == "category"
                else driver_label(previous) == driver_label(incident)
            )
            if same:
                (category if self.grouping == "category" else driver).plain = "  ·"
        where = safe(caller_label(incident.caller))
        confidence = Text(incident.confidence, style=_CONFIDENCE_STYLE.get(incident.confidence, ""))
        count = Text(str(incident.count), justify="right")
        first, second = (driver, category) if self.grouping == "driver" else (category, driver)
        return [first, second, where, confidence, count]

    def show(self, incidents: Sequence[Incident]) -> None:
        """List ``incidents`` (the whole list so far), keeping the cursor on the same incident."""
        ordered = arrange(incidents, self.order, self.grouping, self.where)
        simple = self.order == "input" and self.grouping == "none" and self._columns_for == self.grouping
        kept = len(ordered) >= len(self.listed) and all(
            a is b for a, b in zip(ordered, self.listed, strict=False)
        )
        if simple and kept and self.row_count == len(self.listed):
            self._append(ordered[len(self.listed) :])
            return
        current = self.current
        self._columns()
        self.clear()
        self.listed = []
        self._append(ordered)
        if current is not None:
            self.select_id(current.id)
        self._announce()

    def _append(self, incidents: Sequence[Incident]) -> None:
        self._columns()
        was_empty = not self.listed
        for incident in incidents:
            previous = self.listed[-1] if self.listed else None
            self.add_row(*self._cells(incident, previous), key=str(len(self.listed)))
            self.listed.append(incident)
        if was_empty and self.listed:
            self.move_cursor(row=0, animate=False)
            self._announce()

    @property
    def current(self) -> Incident | None:
        if not self.listed or not 0 <= self.cursor_row < len(self.listed):
            return None
        return self.listed[self.cursor_row]

    def select_id(self, incident_id: str) -> bool:
        """Move the cursor to the incident with ``incident_id``; False when it is filtered out."""
        for row, incident in enumerate(self.listed):
            if incident.id == incident_id:
                self.move_cursor(row=row, animate=False)
                return True
        return False

    def step(self, delta: int) -> Incident | None:
        """Move the cursor ``delta`` rows, wrapping around; the incident now under it."""
        if not self.listed:
            return None
        self.move_cursor(row=(self.cursor_row + delta) % len(self.listed), animate=False)
        return self.current

    def _announce(self) -> None:
        self.post_message(self.IncidentHighlighted(self.current))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._announce()
