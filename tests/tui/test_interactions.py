"""Pilot tests of the paste view, help, the command palette (exports, copy, filters), keymaps and safety."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import TextArea

from tests.tui.conftest import LOG_NAME, LOG_TEXT, FixtureFeed, fixture_app, quiet, sample_incidents, settle
from tui.app import CLIPBOARD_PREFIX, TriageApp
from tui.commands import palette_commands
from tui.loading import Source
from tui.screens.help import HelpScreen
from tui.screens.paste import PasteScreen
from tui.widgets.evidence_log import EvidenceLog
from tui.widgets.findings_table import FindingsTable


def _paste_app(tmp_path: Path, **kwargs: object) -> TriageApp:
    feed = FixtureFeed({"<paste>": LOG_TEXT}, {"<paste>": sample_incidents("<paste>")})
    return fixture_app(feed, tmp_path, [])


@pytest.mark.parametrize("key", ["f5", "ctrl+s"])
async def test_no_paths_opens_paste_view_and_analyses_on_key(tmp_path: Path, key: str) -> None:
    app = _paste_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, PasteScreen)
        area = app.screen.query_one(TextArea)
        area.insert(LOG_TEXT)
        await pilot.press("ctrl+j")  # what Windows Terminal sends for ctrl+enter: only a newline
        assert isinstance(app.screen, PasteScreen)
        await pilot.press(key)
        await settle(pilot)
        assert app.screen is app.triage
        assert [load.display_name for load in app.triage.loads] == ["<paste>"]
        assert (app.triage.loads[0].source.data or b"").startswith(LOG_TEXT.encode())
        assert len(app.triage.query_one(FindingsTable).listed) == 3


async def test_paste_button_analyses_and_empty_paste_is_refused(tmp_path: Path) -> None:
    app = _paste_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("f5")
        assert isinstance(app.screen, PasteScreen)  # nothing pasted yet
        assert any("Nothing pasted" in n.message for n in app._notifications)  # type: ignore[attr-defined]
        app.screen.query_one(TextArea).insert(LOG_TEXT)
        await pilot.click("#analyse")
        await settle(pilot)
        assert app.screen is app.triage
        assert app.triage.loads


async def test_paste_escape_returns_to_empty_main_screen_and_p_reopens(tmp_path: Path) -> None:
    app = _paste_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("escape")
        assert app.screen is app.triage
        assert "No input" in app.triage.status_text().plain
        await pilot.press("p")
        assert isinstance(app.screen, PasteScreen)


async def test_help_lists_bindings_with_ids_and_closes(app: TriageApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        rows = app.screen.rows
        ids = {row[1] for row in rows}
        assert ("? f1", "app.help", "Help", "app") in rows
        assert {"finding.next", "search.open", "app.quit", "paste.analyse", "evidence.bottom"} <= ids
        await pilot.press("j", "G", "g")  # scrolls, stays open
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("q")
        assert app.screen is app.triage
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert app.screen is app.triage


async def test_q_quits_from_main_screen(app: TriageApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert app._exit  # type: ignore[attr-defined]


async def test_keymap_file_remaps_by_binding_id(tmp_path: Path, feed: FixtureFeed) -> None:
    keymap = tmp_path / "keymap.toml"
    keymap.write_text('"finding.next" = "x"\n"app.help" = "f2"\n', encoding="utf-8")
    app = fixture_app(feed, tmp_path, [Source(LOG_NAME, data=b"x")], keymap)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("x")
        assert app.triage.current is not None and app.triage.current.id == f"{LOG_NAME}:16"
        await pilot.press("e")  # no longer bound
        assert app.triage.current.id == f"{LOG_NAME}:16"
        await pilot.press("f2")
        assert isinstance(app.screen, HelpScreen)
        assert (
            "x",
            "finding.next",
            "Next finding (moves the list and the evidence)",
            "main",
        ) in app.screen.rows


async def test_broken_keymap_is_reported_and_defaults_stay(tmp_path: Path, feed: FixtureFeed) -> None:
    keymap = tmp_path / "keymap.toml"
    keymap.write_text("this is = not toml [", encoding="utf-8")
    app = fixture_app(feed, tmp_path, [Source(LOG_NAME, data=b"x")], keymap)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert any("keymap" in n.message for n in app._notifications)  # type: ignore[attr-defined]
        await pilot.press("e")
        assert app.triage.current is not None and app.triage.current.id == f"{LOG_NAME}:16"


def _names(app: TriageApp) -> list[str]:
    return [name for name, _, _ in palette_commands(app)]


async def test_palette_offers_commands_that_fit(app: TriageApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        names = _names(app)
        for expected in (
            "export: JSON",
            "export: SARIF",
            "export: Markdown",
            "copy: finding as Markdown",
            "copy: WinDbg commands",
            "symbols: set path",
            "images: add driver folder",
            "filter: category Execute Pool Type",
            "filter: driver IntelHaxm.sys",
            "sort: by driver",
            "group: by category",
        ):
            assert expected in names
        assert "sort: by input" not in names  # the current order is not offered
        assert "filter: clear" not in names


async def test_palette_runs_a_command_by_typing(app: TriageApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"filter: category execute pool")
        await quiet(pilot)  # the palette has the text and started its search, in a worker
        await app.workers.wait_for_complete()
        await quiet(pilot)  # the hits are listed
        await pilot.press("enter")
        await pilot.pause()
        table = app.triage.query_one(FindingsTable)
        assert [i.category for i in table.listed] == ["execute-pool-type"]
        assert "filter: clear" in _names(app)


@pytest.mark.parametrize(("label", "suffix"), [("JSON", "json"), ("SARIF", "sarif"), ("Markdown", "md")])
async def test_palette_exports_write_files(app: TriageApp, tmp_path: Path, label: str, suffix: str) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        {n: c for n, c, _ in palette_commands(app)}[f"export: {label}"]()
        await pilot.pause()
        await pilot.press("enter")  # the proposed path
        await pilot.pause()
        written = tmp_path / f"hvci-triage-report.{suffix}"
        content = written.read_text(encoding="utf-8")
        if suffix == "json":
            data = json.loads(content)
            assert data["schema"] == "hvci-triage/1"
            assert [i["id"] for i in data["incidents"]] == [
                f"{LOG_NAME}:3",
                f"{LOG_NAME}:16",
                f"{LOG_NAME}:22",
            ]
        elif suffix == "sarif":
            assert json.loads(content)["version"] == "2.1.0"
        else:
            assert "Execute Pool Type" in content
        assert any(str(written) in n.message for n in app._notifications)  # type: ignore[attr-defined]


async def test_copy_finding_uses_osc52_and_saves_a_file(
    app: TriageApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        assert "IntelHaxm" in app.clipboard
        (saved,) = tmp_path.glob(f"{CLIPBOARD_PREFIX}*.txt")
        assert saved.read_text(encoding="utf-8") == app.clipboard
        await pilot.press("w")
        assert app.clipboard.splitlines()[0] == "ln 0xfffff8074b9852f0"
        assert "verifier /flags 0x02000000 /driver IntelHaxm.sys" in app.clipboard.splitlines()


async def test_symbols_and_images_prompts_reanalyse_with_new_options(
    app: TriageApp, feed: FixtureFeed, tmp_path: Path
) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.action_set_symbol_path()
        await pilot.pause()
        await pilot.press(*"C:\\pdbs", "enter")
        await settle(pilot)
        assert feed.options is not None and feed.options.symbol_path == "C:\\pdbs"
        assert len(app.triage.query_one(FindingsTable).listed) == 3
        app.action_add_image_folder()
        await pilot.pause()
        await pilot.press(*str(tmp_path), "enter")
        await settle(pilot)
        assert feed.options.image_dirs == (str(tmp_path),)


async def test_log_text_is_never_markup_or_escapes(app: TriageApp) -> None:
    """The sample log has ``[bold red]x[/]``, ``[@click=app.quit]`` and ESC sequences in a line, a title
    and a driver name: they must show literally and do nothing."""
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.triage.query_one(FindingsTable)
        cells = [table.get_row_at(r) for r in range(table.row_count)]
        assert all(isinstance(c, Text) for row in cells for c in row)
        assert "[bold]" in str(cells[1][1])
        await pilot.press("G")
        await pilot.press("v")
        log = app.triage.query_one(EvidenceLog)
        log.jump_to(21)
        await pilot.pause()
        rendered = "".join(seg.text for y in range(log.size.height) for seg in log.render_line(y))
        assert "[bold red]x[/] [@click=app.quit]click[/]" in rendered
        assert "\x1b" not in rendered and "\x07" not in rendered
        assert "␛[2J" in rendered
        # clicking where the fake [@click] link is shown must not quit
        await pilot.click(EvidenceLog, offset=(10, 3))
        await pilot.pause()
        assert app.is_running
        detail_title = app.triage.query_one("#verdict").render()
        assert "[bold red]IRQL_NOT_LESS_OR_EQUAL[/]" in str(detail_title)


async def test_clipboard_file_is_private_unpredictable_and_never_follows_a_planted_link(
    app: TriageApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10 item 12: a link planted at the old fixed name is never written through."""
    import os
    import stat

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me", encoding="utf-8")
    (tmp_path / "hvci-triage-clipboard.txt").symlink_to(victim)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        (first,) = tmp_path.glob(f"{CLIPBOARD_PREFIX}*.txt")
        await pilot.press("w")
        (second,) = tmp_path.glob(f"{CLIPBOARD_PREFIX}*.txt")  # the previous copy is removed
    assert victim.read_text(encoding="utf-8") == "keep me"
    assert first != second and not first.exists()
    assert stat.S_IMODE(os.stat(second).st_mode) == 0o600
    assert second.read_text(encoding="utf-8").startswith("ln 0xfffff8074b9852f0")
