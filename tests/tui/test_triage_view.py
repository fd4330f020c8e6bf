"""Pilot tests of the main triage screen: listing, navigation, order, detail and evidence."""

from __future__ import annotations

import io
from pathlib import Path

import msgspec
from rich.console import Console
from rich.syntax import Syntax
from textual.strip import Strip
from textual.widgets import Static, TabbedContent

from hvci.knowledge import kb
from hvci.model import Incident
from tests.tui.conftest import (
    LOG_LINES,
    LOG_NAME,
    LOG_TEXT,
    FixtureFeed,
    fixture_app,
    quiet,
    sample_incidents,
    settle,
    wait_for,
)
from tui.app import TriageApp
from tui.loading import Source
from tui.widgets.detail_pane import DetailPane
from tui.widgets.evidence_log import EvidenceLog
from tui.widgets.findings_table import FindingsTable


def _table(app: TriageApp) -> FindingsTable:
    return app.triage.query_one(FindingsTable)


def _detail_text(app: TriageApp) -> str:
    """Everything the detail pane's text sections show, as plain text."""
    console = Console(width=300, record=True, file=io.StringIO())
    for widget in app.triage.query_one(DetailPane).query(Static):
        console.print(widget.content)
    return console.export_text()


async def test_findings_listed_hvci_first_with_columns(app: TriageApp) -> None:
    async with app.run_test(size=(200, 40)) as pilot:
        await settle(pilot)
        table = _table(app)
        assert [c.label.plain for c in table.columns.values()] == [
            "Category",
            "Driver",
            "Caller",
            "Conf.",
            "Count",
            "Line",
        ]
        assert [i.id for i in table.listed] == [f"{LOG_NAME}:3", f"{LOG_NAME}:16", f"{LOG_NAME}:22"]
        first = [str(c) for c in table.get_row_at(0)]
        assert first == ["Execute Pool Type", "IntelHaxm.sys", "AllocateBuffer+0x12", "certain", "1", "3"]
        assert str(table.get_row_at(1)[4]) == "3"
        assert str(table.get_row_at(2)[0]).startswith("other: 0xA IRQL_NOT_LESS_OR_EQUAL")
        assert app.triage.status_text().plain.startswith("2 HVCI · 1 other  crash.log")


