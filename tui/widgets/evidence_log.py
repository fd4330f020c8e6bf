"""The raw input, line by line, with the lines behind the selected finding highlighted.

A ``ScrollView`` that renders only the visible lines (the Line API), so a 100 MB log scrolls as fast as a
small one. The line list is shared with the loader thread, which only ever appends to it; the screen
calls :meth:`EvidenceLog.lines_added` from a timer to grow the scrollable area.

Follow semantics are toolong's: while following, new lines scroll into view; any scroll away from the end
pauses following and the count of lines that arrived meanwhile is kept in :attr:`pending`; ``End``
resumes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.linestore import LineStore
from tui.safe_text import clean

#: Characters shown of one line; the rest of a multi-megabyte line is cut (with a marker), never wrapped.
MAX_COLUMNS = 2000

_HIGHLIGHT = Style(bgcolor="grey23")
_FOCUS_LINE = Style(bgcolor="dark_blue", bold=True)
_MATCH = Style(bgcolor="yellow", color="black")
_GUTTER = Style(dim=True)


class EvidenceLog(ScrollView, can_focus=True):
    """Line-numbered view of one input with highlighted spans, search matches and follow mode."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "lines(1)", "Down", show=False, id="evidence.down"),
        Binding("k,up", "lines(-1)", "Up", show=False, id="evidence.up"),
        Binding("space,pagedown,ctrl+d", "pages(1)", "Page down", show=False, id="evidence.page_down"),
        Binding("b,pageup,ctrl+u", "pages(-1)", "Page up", show=False, id="evidence.page_up"),
        Binding("g,home", "top", "Top", show=False, id="evidence.top"),
        Binding("G,end", "scroll_end", "Bottom / resume follow", show=False, id="evidence.bottom"),
        Binding("equals_sign", "toggle_follow", "Pause/resume follow", show=False, id="evidence.follow"),
    ]

    DEFAULT_CSS = """
    EvidenceLog { background: $surface; }
    """

    following: reactive[bool] = reactive(False)
    """True while new lines scroll into view (only meaningful for a followed input)."""
    pending: reactive[int] = reactive(0)
    """Lines that arrived while following was paused."""

    class FollowChanged(Message):
        """Following was paused or resumed, or the pending count changed."""

        def __init__(self, following: bool, pending: int) -> None:
            super().__init__()
            self.following = following
            self.pending = pending

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002 (Textual names it id)
        super().__init__(name=name, id=id, classes=classes)
        self._lines: Sequence[str] = ()
        self._known = 0
        self._generation = 0
        self._width = 0
        self._spans: tuple[tuple[int, int], ...] = ()
        self._focus_line: int | None = None
        self._pattern: re.Pattern[str] | None = None
        self._matches: list[int] = []
        self._scanned = 0
        self.source_name = ""
        self.followable = False
        self._pending_jump: int | None = None
        self._jump: tuple[int, int] | None = None  # (the top a jump wanted, the top it got): see _settle_jump
        self._widening = False

    # -- content -----------------------------------------------------------------------------------

    def show_lines(self, lines: Sequence[str], source_name: str, *, followable: bool = False) -> None:
        """Display ``lines`` (a list the loader may still be appending to)."""
        if lines is self._lines:
            return
        self._lines = lines
        self._pending_jump = None
        self.source_name = source_name
        self.followable = followable
        self._known = 0
        self._generation = getattr(lines, "generation", 0)
        self._width = 0
        self._matches = []
        self._scanned = 0
        self.pending = 0
        self.following = followable
        self.scroll_to(0, 0, animate=False)
        self.lines_added()

    def lines_added(self) -> None:
        """Take in lines the loader appended since the last call (called from a UI timer)."""
        count = len(self._lines)
        generation = getattr(self._lines, "generation", 0)
        widest = min(self._widest(self._known, count), MAX_COLUMNS)
        if count == self._known and generation == self._generation:
            if widest > self._width:  # lines decoded for drawing turned out wider
                self._width = widest
                self._set_virtual_size(Size(self._gutter_width() + self._width + 1, count))
            return
        if count < self._known or generation != self._generation:  # the followed file was truncated
            self._known = self._width = self._scanned = 0
            self._generation = generation
            self._matches = []
            self.scroll_to(0, 0, animate=False, immediate=True)
        self._width = max(self._width, widest)
        added = count - self._known
        gutter, first_new = self._gutter_width(), self._known
        self._known = count
        self._scan_matches()
        self._set_virtual_size(Size(self._gutter_width() + self._width + 1, count))
        if self.following:
            self.scroll_end(animate=False, immediate=True)
        elif self.followable:
            self.pending += added
        if self._pending_jump is not None and self._pending_jump <= count:
            self.jump_to(self._pending_jump)
        if first_new < self.scroll_offset.y + self.size.height or self._gutter_width() != gutter:
            self.refresh()  # new lines in view, or wider line numbers; else only the scrollbar changed

    def _set_virtual_size(self, size: Size) -> None:
        """Grow the scrollable area without a layout of the whole screen. Textual's ``virtual_size`` is a
        layout reactive: set ten times a second while a large file loads, each layout of every pane stalled
        the keyboard for tens of milliseconds. This view's own size does not depend on its content, so only
        its scrollbars need updating (showing or hiding one still lays out, through its own reactive).
        ``_scroll_update`` is Textual's own step for this (``Widget._size_updated``; textual is pinned)."""
        if size == self.virtual_size:
            return
        self.set_reactive(ScrollView.virtual_size, size)
        self._scroll_update(size)  # the lines shown do not change: the caller repaints when they do

    @property
    def line_count(self) -> int:
        return self._known

    def line_text(self, number: int) -> str | None:
        """The text of 1-based line ``number``, if it has been read."""
        return self._lines[number - 1] if 0 < number <= self._known else None

    # -- highlighting and jumping ------------------------------------------------------------------

    def highlight(self, spans: Sequence[tuple[int, int]], focus_line: int | None = None) -> None:
        """Mark the 1-based inclusive line ranges ``spans`` and scroll ``focus_line`` into view."""
        self._spans = tuple(spans)
        self.refresh()
        if focus_line is not None:
            self.jump_to(focus_line)

    @property
    def highlighted(self) -> tuple[tuple[int, int], ...]:
        return self._spans

    def jump_to(self, line: int) -> None:
        """Scroll so that 1-based ``line`` sits a few lines below the top (pauses following). A line not
        read yet is jumped to as soon as it arrives."""
        if self.following:
            self.following = False
        self._focus_line = line
        self._pending_jump = line if line > self._known else None
        top = max(0, line - 1 - 3)
        self.scroll_to(y=top, animate=False, immediate=True)
        self._jump = (top, self.scroll_offset.y)
        self.refresh()

    def _settle_jump(self) -> None:
        """Scroll to where the last jump wanted once the view has changed size. A jump made while the view
        was hidden or smaller, or before its horizontal scrollbar appeared, was clamped to the scroll range of
        that moment; which of those happens first is up to the event order, so without this the same jump
        could land a line short. A view the user has scrolled since (its top is not where the jump landed)
        is left where it is."""
        if self._jump is None or self.following:
            return
        wanted, landed = self._jump
        if self.scroll_offset.y != landed:
            self._jump = None
            return
        if landed != wanted:
            self.scroll_to(y=wanted, animate=False, immediate=True)
            self._jump = (wanted, self.scroll_offset.y)

    def reveal_focus(self) -> None:
        """Scroll the focus line into view if it is not (the end while following). Scrolling a hidden view
        (the Evidence tab before it is opened) does not stick, so the screen calls this when the tab opens."""
        if self.following:
            self.scroll_end(animate=False, immediate=True)
            return
        line = self._focus_line
        if line is None:
            return
        top = self.scroll_offset.y
        if not top < line <= top + self.size.height:
            self.scroll_to(y=max(0, line - 1 - 3), animate=False, immediate=True)

    # -- search --------------------------------------------------------------------------------------

    def search(self, pattern: str) -> int:
        """Highlight ``pattern`` (case-insensitive plain text); returns the number of matching lines."""
        self._pattern = re.compile(re.escape(pattern), re.IGNORECASE) if pattern else None
        self._matches = []
        self._scanned = 0
        self._scan_matches()
        self.refresh()
        return len(self._matches)

    @property
    def matches(self) -> tuple[int, ...]:
        """1-based numbers of the lines that match the current search."""
        return tuple(self._matches)

    def _scan_matches(self) -> None:
        if self._pattern is None:
            return
        lines = self._lines
        if isinstance(lines, LineStore):
            self._matches.extend(i + 1 for i in lines.matching(self._pattern, self._scanned, self._known))
        else:
            search = self._pattern.search
            self._matches.extend(i + 1 for i in range(self._scanned, self._known) if search(lines[i]))
        self._scanned = self._known

    def next_match(self, backwards: bool = False) -> int | None:
        """Jump to the next (or previous) matching line after the current focus line, wrapping around."""
        if not self._matches:
            return None
        current = self._focus_line if self._focus_line is not None else self.scroll_offset.y + 1
        if backwards:
            earlier = [m for m in self._matches if m < current]
            target = earlier[-1] if earlier else self._matches[-1]
        else:
            later = [m for m in self._matches if m > current]
            target = later[0] if later else self._matches[0]
        self.jump_to(target)
        return target

    # -- follow --------------------------------------------------------------------------------------

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self.following and new_value < old_value:
            self.following = False

    def watch_following(self, following: bool) -> None:
        if following:
            self.pending = 0
        self.post_message(self.FollowChanged(following, self.pending))

    def watch_pending(self, pending: int) -> None:
        self.post_message(self.FollowChanged(self.following, pending))

    def on_resize(self) -> None:
        """The panes are re-laid out as findings arrive: a followed log stays at its end, a jump lands."""
        self._stay_at_end()
        self._settle_jump()

    def watch_show_horizontal_scrollbar(self) -> None:
        self._stay_at_end()
        self._settle_jump()

    def _stay_at_end(self) -> None:
        if self.following:
            self.call_after_refresh(self.scroll_end, animate=False, immediate=True)

    def action_lines(self, count: int) -> None:
        """Scroll by lines, without animation (a log viewer should move exactly when the key is hit)."""
        self.scroll_to(y=self.scroll_offset.y + count, animate=False, immediate=True)

    def action_pages(self, count: int) -> None:
        self.action_lines(count * max(1, self.size.height - 1))

    def action_top(self) -> None:
        self.scroll_to(y=0, animate=False, immediate=True)

    def action_scroll_end(self) -> None:
        """Go to the last line; on a followed input this resumes following."""
        if self.followable:
            self.following = True
        self.scroll_end(animate=False, immediate=True)

    def action_toggle_follow(self) -> None:
        if not self.followable:
            self.notify("This input is not being followed (start with --follow).", markup=False)
            return
        self.following = not self.following
        if self.following:
            self.scroll_end(animate=False, immediate=True)

    # -- rendering -----------------------------------------------------------------------------------

    def _widest(self, start: int, end: int) -> int:
        """The longest line known: a :class:`~tui.linestore.LineStore` knows those it decoded (it grows as
        the view is scrolled); in any other sequence the new lines ``[start, end)`` are measured."""
        if isinstance(self._lines, LineStore):
            return self._lines.widest
        return max(map(len, self._lines[start:end]), default=0)

    def _widen(self) -> None:
        """Lines decoded to be drawn are wider than any before: the scroll area widens after this frame.
        (While an input loads, the screen's timer calls :meth:`lines_added`, which does it too; the timer
        stops once everything is read, and the text is decoded as it is scrolled through.)"""
        if not self._widening:
            self._widening = True
            self.call_after_refresh(self._widened)

    def _widened(self) -> None:
        self._widening = False
        self.lines_added()

    def _gutter_width(self) -> int:
        return len(str(max(self._known, 1))) + 1

    def _in_span(self, number: int) -> bool:
        return any(first <= number <= last for first, last in self._spans)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        base = self.rich_style
        if index >= self._known:
            return Strip.blank(width, base)
        number = index + 1
        raw = self._lines[index]
        if isinstance(self._lines, LineStore) and min(self._lines.widest, MAX_COLUMNS) > self._width:
            self._widen()
        shown = clean(raw[:MAX_COLUMNS]) + ("…" if len(raw) > MAX_COLUMNS else "")
        gutter = self._gutter_width()
        text = Text(no_wrap=True, end="")
        text.append(f"{number:>{gutter - 1}} ", _GUTTER)
        text.append(shown)
        fill = base
        if number == self._focus_line:
            text.stylize(_FOCUS_LINE)
            fill = base + _FOCUS_LINE
        elif self._in_span(number):
            text.stylize(_HIGHLIGHT)
            fill = base + _HIGHLIGHT
        if self._pattern is not None:
            for match in self._pattern.finditer(shown):
                text.stylize(_MATCH, gutter + match.start(), gutter + match.end())
        segments = [
            Segment(s.text, base + s.style if s.style else base) for s in text.render(self.app.console)
        ]
        strip = Strip(segments, cell_len(text.plain))
        if not scroll_x:
            return strip.crop_extend(0, width, fill)  # highlight the full width
        # scrolled sideways: the line numbers stay, the text after them moves
        numbers = strip.crop(0, gutter)
        rest = strip.crop_extend(gutter + scroll_x, gutter + scroll_x + max(0, width - gutter), fill)
        return Strip.join([numbers, rest])
