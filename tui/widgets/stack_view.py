"""The stack of an incident, compact, with the frame the incident blames marked.

The marked frame is the one whose symbol is the incident's caller (module and function), else the first
frame in the blamed driver, else the frame a return address equal to the caller address points into.
Symbols resolved by the engine for the caller are shown under its frame.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from hvci.model import Caller
from parsers.records import StackFrame
from tui.labels import where_label
from tui.safe_text import clean

MARK = "▶"


def _stem(name: str | None) -> str:
    if not name:
        return ""
    lowered = name.lower()
    for suffix in (".sys", ".dll", ".exe"):
        if lowered.endswith(suffix):
            return lowered[: -len(suffix)]
    return lowered


def blamed_frame(frames: Sequence[StackFrame], caller: Caller | None, driver: str | None) -> int | None:
    """Index of the frame to mark, or ``None`` when nothing in the stack matches the caller or driver."""
    module = _stem(caller.module if caller is not None else None) or _stem(driver)
    if caller is not None and caller.function:
        for index, frame in enumerate(frames):
            if _stem(frame.module) == module and frame.function == caller.function:
                return index
    if module:
        for index, frame in enumerate(frames):
            if _stem(frame.module) == module:
                return index
    if caller is not None and caller.address is not None:
        for index, frame in enumerate(frames[:-1]):
            if frame.return_address == caller.address:
                return index + 1
    return None


def frame_symbol(frame: StackFrame) -> str:
    """``module!function+0xoffset`` as the stack printed it (or the bare address)."""
    if frame.module and frame.function:
        offset = f"+0x{frame.offset:x}" if frame.offset else ""
        return f"{frame.module}!{frame.function}{offset}"
    if frame.module:
        return f"{frame.module}+0x{frame.offset or 0:x}"
    if frame.address is not None:
        return f"0x{frame.address:x}"
    return frame.text.strip()


def render_stack(frames: Sequence[StackFrame], caller: Caller | None, driver: str | None) -> Text:
    blamed = blamed_frame(frames, caller, driver)
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    for index, frame in enumerate(frames):
        number = frame.index if frame.index is not None else index
        mark = MARK if index == blamed else " "
        style = (
            "bold red"
            if index == blamed
            else ("dim" if frame.module and frame.module.lower() == "nt" else "")
        )
        text.append(f"{mark} {number:02x} ", style)
        text.append(clean(frame_symbol(frame)), style)
        if frame.source_file:
            where = f"{frame.source_file} @ {frame.source_line}" if frame.source_line else frame.source_file
            text.append(f"  [{clean(where)}]", "dim")
        if frame.inline:
            text.append("  (inline)", "dim")
        text.append("\n")
        if index == blamed and caller is not None and caller.resolved_by not in ("none", "debugger"):
            text.append(
                f"      = {clean(where_label(caller))}  (resolved by {caller.resolved_by})\n", "green"
            )
    if not frames:
        text.append("(no stack in the input for this incident)", "dim")
    text.rstrip()
    return text


class StackView(Static):
    """Shows :func:`render_stack` for one incident."""

    DEFAULT_CSS = """
    StackView { height: auto; padding: 0 1; }
    """

    def show(self, frames: Sequence[StackFrame], caller: Caller | None, driver: str | None) -> None:
        self.update(render_stack(frames, caller, driver))