async def test_other_incidents_toggle(app: TriageApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("o")
        assert [i.hvci_related for i in _table(app).listed] == [True, True]
        assert "1 other (hidden: o)" in app.triage.status_text().plain
        await pilot.press("o")
        assert len(_table(app).listed) == 3


async def test_non_hvci_first_in_input_still_listed_after_hvci(tmp_path: Path) -> None:
    pool, protection, other = sample_incidents()
    feed = FixtureFeed({LOG_NAME: LOG_TEXT}, {LOG_NAME: [other, protection, pool]})
    app = fixture_app(feed, tmp_path, [Source(LOG_NAME, data=b"x")])
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("s")  # any sort keeps HVCI first
        assert [i.hvci_related for i in _table(app).listed] == [True, True, False]


async def test_navigation_keys_move_the_cursor(app: TriageApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = _table(app)
        await pilot.press("j")
        assert table.cursor_row == 1
        await pilot.press("k")
        assert table.cursor_row == 0
        await pilot.press("G")
        assert table.cursor_row == 2
        await pilot.press("g")
        assert table.cursor_row == 0
        await pilot.press("e", "e")
        assert app.triage.current is not None and app.triage.current.id == f"{LOG_NAME}:22"
        await pilot.press("e")  # wraps around
        assert app.triage.current.id == f"{LOG_NAME}:3"
        await pilot.press("E")
        assert app.triage.current.id == f"{LOG_NAME}:22"


async def test_sort_and_group(app: TriageApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = _table(app)
        await pilot.press("s")
        assert table.order == "category"
        assert [i.category for i in table.listed] == ["execute-page-protection", "execute-pool-type", None]
        await pilot.press("s")
        assert table.order == "driver"
        assert [i.driver for i in table.listed][:2] == ["evil[bold]drv.sys; .shell calc", "IntelHaxm.sys"]
        await pilot.press("s", "s")
        assert table.order == "count"
        assert table.listed[0].count == 3
        await pilot.press("S")
        assert table.grouping == "category"
        await pilot.press("S")
        assert table.grouping == "driver"
        assert [c.label.plain for c in table.columns.values()][0] == "Driver"
        assert "group driver" in app.triage.status_text().plain


async def test_grouping_blanks_repeated_group_labels(tmp_path: Path) -> None:
    pool, protection, other = sample_incidents()
    from msgspec.structs import replace

    second = replace(pool, id=f"{LOG_NAME}:99", bucket="execute-pool-type:otherdrv!Allocate")  # not a repeat
    feed = FixtureFeed({LOG_NAME: LOG_TEXT}, {LOG_NAME: [pool, protection, second]})
    app = fixture_app(feed, tmp_path, [Source(LOG_NAME, data=b"x")])
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("S")
        table = _table(app)
        labels = [str(table.get_row_at(r)[0]) for r in range(table.row_count)]
        assert labels == ["Execute Page Protection", "Execute Pool Type", "  ·"]


async def test_repeats_of_one_bucket_are_one_row_with_count_and_occurrences(tmp_path: Path) -> None:
    pool, protection, _ = sample_incidents()
    from msgspec.structs import replace

    source = msgspec.structs.replace(pool.source, first_line=22, last_line=23)
    again = replace(pool, id=f"{LOG_NAME}:99", source=source)
    feed = FixtureFeed({LOG_NAME: LOG_TEXT}, {LOG_NAME: [pool, protection, again]})
    app = fixture_app(feed, tmp_path, [Source(LOG_NAME, data=b"x")])
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = _table(app)
        assert [i.id for i in table.listed] == [pool.id, protection.id]
        assert str(table.get_row_at(0)[4]) == "2"
        occurrences = str(app.triage.query_one("#occurrences", Static).render())
        assert f"{LOG_NAME}:3-14" in occurrences and f"{LOG_NAME}:22-23" in occurrences


async def test_detail_pane_shows_verdict_parameters_stack_fix_and_commands(app: TriageApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        text = _detail_text(app)
        assert "Execute Pool Type" in text
        assert "IntelHaxm.sys allocated executable pool" in text
        assert "pool type: 0 = NonPagedPool (executable)" in text
        assert "pool tag: MEMH" in text
        assert "▶ 02 IntelHaxm!AllocateBuffer+0x12" in text
        assert "= AllocateBuffer+0x12  (src/alloc.c:42)  (resolved by pdb)" in text
        assert f"{LOG_NAME}:3-7" in text and LOG_LINES[4] in text
        assert "ln 0xfffff8074b9852f0" in text
        assert "!verifier 3 IntelHaxm.sys" in text
        assert "verifier /flags 0x02000000 /driver IntelHaxm.sys" in text
        fix = kb.load().categories["execute-pool-type"].remediation
        before = app.triage.query_one("#before-text", Static)
        after = app.triage.query_one("#after-text", Static)
        assert app.triage.query_one("#before").display and app.triage.query_one("#after").display
        assert isinstance(before.content, Syntax) and before.content.code == fix.before  # verbatim
        assert isinstance(after.content, Syntax) and after.content.code == fix.after


async def test_unsafe_driver_name_gets_no_commands(app: TriageApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("j")
        await pilot.pause()
        text = _detail_text(app)
        windbg = str(app.triage.query_one("#windbg", Static).render())
        assert "ln 0xfffff8074c001234" in text
        assert "ln 0xfffff8074c001234" in windbg
        assert "!verifier" not in windbg and ".shell" not in windbg and "lmvm" not in windbg
        assert "left out" in windbg
        assert "protection: 0x40 = PAGE_EXECUTE_READWRITE (executable)" in text


async def test_evidence_highlight_and_jump(app: TriageApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        log = app.triage.query_one(EvidenceLog)
        assert log.line_count == len(LOG_LINES)
        assert (3, 14) in log.highlighted and (8, 9) in log.highlighted
        await pilot.press("v")
        assert app.triage.query_one(TabbedContent).active == "evidence-tab"
        assert app.focused is log
        await pilot.press("e")
        assert log.highlighted[0] == (16, 20)
        top = log.scroll_offset.y
        assert top <= 16 - 1 < top + log.size.height
        await pilot.press("E")
        assert log.highlighted[0] == (3, 14)
        await pilot.press("d")
        assert app.triage.query_one(TabbedContent).active == "detail-tab"


async def test_evidence_lines_render_with_numbers_and_highlight(app: TriageApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("v")
        await pilot.pause()
        log = app.triage.query_one(EvidenceLog)
        log.scroll_to(y=0, animate=False, immediate=True)
        await pilot.pause()
        strip = log.render_line(2)  # line 3: start of the highlighted span
        assert strip.text.startswith(" 3 *********** Verifier")
        assert any(seg.style and seg.style.bgcolor is not None for seg in strip)
        plain_line = log.render_line(0)
        assert not any(
            seg.style and seg.style.bgcolor and seg.style.bgcolor.name == "grey23" for seg in plain_line
        )


async def test_search_next_and_previous(app: TriageApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        assert app.focused is not None and app.focused.id == "search"
        await pilot.press(*"verifier", "enter")
        log = app.triage.query_one(EvidenceLog)
        assert log.matches == (3, 13, 16)
        assert app.triage.query_one(TabbedContent).active == "evidence-tab"
        first = log._focus_line
        await pilot.press("n")
        second = log._focus_line
        await pilot.press("n")
        third = log._focus_line
        assert sorted({first, second, third}) == [3, 13, 16]
        await pilot.press("N")
        assert log._focus_line == second
        await pilot.press("slash", *"no such text", "enter")
        assert log.matches == ()


async def test_search_escape_closes(app: TriageApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        search = app.triage.query_one("#search")
        assert search.has_class("-open")
        await pilot.press("escape")
        assert not search.has_class("-open")


async def test_first_findings_appear_while_loading(tmp_path: Path) -> None:
    feed = FixtureFeed({LOG_NAME: LOG_TEXT}, {LOG_NAME: sample_incidents()}, hold_after=1)
    app = fixture_app(feed, tmp_path, [Source(LOG_NAME, data=b"x")])
    async with app.run_test(size=(120, 40)) as pilot:
        try:
            await wait_for(pilot, lambda: len(_table(app).listed) == 1, "the first finding")
            assert not app.triage.all_loaded
            await pilot.press("j")  # keys answer while loading
        finally:
            feed.release.set()
        await settle(pilot)
        assert len(_table(app).listed) == 3


async def test_enriched_incident_replaces_the_earlier_version(tmp_path: Path) -> None:
    from msgspec.structs import replace

    pool, protection, other = sample_incidents()
    early = replace(
        pool, caller=replace(pool.caller, function=None, file=None, line=None, resolved_by="module")
    )
    feed = FixtureFeed({LOG_NAME: LOG_TEXT}, {LOG_NAME: [early, protection, pool]})
    app = fixture_app(feed, tmp_path, [Source(LOG_NAME, data=b"x")])
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = _table(app)
        assert len(table.listed) == 2
        assert str(table.get_row_at(0)[2]) == "AllocateBuffer+0x12"
        assert app.triage.current is pool
        assert "src/alloc.c:42" in _detail_text(app)


async def test_two_inputs_and_evidence_switches_input(tmp_path: Path) -> None:
    other_name = "second.log"
    incidents = {LOG_NAME: sample_incidents()[:1], other_name: sample_incidents(other_name)[1:2]}
    texts = {LOG_NAME: LOG_TEXT, other_name: "\n".join(f"second {n}" for n in range(1, 30))}
    feed = FixtureFeed(texts, incidents)
    sources = [Source(LOG_NAME, data=b"x"), Source(other_name, data=b"y")]
    app = fixture_app(feed, tmp_path, sources)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        log = app.triage.query_one(EvidenceLog)
        assert log.source_name == LOG_NAME
        await pilot.press("e")
        assert log.source_name == other_name
        assert log.line_text(16) == "second 16"


async def test_line_numbers_stay_when_the_evidence_is_scrolled_sideways(tmp_path: Path) -> None:
    long_line = "x" * 300
    feed = FixtureFeed({LOG_NAME: f"first\n{long_line}\n"}, {LOG_NAME: []})
    app = fixture_app(feed, tmp_path, [Source(LOG_NAME, data=b"x")])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("v")
        log = app.triage.query_one(EvidenceLog)
        log.scroll_to(x=40, animate=False, immediate=True)
        await pilot.pause()
        second = log.render_line(1).text
        assert second.startswith("2 x") and len(second) == log.size.width


def _repeat_held_back(tmp_path: Path) -> tuple[FixtureFeed, TriageApp, Incident]:
    """The app on two findings, with a repeat of the first (the pool-type crash, returned) held back until
    the feed's ``release``."""
    pool, protection, _ = sample_incidents()
    source = msgspec.structs.replace(pool.source, first_line=22, last_line=23)
    again = msgspec.structs.replace(pool, id=f"{LOG_NAME}:99", source=source)
    feed = FixtureFeed({LOG_NAME: LOG_TEXT}, {LOG_NAME: [pool, protection, again]}, hold_after=2)
    return feed, fixture_app(feed, tmp_path, [Source(LOG_NAME, data=b"x")]), pool


async def test_a_repeat_arriving_later_raises_the_count_of_the_listed_finding(tmp_path: Path) -> None:
    feed, app, pool = _repeat_held_back(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        table = _table(app)
        await wait_for(pilot, lambda: len(table.listed) == 2 and table.row_count == 2)
        assert str(table.get_row_at(0)[4]) == "1"
        columns = list(table.columns.values())
        await quiet(pilot)  # the first frames are drawn
        drawn: list[int] = []
        draw = table.render_line

        def spy(y: int) -> Strip:
            drawn.append(y)
            return draw(y)

        table.render_line = spy  # type: ignore[method-assign]
        feed.release.set()
        await settle(pilot)
        assert str(table.get_row_at(0)[4]) == "2"
        # the cell changed in place: rebuilding the table (new columns) lays out the whole screen
        assert list(table.columns.values()) == columns
        assert all(a is b for a, b in zip(table.columns.values(), columns, strict=True))
        # and only its row is drawn again, not every line of the pane (a repeat of a crash in a large log)
        assert set(drawn) == {1}  # line 0 is the header
        assert "2" in table.render_line(1).text.split()


async def test_the_detail_of_a_shown_finding_lists_a_repeat_arriving_later(tmp_path: Path) -> None:
    """The occurrences of the finding on show follow the count in the list as repeats arrive."""
    feed, app, pool = _repeat_held_back(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        table = _table(app)
        await wait_for(pilot, lambda: app.triage.current is not None and app.triage.current.id == pool.id)
        occurrences = app.triage.query_one("#occurrences", Static)
        assert not occurrences.display
        feed.release.set()
        await wait_for(pilot, lambda: str(table.get_row_at(0)[4]) == "2")
        await settle(pilot)
        assert occurrences.display
        shown = str(occurrences.render())
        assert "2 reports in 2 places" in shown and f"{LOG_NAME}:22-23" in shown


async def test_an_equal_incident_from_the_full_analysis_keeps_the_row(tmp_path: Path) -> None:
    """The quick look at a large input's head and the full analysis report the same incident twice: the
    second, equal copy changes nothing on screen (no rebuild, no detail pane redrawn)."""
    pool, protection, _ = sample_incidents()
    from msgspec.structs import replace

    feed = FixtureFeed({LOG_NAME: LOG_TEXT}, {LOG_NAME: [pool, protection, replace(pool)]}, hold_after=2)
    app = fixture_app(feed, tmp_path, [Source(LOG_NAME, data=b"x")])
    async with app.run_test(size=(120, 40)) as pilot:
        table = _table(app)
        await wait_for(pilot, lambda: len(table.listed) == 2 and app.triage.current is not None)
        columns = list(table.columns.values())
        shown = app.triage.current
        feed.release.set()
        await settle(pilot)
        assert app.triage.loads[0].incidents[0] is not pool  # the copy replaced it in the load
        assert table.listed[0] is app.triage.loads[0].incidents[0]
        assert all(a is b for a, b in zip(table.columns.values(), columns, strict=True))
        assert app.triage.current is shown
