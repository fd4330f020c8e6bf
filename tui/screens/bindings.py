"""The main screen's key bindings: one id each (the keymap file and the help screen use it); ``show=True``
puts a binding on the key line at the bottom."""

from __future__ import annotations

from textual.binding import Binding, BindingType

MAIN_BINDINGS: list[BindingType] = [
    Binding(
        "e",
        "next_finding",
        "Next",
        id="finding.next",
        tooltip="Next finding (moves the list and the evidence)",
    ),
    Binding("E", "previous_finding", "Prev", show=False, id="finding.previous", tooltip="Previous finding"),
    Binding("slash", "search", "Search", id="search.open", tooltip="Search the input text"),
    Binding("n", "search_next", "Next match", show=False, id="search.next", tooltip="Next search match"),
    Binding(
        "N",
        "search_previous",
        "Previous match",
        show=False,
        id="search.previous",
        tooltip="Previous match",
    ),
    Binding(
        "s",
        "cycle_sort",
        "Sort",
        show=False,
        id="findings.sort",
        tooltip="Cycle the sort: input order, category, driver, confidence, count",
    ),
    Binding(
        "S",
        "cycle_group",
        "Group",
        show=False,
        id="findings.group",
        tooltip="Cycle grouping: none, category, driver",
    ),
    Binding(
        "o",
        "toggle_other",
        "Other",
        show=False,
        id="findings.other",
        tooltip="Show or hide incidents that are not HVCI-related",
    ),
    Binding(
        "d",
        "show_tab('detail-tab')",
        "Detail",
        id="view.detail",
        tooltip="The selected finding in detail",
    ),
    Binding(
        "v",
        "show_tab('evidence-tab')",
        "Evidence",
        id="view.evidence",
        tooltip="The raw input with the finding's lines highlighted",
    ),
    Binding("z", "maximize_pane", "Zoom", id="view.zoom", tooltip="Maximise the focused pane, or restore it"),
    Binding(
        "left_square_bracket",
        "resize_list(-1)",
        "Narrower list",
        show=False,
        id="view.list_smaller",
        tooltip="Give the list less room (remembered)",
    ),
    Binding(
        "right_square_bracket",
        "resize_list(1)",
        "Wider list",
        show=False,
        id="view.list_larger",
        tooltip="Give the list more room (remembered)",
    ),
    Binding(
        "equals_sign",
        "resize_list(0)",
        "Auto size",
        show=False,
        id="view.list_auto",
        tooltip="Size the list to its content again; with --follow: pause or resume following",
    ),
    Binding(
        "c",
        "app.copy_finding",
        "Copy",
        show=False,
        id="copy.finding",
        tooltip="Copy the finding as Markdown",
    ),
    Binding(
        "w",
        "app.copy_windbg",
        "Copy WinDbg",
        show=False,
        id="copy.windbg",
        tooltip="Copy the WinDbg commands",
    ),
    Binding(
        "p", "app.paste", "Paste", show=False, id="view.paste", tooltip="Paste debugger output to analyse"
    ),
    Binding(
        "escape",
        "back",
        "Back",
        show=False,
        id="view.back",
        tooltip="Back one level: close search, restore a zoomed pane, return to the list",
    ),
]
