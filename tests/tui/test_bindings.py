"""Every key binding, pressed in a running app, does what the help screen says it does.

One case per binding id; :func:`test_every_binding_has_a_case` fails when a binding is added without one.
Most cases run at 80x24, where the detail pane, the evidence view and the help screen all have more to show
than fits (so scrolling can be seen); the resizing cases run at 200x50, where list and detail sit side by
side.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.pilot import Pilot
from textual.widgets import Input, TabbedContent, TextArea

from tests.tui.conftest import (
    LOG_LINES,
    LOG_NAME,
    FixtureFeed,
    fixture_app,
    sample_incidents,
    settle,
    wait_for,
)
from tui.app import TriageApp
from tui.screens.help import HelpScreen
from tui.screens.paste import PasteScreen
from tui.screens.prompt import PromptScreen
from tui.screens.triage import TriageScreen
from tui.widgets.detail_pane import CodeBlock, DetailPane
from tui.widgets.evidence_log import EvidenceLog
from tui.widgets.findings_table import FindingsTable

Case = Callable[[TriageApp, Pilot[None]], Awaitable[None]]
CASES: dict[str, tuple[tuple[int, int], Case]] = {}
SMALL, LARGE = (80, 24), (200, 50)


def case(binding_id: str, size: tuple[int, int] = SMALL) -> Callable[[Case], Case]:
    def register(check: Case) -> Case:
        CASES[binding_id] = (size, check)
        return check

    return register


def _table(app: TriageApp) -> FindingsTable:
    return app.triage.query_one(FindingsTable)


def _detail(app: TriageApp) -> DetailPane:
    return app.triage.query_one(DetailPane)


def _evidence(app: TriageApp) -> EvidenceLog:
    return app.triage.query_one(EvidenceLog)


def _help_scroll(app: TriageApp) -> VerticalScroll:
    return app.screen.query_one(VerticalScroll)


# -- everywhere ---------------------------------------------------------------------------------------


@case("app.quit")
async def _quit(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("d", "q")  # from the detail pane: back to the list, not out
    assert not app._exit and app.triage.focused is _table(app)  # type: ignore[attr-defined]
    await pilot.press("q")
    assert app._exit  # type: ignore[attr-defined]


@case("app.quit_now")
async def _quit_now(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("d", "z", "Q")
    assert app._exit  # type: ignore[attr-defined]


@case("app.help")
async def _help(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("question_mark")
    assert isinstance(app.screen, HelpScreen)


@case("help.close")
async def _help_close(app: TriageApp, pilot: Pilot[None]) -> None:
    for key in ("q", "escape", "question_mark", "f1"):
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press(key)
        assert app.screen is app.triage


async def _in_help(app: TriageApp, pilot: Pilot[None], *keys: str) -> float:
    await pilot.press("question_mark", *keys)
    await pilot.pause()
    return _help_scroll(app).scroll_y


@case("help.down")
async def _help_down(app: TriageApp, pilot: Pilot[None]) -> None:
    assert await _in_help(app, pilot, "j", "j") == 2


@case("help.up")
async def _help_up(app: TriageApp, pilot: Pilot[None]) -> None:
    assert await _in_help(app, pilot, "j", "j", "j", "k") == 2


@case("help.page_down")
async def _help_page_down(app: TriageApp, pilot: Pilot[None]) -> None:
    assert await _in_help(app, pilot, "space") > 5


@case("help.page_up")
async def _help_page_up(app: TriageApp, pilot: Pilot[None]) -> None:
    assert await _in_help(app, pilot, "space", "b") == 0


@case("help.bottom")
async def _help_bottom(app: TriageApp, pilot: Pilot[None]) -> None:
    assert await _in_help(app, pilot, "G") == _help_scroll(app).max_scroll_y > 0


@case("help.top")
async def _help_top(app: TriageApp, pilot: Pilot[None]) -> None:
    assert await _in_help(app, pilot, "G", "g") == 0


# -- main screen --------------------------------------------------------------------------------------


@case("finding.next")
async def _next(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("e")
    assert app.triage.current is not None and app.triage.current.id == f"{LOG_NAME}:16"
    assert _evidence(app).highlighted[0] == (16, 20)


@case("finding.previous")
async def _previous(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("E")  # wraps to the last
    assert app.triage.current is not None and app.triage.current.id == f"{LOG_NAME}:22"


@case("search.open")
async def _search_open(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("slash")
    search = app.triage.query_one("#search", Input)
    assert search.has_class("-open") and app.focused is search
    await pilot.press(*"caller", "enter")
    assert _evidence(app).matches == (5, 18)


async def _searched(app: TriageApp, pilot: Pilot[None]) -> EvidenceLog:
    await pilot.press("slash", *"caller", "enter")
    await pilot.pause()
    return _evidence(app)


@case("search.next")
async def _search_next(app: TriageApp, pilot: Pilot[None]) -> None:
    log = await _searched(app, pilot)
    first = log._focus_line
    await pilot.press("n")
    assert {first, log._focus_line} == {5, 18}


@case("search.previous")
async def _search_previous(app: TriageApp, pilot: Pilot[None]) -> None:
    log = await _searched(app, pilot)
    first = log._focus_line
    await pilot.press("N")
    assert {first, log._focus_line} == {5, 18}


@case("findings.sort")
async def _sort(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("s")
    assert _table(app).order == "category"
    assert [i.category for i in _table(app).listed][:2] == ["execute-page-protection", "execute-pool-type"]


@case("findings.group")
async def _group(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("S")
    assert _table(app).grouping == "category"


@case("findings.other")
async def _other(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("o")
    assert len(_table(app).listed) == 2 and "hidden" in app.triage.status_text().plain


@case("view.detail")
async def _view_detail(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("v", "d")
    assert app.triage.query_one(TabbedContent).active == "detail-tab" and app.focused is _detail(app)


@case("view.evidence")
async def _view_evidence(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("v")
    assert app.triage.query_one(TabbedContent).active == "evidence-tab" and app.focused is _evidence(app)


@case("view.zoom")
async def _zoom(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("z")
    assert app.triage.maximized is _table(app)
    await pilot.press("z", "d", "z")
    assert app.triage.maximized is app.triage.query_one(TabbedContent)
    await pilot.press("z")
    assert app.triage.maximized is None


@case("view.list_larger", LARGE)
async def _larger(app: TriageApp, pilot: Pilot[None]) -> None:
    before = _table(app).outer_size.width
    await pilot.press("right_square_bracket")
    await pilot.pause()
    assert _table(app).outer_size.width > before
    assert app.triage.settings.list_share_wide is not None
    assert (Path(app.settings_file)).read_text(encoding="utf-8").count("list_share_wide") == 1


@case("view.list_smaller", LARGE)
async def _smaller(app: TriageApp, pilot: Pilot[None]) -> None:
    before = _table(app).outer_size.width
    await pilot.press("left_square_bracket")
    await pilot.pause()
    assert _table(app).outer_size.width < before


@case("view.list_auto", LARGE)
async def _auto(app: TriageApp, pilot: Pilot[None]) -> None:
    natural = _table(app).outer_size.width
    await pilot.press("left_square_bracket", "left_square_bracket", "equals_sign")
    await pilot.pause()
    assert app.triage.settings.list_share_wide is None and _table(app).outer_size.width == natural


@case("copy.finding")
async def _copy(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("c")
    assert app.clipboard.startswith("## ") and "IntelHaxm" in app.clipboard


@case("copy.windbg")
async def _copy_windbg(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("w")
    assert app.clipboard.splitlines()[0] == "ln 0xfffff8074b9852f0"


@case("view.paste")
async def _paste(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("p")
    assert isinstance(app.screen, PasteScreen)


@case("view.back")
async def _back(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("v", "z", "escape")
    assert app.triage.maximized is None and app.focused is _evidence(app)
    await pilot.press("escape")
    assert app.focused is _table(app)
    await pilot.press("slash", "escape")
    assert not app.triage.query_one("#search", Input).has_class("-open")
    await pilot.press("escape")  # at the top: stays
    assert not app._exit and app.screen is app.triage  # type: ignore[attr-defined]


# -- the list ------------------------------------------------------------------------------------------


@case("findings.down")
async def _down(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("j")
    assert _table(app).cursor_row == 1 and app.triage.current is _table(app).listed[1]


@case("findings.up")
async def _up(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("j", "j", "k")
    assert _table(app).cursor_row == 1


@case("findings.bottom")
async def _bottom(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("G")
    assert _table(app).cursor_row == 2


@case("findings.top")
async def _top(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("G", "g")
    assert _table(app).cursor_row == 0


# -- the detail pane -----------------------------------------------------------------------------------


async def _detail_after(app: TriageApp, pilot: Pilot[None], *keys: str) -> float:
    await pilot.press("d", *keys)
    await pilot.pause()
    return _detail(app).scroll_y


@case("detail.down")
async def _detail_down(app: TriageApp, pilot: Pilot[None]) -> None:
    assert await _detail_after(app, pilot, "j", "j") == 2


@case("detail.up")
async def _detail_up(app: TriageApp, pilot: Pilot[None]) -> None:
    assert await _detail_after(app, pilot, "j", "j", "j", "k") == 2


@case("detail.page_down")
async def _detail_page_down(app: TriageApp, pilot: Pilot[None]) -> None:
    assert await _detail_after(app, pilot, "space") > 3


@case("detail.page_up")
async def _detail_page_up(app: TriageApp, pilot: Pilot[None]) -> None:
    assert await _detail_after(app, pilot, "space", "b") == 0


@case("detail.bottom")
async def _detail_bottom(app: TriageApp, pilot: Pilot[None]) -> None:
    assert await _detail_after(app, pilot, "G") == _detail(app).max_scroll_y > 0


@case("detail.top")
async def _detail_top(app: TriageApp, pilot: Pilot[None]) -> None:
    assert await _detail_after(app, pilot, "G", "g") == 0


@case("detail.right")
async def _detail_right(app: TriageApp, pilot: Pilot[None]) -> None:
    await _detail_after(app, pilot, "l")
    assert app.triage.query_one("#links", CodeBlock).scroll_x > 0  # a URL wider than the pane


@case("detail.left")
async def _detail_left(app: TriageApp, pilot: Pilot[None]) -> None:
    await _detail_after(app, pilot, "l", "l", "h")
    assert 0 < app.triage.query_one("#links", CodeBlock).scroll_x < 16


# -- the evidence view ---------------------------------------------------------------------------------


async def _evidence_after(app: TriageApp, pilot: Pilot[None], *keys: str) -> float:
    await pilot.press("v", "g", *keys)
    await pilot.pause()
    return _evidence(app).scroll_y


@case("evidence.down")
async def _evidence_down(app: TriageApp, pilot: Pilot[None]) -> None:
    assert await _evidence_after(app, pilot, "j", "j") == 2


@case("evidence.up")
async def _evidence_up(app: TriageApp, pilot: Pilot[None]) -> None:
    assert await _evidence_after(app, pilot, "j", "j", "j", "k") == 2


@case("evidence.page_down")
async def _evidence_page_down(app: TriageApp, pilot: Pilot[None]) -> None:
    assert await _evidence_after(app, pilot, "space") > 2


@case("evidence.page_up")
async def _evidence_page_up(app: TriageApp, pilot: Pilot[None]) -> None:
    assert await _evidence_after(app, pilot, "space", "b") == 0


@case("evidence.bottom")
async def _evidence_bottom(app: TriageApp, pilot: Pilot[None]) -> None:
    assert await _evidence_after(app, pilot, "G") == _evidence(app).max_scroll_y > 0


@case("evidence.top")
async def _evidence_top(app: TriageApp, pilot: Pilot[None]) -> None:
    assert await _evidence_after(app, pilot, "G", "g") == 0


@case("evidence.follow")
async def _evidence_follow(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("v", "equals_sign")  # a file opened without --follow: says so, changes nothing
    assert not _evidence(app).following
    assert any("not being followed" in n.message for n in app._notifications)  # type: ignore[attr-defined]


# -- the paste view and prompts ------------------------------------------------------------------------


@case("paste.analyse")
async def _paste_analyse(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("p")
    app.screen.query_one(TextArea).insert(LOG_LINES[4] + "\n")
    await pilot.press("f5")
    assert app.screen is app.triage and app.triage.loads[-1].source.name.startswith("<paste")


@case("paste.cancel")
async def _paste_cancel(app: TriageApp, pilot: Pilot[None]) -> None:
    await pilot.press("p", "escape")
    assert app.screen is app.triage and len(app.triage.loads) == 1


@case("prompt.cancel")
async def _prompt_cancel(app: TriageApp, pilot: Pilot[None]) -> None:
    app.action_set_symbol_path()
    await pilot.pause()
    assert isinstance(app.screen, PromptScreen)
    await pilot.press("escape")
    assert app.screen is app.triage and app.options.symbol_path is None


def _binding_ids() -> set[str]:
    owners = [
        TriageApp,
        TriageScreen,
        FindingsTable,
        DetailPane,
        EvidenceLog,
        PasteScreen,
        HelpScreen,
        PromptScreen,
    ]
    return {b.id for owner in owners for b in owner.BINDINGS if isinstance(b, Binding) and b.id is not None}


def test_every_binding_has_a_case() -> None:
    assert _binding_ids() == set(CASES)


@pytest.mark.parametrize("binding_id", sorted(CASES))
async def test_binding(binding_id: str, tmp_path: Path) -> None:
    size, check = CASES[binding_id]
    feed = FixtureFeed({LOG_NAME: "\n".join(LOG_LINES) + "\n"}, {LOG_NAME: sample_incidents()})
    app = fixture_app(feed, tmp_path)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await wait_for(pilot, lambda: app.triage.current is not None, "the first finding selected")
        await check(app, pilot)
