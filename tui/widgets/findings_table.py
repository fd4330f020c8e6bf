"""The findings list: one row per incident, HVCI findings first, sortable and groupable.

Rows are rebuilt from the screen's incident list whenever the order, grouping or filter changes, and
appended in place while a file is loading in input order (the cheap, common case). Cells are
:class:`rich.text.Text`, never ``str``: ``DataTable`` would read a ``str`` cell as markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Self

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.geometry import Region
from textual.message import Message
from textual.widgets import DataTable

from hvci.model import Incident, confidence_rank
from tui.labels import caller_label, category_label, driver_label, input_label, short_driver
from tui.safe_text import safe

SORT_KEYS = ("input", "category", "driver", "confidence", "count")
GROUP_KEYS = ("none", "category", "driver")


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """A list column: its header, the narrowest and widest it is drawn, and when it is dropped first.

    Columns are as wide as their content up to ``widest``; when the pane is narrower than that, the widest
    flexible columns give up cells down to ``narrowest`` first, then columns are dropped, lowest ``keep``
    first, so that the category, the driver and the caller stay readable at 80 columns."""

    key: str
    header: str
    narrowest: int
    widest: int
    keep: int
    justify: str = "left"


COLUMNS = {
    spec.key: spec
    for spec in (
        ColumnSpec("input", "Input", 10, 28, 6),
        ColumnSpec("category", "Category", 14, 36, 9),
        ColumnSpec("driver", "Driver", 8, 26, 8),
        ColumnSpec("function", "Caller", 18, 44, 7),
        ColumnSpec("confidence", "Conf.", 8, 8, 4),
        ColumnSpec("count", "Count", 5, 8, 5, "right"),
        ColumnSpec("line", "Line", 4, 9, 2, "right"),
    )
}

#: DataTable draws one cell of padding on each side of every column.
CELL_PADDING = 2
#: Room kept for the vertical scrollbar.
SCROLLBAR = 2


def fit_columns(natural: dict[str, int], room: int) -> dict[str, int]:
    """Widths for the columns in ``natural`` (content widths, headers included) within ``room`` cells:
    content-sized up to each column's cap; then the flexible columns shrink, the one with most to give
    first; then the least important columns are dropped. Dict order (the column order) is kept."""
    widths = {key: min(width, COLUMNS[key].widest) for key, width in natural.items()}
    floor = {key: min(COLUMNS[key].narrowest, width) for key, width in widths.items()}
    keys = list(widths)

    def total() -> int:
        return sum(widths[k] for k in keys) + CELL_PADDING * len(keys)

    while total() > room:
        shrinkable = [k for k in keys if widths[k] > floor[k]]
        if shrinkable:
            widths[max(shrinkable, key=lambda k: widths[k] - floor[k])] -= 1
        elif len(keys) > 2:
            keys.remove(min(keys, key=lambda k: COLUMNS[k].keep))
        else:
            break
    return {k: widths[k] for k in keys}


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


def _sort_key(
    name: str, count_of: Callable[[Incident], int]
) -> Callable[[tuple[int, Incident]], tuple[object, ...]]:
    def key(item: tuple[int, Incident]) -> tuple[object, ...]:
        position, incident = item
        first: tuple[object, ...] = (not incident.hvci_related,)
        if name == "category":
            return (*first, category_label(incident).lower(), position)
        if name == "driver":
            return (*first, driver_label(incident).lower(), position)
        if name == "confidence":
            return (*first, confidence_rank(incident.confidence), position)
        if name == "count":
            return (*first, -count_of(incident), position)
        return (*first, position)

    return key


def _own_count(incident: Incident) -> int:
    return incident.count


def arrange(
    incidents: Sequence[Incident],
    sort: str,
    group: str,
    where: Filter,
    count_of: Callable[[Incident], int] = _own_count,
) -> list[Incident]:
    """The incidents to list, in display order: HVCI first, then by group, then by the sort key."""
    items = [(i, incident) for i, incident in enumerate(incidents) if where.accepts(incident)]
    items.sort(key=_sort_key(sort, count_of))
    if group != "none":
        label = category_label if group == "category" else driver_label
        items.sort(key=lambda item: (not item[1].hvci_related, label(item[1]).lower()))
    return [incident for _, incident in items]


class FindingsTable(DataTable[Text]):
    """The list of incidents; posts :class:`FindingsTable.IncidentHighlighted` as the cursor moves."""

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

    _repainted_row: int | None = None
    """The row :meth:`_update_in_place` repaints (set only while it runs)."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 (Textual names it id)
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.order = "input"
        self.grouping = "none"
        self.where = Filter()
        self.several_inputs = False
        #: How many reports a row stands for (the screen counts a finding's occurrences).
        self.count_of: Callable[[Incident], int] = _own_count
        self.listed: list[Incident] = []
        self._rows: list[dict[str, Text]] = []
        self._natural: dict[str, int] = {}
        self._widths: dict[str, int] = {}

    # -- columns -------------------------------------------------------------------------------------

    def _column_keys(self) -> list[str]:
        keys = ["category", "driver", "function", "confidence", "count", "line"]
        if self.grouping == "driver":
            keys[:2] = ["driver", "category"]
        return ["input", *keys] if self.several_inputs else keys

    def _measure(self, cells: dict[str, Text]) -> None:
        for key, cell in cells.items():
            width = cell.cell_len
            if width > self._natural.get(key, 0):
                self._natural[key] = width

    def _wanted_widths(self) -> dict[str, int]:
        natural = {
            key: max(len(COLUMNS[key].header), self._natural.get(key, 0)) for key in self._column_keys()
        }
        room = max(20, self.size.width - SCROLLBAR) if self.size.width else 200
        return fit_columns(natural, room)

    def natural_width(self) -> int:
        """Cells the list needs to show every column at its content width (within each column's cap)."""
        keys = self._column_keys()
        widths = (min(COLUMNS[k].widest, max(len(COLUMNS[k].header), self._natural.get(k, 0))) for k in keys)
        return sum(widths) + CELL_PADDING * len(keys) + SCROLLBAR

    def _relayout(self) -> None:
        """Re-create the columns (and so the rows) when the widths they need changed."""
        wanted = self._wanted_widths()
        if wanted == self._widths and self.columns:
            return
        self._widths = wanted
        row = self.cursor_row
        self.clear(columns=True)
        for key, width in wanted.items():
            spec = COLUMNS[key]
            self.add_column(Text(spec.header, justify=spec.justify), key=key, width=width)  # type: ignore[arg-type]
        for index, cells in enumerate(self._rows):
            self._add(index, cells)
        if self._rows:
            self.move_cursor(row=min(row, len(self._rows) - 1), animate=False)

    def _add(self, index: int, cells: dict[str, Text]) -> None:
        self.add_row(*(cells[key] for key in self._widths), key=str(index))

    def on_resize(self) -> None:
        self._relayout()

    # -- rows ----------------------------------------------------------------------------------------

    def _cells(self, incident: Incident, previous: Incident | None) -> dict[str, Text]:
        category = safe(category_label(incident), "" if incident.hvci_related else "dim")
        driver = safe(short_driver(driver_label(incident)), "bold" if self.grouping == "driver" else "")
        if self.grouping != "none" and previous is not None:
            same = (
                category_label(previous) == category_label(incident)
                if self.grouping == "category"
                else driver_label(previous) == driver_label(incident)
            )
            if same:
                (category if self.grouping == "category" else driver).plain = "  ·"
        return {
            "input": safe(input_label(incident.source.path), "dim"),
            "category": category,
            "driver": driver,
            "function": safe(caller_label(incident.caller)),
            "confidence": Text(incident.confidence, style=_CONFIDENCE_STYLE.get(incident.confidence, "")),
            "count": Text(str(self.count_of(incident)), justify="right"),
            "line": Text(str(incident.source.first_line), style="dim", justify="right"),
        }

    def show(self, incidents: Sequence[Incident]) -> None:
        """List ``incidents`` (the whole list so far), keeping the cursor on the same incident."""
        ordered = arrange(incidents, self.order, self.grouping, self.where, self.count_of)
        simple = self.order == "input" and self.grouping == "none"
        # a listed incident may come again, equal (the full analysis confirming the quick look) or enriched
        kept = len(ordered) >= len(self.listed) and all(
            a is b or a == b for a, b in zip(ordered, self.listed, strict=False)
        )
        if simple and kept and self.row_count == len(self.listed) and self.columns:
            self.listed[:] = ordered[: len(self.listed)]
            self._recount()
            self._append(ordered[len(self.listed) :])
            return
        current = self.current
        self.listed = []
        self._rows = []
        self._natural = {}
        self._append(ordered, relayout=True)
        if current is not None:
            self.select_id(current.id)
        self._announce()

    def _recount(self) -> None:
        """A repeat raised a listed finding's count: its cell changes in place (rebuilding the table would
        lay out the whole screen, once per repeat of a crash in a large log)."""
        for index, (incident, cells) in enumerate(zip(self.listed, self._rows, strict=True)):
            count = str(self.count_of(incident))
            if cells["count"].plain != count:
                cells["count"] = Text(count, justify="right")
                self._measure({"count": cells["count"]})
                if "count" in self._widths:
                    self._update_in_place(index, "count", cells["count"])

    def _update_in_place(self, row: int, key: str, cell: Text) -> None:
        """``update_cell``, repainting the one row: ``update_cell`` repaints the whole table (Textual 8.2),
        every line of the pane, most of them empty; on a large log that was ~15-25 ms of the UI thread per
        repeat of a crash, while the analysis waited for the CPU on a busy machine. See :meth:`refresh`."""
        self._repainted_row = row
        try:
            self.update_cell(str(row), key, cell)
        finally:
            self._repainted_row = None

    def refresh(
        self, *regions: Region, repaint: bool = True, layout: bool = False, recompose: bool = False
    ) -> Self:
        """Within :meth:`_update_in_place`, a repaint of the whole table is one of its row."""
        row, self._repainted_row = self._repainted_row, None
        if row is not None and not regions and repaint and not layout and not recompose:
            return self.refresh_row(row)
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def _append(self, incidents: Sequence[Incident], *, relayout: bool = False) -> None:
        was_empty = not self.listed
        start = len(self._rows)
        for incident in incidents:
            previous = self.listed[-1] if self.listed else None
            cells = self._cells(incident, previous)
            self._measure(cells)
            self._rows.append(cells)
            self.listed.append(incident)
        if relayout or self._wanted_widths() != self._widths or not self.columns:
            self._widths = {}
            self._relayout()
        else:
            for index in range(start, len(self._rows)):
                self._add(index, self._rows[index])
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
