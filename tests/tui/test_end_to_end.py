"""The view on the real engine: sample logs, pasted text, a followed log being written, stdin."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from textual.pilot import Pilot

from cli.commands import open as open_command
from hvci.findings import group_findings
from hvci.logs.pipeline import AnalyzeOptions
from hvci.model import Incident
from tests.conftest import HANG_SECONDS, realworld
from tests.tui.conftest import settle, wait_for
from tui.app import TriageApp, make_app
from tui.engine_feed import PipelineFeed
from tui.labels import category_label
from tui.linestore import Stored
from tui.loading import Source
from tui.screens.paste import PasteScreen
from tui.widgets.evidence_log import EvidenceLog
from tui.widgets.findings_table import FindingsTable
from tui.widgets.follow_badge import FollowBadge

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "logs"
HAXM = SAMPLES / "session-pool-type-haxm.log"

BANNER = (
    "*********** Verifier Detected a Code Integrity Issue ************\n"
    "**\n"
    "** The caller 0xFFFFF8074C001234 specified an executable page protection 0x40.\n"
    "**\n"
    "*****************************************************************\n"
)


async def _until(pilot: Pilot[None] | None, condition: Callable[[], bool]) -> None:
    """Let the view run until ``condition`` holds (what the follower's next polls bring in); with no
    ``pilot`` (the app has closed), look at ``condition`` until it holds: the loaders' threads post no
    event once the app is gone, so this polls, and the deadline only turns a hang into a failure (how
    often it looks cannot change the outcome)."""
    if pilot is not None:
        await wait_for(pilot, condition)
        return
    deadline = time.monotonic() + HANG_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"not there in {HANG_SECONDS:.0f} s: stuck"
        await asyncio.sleep(0.05)


def _app(sources: list[Source], tmp_path: Path, **kwargs: object) -> TriageApp:
    return make_app(sources, export_dir=tmp_path, keymap_file=tmp_path / "none.toml", **kwargs)  # type: ignore[arg-type]


async def test_sample_log_opens_with_real_pipeline(tmp_path: Path) -> None:
    app = _app([Source.file(HAXM)], tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        table = app.triage.query_one(FindingsTable)
        assert [str(c) for c in table.get_row_at(0)][:4] == [
            "Execute Pool Type",
            "IntelHaxm.sys",
            "hax_alloc_buffer+0x12",
            "certain",
        ]
        log = app.triage.query_one(EvidenceLog)
        assert log.line_count == len(HAXM.read_text(encoding="utf-8").splitlines())
        first = table.listed[0].source.first_line
        assert log.highlighted[0][0] == first
        load = app.triage.loads[0]
        assert load.done and load.info is not None and load.bytes_read == HAXM.stat().st_size


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("session-*.log")))
async def test_every_session_sample_opens_and_lists_its_incidents(tmp_path: Path, name: str) -> None:
    from hvci.logs.pipeline import analyze_inputs
    from parsers.stream import open_input

    expected = group_findings(analyze_inputs([open_input(SAMPLES / name)]).incidents)
    app = _app([Source.file(SAMPLES / name)], tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        listed = app.triage.query_one(FindingsTable).listed
        assert {i.id for i in listed} == {f.incident.id for f in expected}
        assert [i.hvci_related for i in listed] == sorted((i.hvci_related for i in listed), reverse=True)


def _verdict(incident: Incident) -> tuple[object, ...]:
    caller = incident.caller.address if incident.caller is not None else None
    return (incident.category, incident.hvci_related, incident.confidence, caller, incident.driver)


def _inputs(folder: str) -> list[Path]:
    root = SAMPLES if folder == "samples" else realworld("logs")
    return sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith("."))


@pytest.mark.parametrize("folder", ["samples", "realworld"])
async def test_tui_and_analyze_agree_on_every_sample(tmp_path: Path, folder: str) -> None:
    """Same engine, same verdicts: every sample log (and every real-world log, when ../shared is there)
    opened at once in the view gives the incidents ``analyze`` reports (category, HVCI or not, confidence,
    caller address, driver), the list shows one row per de-duplicated finding, and no HVCI-related row is
    labelled as anything else."""
    from hvci.logs.pipeline import analyze_inputs
    from parsers.stream import open_input

    paths = _inputs(folder)
    batch = analyze_inputs([open_input(p) for p in paths]).incidents
    app = _app([Source.file(p) for p in paths], tmp_path)
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot)
        shown = {i.id: _verdict(i) for i in app.triage.all_incidents()}
        assert shown == {i.id: _verdict(i) for i in batch}
        listed = app.triage.query_one(FindingsTable).listed
        assert [i.id for i in listed if i.hvci_related] == [
            f.incident.id for f in group_findings(batch) if f.incident.hvci_related
        ]
        for incident in listed:
            label = category_label(incident)
            other = label.startswith(("other:", "not HVCI"))
            assert incident.hvci_related == (not other), (incident.id, label)


async def test_utf16_logopen_sample_shows_decoded_lines(tmp_path: Path) -> None:
    path = SAMPLES / "session-utf16-logopen-relocs.log"
    app = _app([Source.file(path)], tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        log = app.triage.query_one(EvidenceLog)
        text = path.read_bytes().decode("utf-16")
        assert log.line_text(1) == text.lstrip("\ufeff").splitlines()[0]


async def test_paste_is_analysed_by_the_engine(tmp_path: Path) -> None:
    app = _app([], tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, PasteScreen)
        from textual.widgets import TextArea

        app.screen.query_one(TextArea).insert(HAXM.read_text(encoding="utf-8"))
        await pilot.press("f5")
        await settle(pilot)
        listed = app.triage.query_one(FindingsTable).listed
        assert listed and listed[0].category == "execute-pool-type"
        assert listed[0].source.path == "<paste>"
        assert app.triage.query_one(EvidenceLog).source_name == "<paste>"


async def test_a_paste_after_a_file_selects_its_finding_and_shows_its_text(tmp_path: Path) -> None:
    banner = SAMPLES / "banner-only-log-mode.log"
    app = _app([Source.file(banner)], tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.triage.current is not None and app.triage.current.source.path != "<paste>"
        await pilot.press("p")
        from textual.widgets import TextArea

        app.screen.query_one(TextArea).insert(HAXM.read_text(encoding="utf-8"))
        await pilot.press("f5")
        await settle(pilot)
        await wait_for(
            pilot, lambda: app.triage.current is not None and app.triage.current.source.path == "<paste>"
        )
        current = app.triage.current
        assert current is not None and current.category == "execute-pool-type"
        log = app.triage.query_one(EvidenceLog)
        assert log.source_name == "<paste>" and log.highlighted[0][0] == current.source.first_line


async def test_export_from_real_pipeline_matches_batch(tmp_path: Path) -> None:
    import json

    app = _app([Source.file(HAXM)], tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        path = app.export("json", tmp_path / "report.json")
        assert path is not None
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["inputs"][0]["path"] == str(HAXM)
        assert data["incidents"][0]["category"] == "execute-pool-type"


@pytest.mark.parametrize("encoding", ["cp1252", "utf-16-le"])
async def test_follow_mode_adds_findings_and_pauses_on_scroll(tmp_path: Path, encoding: str) -> None:
    log_path = tmp_path / "kd.log"
    bom = b"\xff\xfe" if encoding == "utf-16-le" else b""
    noise = "".join(f"kd noise line {n}\n" for n in range(1, 121))
    log_path.write_bytes(bom + noise.encode(encoding))

    def append(text: str) -> None:
        with log_path.open("ab") as handle:
            handle.write(text.encode(encoding))

    app = _app([Source.file(log_path)], tmp_path, follow=True)
    async with app.run_test(size=(120, 40)) as pilot:
        log = app.triage.query_one(EvidenceLog)
        await pilot.press("v")
        await _until(pilot, lambda: log.line_count == 120)
        assert log.following
        badge = app.triage.query_one(FollowBadge)
        await _until(pilot, lambda: "following" in str(badge.content))
        append(BANNER)
        table = app.triage.query_one(FindingsTable)
        await _until(pilot, lambda: len(table.listed) == 1)
        assert table.listed[0].category == "execute-page-protection"
        await _until(pilot, lambda: log.line_count == 125)
        assert log.following, "a finding arriving must not pause following"
        assert log.scroll_offset.y == log.max_scroll_y
        await pilot.press("k", "k")  # scrolling up pauses following
        assert not log.following
        append("".join(f"more {n}\n" for n in range(7)))
        await _until(pilot, lambda: log.pending == 7)
        await _until(pilot, lambda: "7 new lines" in str(badge.content))
        await pilot.press("end")
        assert log.following and log.pending == 0
        await pilot.pause()
        assert log.scroll_offset.y == log.max_scroll_y
        await pilot.press("equals_sign")
        assert not log.following
        await pilot.press("equals_sign")
        assert log.following
        app.exit()


def test_stdin_dash_is_read_before_the_app_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    captured: dict[str, object] = {}

    class Recorder:
        def run(self) -> None:
            captured["ran"] = True

    def fake_make_app(sources: list[Source], **kwargs: object) -> Recorder:
        captured["sources"] = sources
        captured.update(kwargs)
        return Recorder()

    monkeypatch.setattr("tui.app.make_app", fake_make_app)
    monkeypatch.setattr(
        open_command, "reattach_keyboard", lambda: captured.setdefault("reattached", True) and None
    )
    data = HAXM.read_bytes()
    result = CliRunner().invoke(open_command.command, ["-", "--symbols", "C:\\pdbs"], input=data)
    assert result.exit_code == 0, result.output
    sources = captured["sources"]
    assert isinstance(sources, list) and sources[0].name == "<stdin>" and sources[0].data == data
    assert captured["reattached"] is True and captured["ran"] is True
    options = captured["options"]
    assert getattr(options, "symbol_path", None) == "C:\\pdbs"


def test_open_command_rejects_bad_usage() -> None:
    runner = CliRunner()
    assert runner.invoke(open_command.command, ["-", "-"], input=b"").exit_code == 2
    assert runner.invoke(open_command.command, ["--follow", "-"], input=b"").exit_code == 2
    missing = runner.invoke(open_command.command, ["/no/such/file.log"])
    assert missing.exit_code == 2 and "cannot read" in missing.output


def test_reattach_keyboard_points_fd0_at_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    duplicated: list[tuple[int, int]] = []
    monkeypatch.setattr(open_command.os, "open", lambda path, flags: opened.append(path) or 99)
    monkeypatch.setattr(open_command.os, "dup2", lambda a, b: duplicated.append((a, b)))
    monkeypatch.setattr(open_command.os, "close", lambda fd: None)
    assert open_command.reattach_keyboard() is None
    assert opened == ["CONIN$" if open_command.os.name == "nt" else "/dev/tty"] and duplicated == [(99, 0)]

    def fail(path: str, flags: int) -> int:
        raise OSError(6, "No such device or address")

    monkeypatch.setattr(open_command.os, "open", fail)
    assert "cannot open" in (open_command.reattach_keyboard() or "")


def test_cli_routes_paths_to_open(monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.main import cli

    seen: list[list[Source]] = []

    class Recorder:
        def run(self) -> None:
            pass

    monkeypatch.setattr("tui.app.make_app", lambda sources, **kw: seen.append(sources) or Recorder())
    monkeypatch.setattr(open_command, "reattach_keyboard", lambda: None)
    result = CliRunner().invoke(cli, [str(HAXM)], input=io.BytesIO(b""))
    assert result.exit_code == 0, result.output
    assert seen and seen[0][0].path == HAXM


def _child_feed(options: AnalyzeOptions) -> PipelineFeed:
    return PipelineFeed(options, process_threshold=0)  # every input goes to the reader processes


async def test_large_input_is_analysed_in_a_child_process(tmp_path: Path) -> None:
    app = _app([Source.file(HAXM)], tmp_path, feed_factory=_child_feed)
    async with app.run_test(size=(120, 40)) as pilot:
        await _until(pilot, lambda: app.triage.all_loaded)
        await settle(pilot)
        listed = app.triage.query_one(FindingsTable).listed
        assert [i.category for i in listed] == ["execute-pool-type"]
        load = app.triage.loads[0]
        assert load.error is None and load.info is not None
        assert list(load.lines) == HAXM.read_text(encoding="utf-8").splitlines()
        assert load.bytes_read == HAXM.stat().st_size
        assert all(isinstance(chunk, Stored) for chunk in load.lines._chunks)  # read again when shown


async def test_followed_input_in_child_process_is_stopped_on_exit(tmp_path: Path) -> None:
    log_path = tmp_path / "kd.log"
    log_path.write_text("kd> g\n", encoding="utf-8")
    app = _app([Source.file(log_path)], tmp_path, follow=True, feed_factory=_child_feed)
    async with app.run_test(size=(120, 40)) as pilot:
        with log_path.open("a", encoding="utf-8") as handle:
            handle.write(BANNER)
        table = app.triage.query_one(FindingsTable)
        await _until(pilot, lambda: len(table.listed) == 1)
        await _until(pilot, lambda: app.triage.query_one(EvidenceLog).line_count == 6)
        load = app.triage.loads[0]
    assert load.stop.is_set()
    # the reader processes must end when the app closes (waits on the loader's state, not a fixed time)
    await _until(None, lambda: load.incidents_done and load.lines_done)


def test_keymap_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tui.keymap import KEYMAP_ENV, load_keymap

    path = tmp_path / "keys.toml"
    path.write_text('[keymap]\n"finding.next" = "x"\n"bad" = 3\n', encoding="utf-8")
    monkeypatch.setenv(KEYMAP_ENV, str(path))
    keymap, problem = load_keymap()
    assert keymap == {"finding.next": "x"}
    assert problem is not None and "bad" in problem
