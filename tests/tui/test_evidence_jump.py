"""A jump in the evidence view lands where it meant once the view has its size, whatever the event order.

A jump is clamped to the scroll range of the moment it is made; when the view then changes size (the tab
opens, the terminal is resized, a scrollbar appears) the jump is settled again, unless the user has scrolled
since. The snapshot of the Evidence tab at 80x24 landed a line short now and then without it.
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.pilot import Pilot

from tui.linestore import LineStore
from tui.widgets.evidence_log import EvidenceLog

LINES = 100


class _LogApp(App[None]):
    def compose(self) -> ComposeResult:
        yield EvidenceLog()


async def _jump_in_a_tall_view(pilot: Pilot[None]) -> EvidenceLog:
    """A log of :data:`LINES` lines in a 60-row view, jumped to line 80: it wants line 77 at the top, but
    60 rows show lines 41..100 at most."""
    store = LineStore()
    store.append_chunk("".join(f"line {n}\n" for n in range(1, LINES + 1)))
    log = pilot.app.query_one(EvidenceLog)
    log.show_lines(store, "log")
    await pilot.pause()
    log.jump_to(80)
    return log


async def test_a_jump_clamped_by_a_tall_view_lands_when_the_view_shrinks() -> None:
    app = _LogApp()
    async with app.run_test(size=(80, 60)) as pilot:
        log = await _jump_in_a_tall_view(pilot)
        assert log.scroll_offset.y == log.max_scroll_y < 76
        await pilot.resize_terminal(80, 20)
        await pilot.pause()
        assert log.scroll_offset.y == 76


async def test_a_view_scrolled_by_the_user_after_a_jump_stays_where_the_user_put_it() -> None:
    app = _LogApp()
    async with app.run_test(size=(80, 60)) as pilot:
        log = await _jump_in_a_tall_view(pilot)
        log.action_lines(-5)
        moved_to = log.scroll_offset.y
        await pilot.resize_terminal(80, 20)
        await pilot.pause()
        assert log.scroll_offset.y == moved_to
