"""Short display strings for an incident, shared by the table, the detail pane and the palette.

Only formatting lives here: names come from the knowledge base, values from the incident.
"""

from __future__ import annotations

from hvci.knowledge import kb
from hvci.model import Caller, Incident

#: An HVCI-related incident whose category the evidence does not decide (an unknown banner format).
UNCLASSIFIED = "HVCI, category unknown"


def category_name(category: str | None) -> str:
    """Microsoft's name for a category id, the id itself when the knowledge base does not know it."""
    if category is None:
        return "not HVCI-related"
    known = kb.load().categories.get(category)
    return known.name if known is not None else category


def category_label(incident: Incident) -> str:
    """What the Category column shows: the category's name, or for other incidents what they are."""
    if incident.category is not None:
        return category_name(incident.category)
    if incident.hvci_related:
        return UNCLASSIFIED
    if incident.bugcheck is not None:
        name = incident.bugcheck.name or "bug check"
        return f"other: 0x{incident.bugcheck.code:X} {name}"
    return f"other: {incident.title}"


def driver_label(incident: Incident) -> str:
    if incident.driver:
        return incident.driver
    if incident.caller is not None and incident.caller.module:
        return incident.caller.module
    return "—"


def caller_label(caller: Caller | None) -> str:
    """``function+0xdisp``, else ``module+0xoffset``, else the bare address, else a dash."""
    if caller is None:
        return "—"
    if caller.function:
        displacement = f"+0x{caller.displacement:x}" if caller.displacement else ""
        return f"{caller.function}{displacement}"
    if caller.module and caller.offset is not None:
        return f"{caller.module}+0x{caller.offset:x}"
    if caller.address is not None:
        return f"0x{caller.address:x}"
    return "—"


def where_label(caller: Caller | None) -> str:
    """The caller with its source position when the symbols gave one."""
    text = caller_label(caller)
    if caller is not None and caller.file:
        text += f"  ({caller.file}:{caller.line})" if caller.line is not None else f"  ({caller.file})"
    return text


def span_label(path: str, first: int, last: int) -> str:
    return f"{path}:{first}" if first == last else f"{path}:{first}-{last}"


def input_label(path: str) -> str:
    """An input as the list's Input column names it: the file name (the status line has the full path)."""
    return path.replace("\\", "/").rsplit("/", 1)[-1] or path


def short_driver(name: str) -> str:
    """A driver as the list shows it: the file name of a device path (``\\Device\\...\\x.sys``
    -> ``x.sys``); the detail pane shows the whole path."""
    return name.rsplit("\\", 1)[-1] or name
