"""Session files (docs/session-format.md) read like any log: records from their commands' outputs, spans
in session-file lines, bad records reported on their own line, follow mode record by record."""

from __future__ import annotations

import json
import queue
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers import source
from parsers.records import (
    AnalyzeRecord,
    BugCheckRecord,
    Diagnostic,
    ModuleListRecord,
    Record,
    StackRecord,
    SymbolLineRecord,
)
from parsers.session import read_record
from parsers.stream import iter_records, open_input
from tests.conftest import HANG_SECONDS

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "logs"
HEADER = {"format": "hvci-triage-session", "version": 1, "kind": "session", "collector": "test"}
LN = "(fffff802`da2d3300)   IntelHaxm!hax_alloc+0xe8   |  (fffff802`da2d3400)   IntelHaxm!hax_free"


def _line(record: dict[str, object]) -> str:
    return json.dumps(record, separators=(",", ":")) + "\n"


def _command(command: str, output: str, seq: int = 1) -> str:
    return _line({"kind": "command", "seq": seq, "command": command, "output": output, "time": "t"})


def _session(tmp_path: Path, *records: str, header: dict[str, object] | None = None) -> Path:
    path = tmp_path / "s.jsonl"
    path.write_text(_line(header or HEADER) + "".join(records), encoding="ascii")
    return path


def test_command_outputs_are_parsed_with_spans_in_session_lines(tmp_path: Path) -> None:
    analyze = (SAMPLES / "analyze-c4-2000-modern.txt").read_text(encoding="utf-8")
    lm = (SAMPLES / "lm-x64.txt").read_text(encoding="utf-8")
    path = _session(tmp_path, _command(".bugcheck", ""), _command("!analyze -v", analyze, 2),
                    _command("lm", lm, 3), _command("ln 0xfffff802da2d33e8", LN + "\n", 4))
    inp = open_input(path)
    records = [r for r in iter_records(inp) if not isinstance(r, Diagnostic)]
    info = inp.info()
    assert (info.format, info.lines) == ("hvci-triage-session", 5)
    analysis = next(r for r in records if isinstance(r, AnalyzeRecord))
    assert (analysis.span.first_line, analysis.span.last_line) == (3, 3)
    assert analysis.bugcheck is not None and analysis.bugcheck.args[0] == 0x2000
    assert analysis.stack is not None and {f.line for f in analysis.stack.frames} == {3}
    modules = next(r for r in records if isinstance(r, ModuleListRecord))
    assert modules.span.first_line == 4 and {m.line for m in modules.modules} == {4}
    symbol = [r for r in records if isinstance(r, SymbolLineRecord)][-1]
    assert (symbol.span.first_line, symbol.function) == (5, "hax_alloc")
    assert all(r.span.path == str(path) for r in records)


def test_a_session_file_gives_the_records_of_the_log_it_replays(tmp_path: Path) -> None:
    text = (SAMPLES / "stack-variants.txt").read_text(encoding="utf-8")
    plain = [type(r).__name__ for r in iter_records(open_input(SAMPLES / "stack-variants.txt"))]
    path = _session(tmp_path, _command("kb", text))
    assert [type(r).__name__ for r in iter_records(open_input(path))] == plain
    assert plain.count("StackRecord") > 3


def test_unreadable_records_are_reported_on_their_own_line_and_lose_nothing_else(tmp_path: Path) -> None:
    bug = "Bugcheck code 000000c4\nArguments 00000000`00002000 fffff802`da2d33e8 00000000`00000000 0\n"
    path = _session(tmp_path, '{"kind":"command","command":"kb"\n', "[1, 2]\n",
                    _line({"kind": "command", "command": "lm"}), _line({"kind": "future-kind", "x": 1}), "\n",
                    _command(".bugcheck", bug))
    inp = open_input(path)
    records = list(iter_records(inp))
    problems = {(d.span.first_line, d.message) for d in records if isinstance(d, Diagnostic)}
    assert {line for line, _ in problems} == {2, 3, 4}
    assert any("not JSON" in message for _, message in problems)
    bugchecks = [r for r in records if isinstance(r, BugCheckRecord)]
    assert [(b.span.first_line, b.code, b.args[1]) for b in bugchecks] == [(7, 0xC4, 0xFFFFF802DA2D33E8)]
    assert {d.span.first_line for d in inp.info().diagnostics} == {2, 3, 4}


def test_a_newer_format_version_is_read_with_a_warning(tmp_path: Path) -> None:
    path = _session(tmp_path, _command(".bugcheck", "Bugcheck code 000000c4\nArguments 2000 1 0 0\n"),
                    header={**HEADER, "version": 7})
    records = list(iter_records(open_input(path)))
    assert any(isinstance(r, Diagnostic) and "version 7" in r.message and r.span.first_line == 1
               for r in records)
    assert any(isinstance(r, BugCheckRecord) and r.span.first_line == 2 for r in records)


def test_only_a_file_starting_with_the_header_is_a_session(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("noise\n" + _line(HEADER) + _command(".bugcheck", "Bugcheck code 000000c4\n"),
                    encoding="ascii")
    inp = open_input(path)
    list(iter_records(inp))
    assert inp.info().format != "hvci-triage-session"


def test_a_record_longer_than_a_log_line_is_read_whole(tmp_path: Path) -> None:
    filler = "".join(f"noise line {n}\n" for n in range(20_000))  # far past the 64 KiB line cap of logs
    bug = "Bugcheck code 000000c4\nArguments 2000 1 0 0\n"
    path = _session(tmp_path, _command("!dbgprint", filler + bug))
    records = list(iter_records(open_input(path)))
    assert [(type(r).__name__, r.span.first_line) for r in records] == [("BugCheckRecord", 2)]


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_any_line_is_a_record_or_a_reason_never_an_exception(text: str) -> None:
    result = read_record(text)
    assert result is None or isinstance(result, str) or result.command is not None


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=40), st.text(max_size=400)), max_size=8))
def test_arbitrary_commands_and_outputs_keep_spans_inside_the_file(
    tmp_path_factory: pytest.TempPathFactory, pairs: list[tuple[str, str]]
) -> None:
    path = _session(tmp_path_factory.mktemp("s"), *(_command(c, o, n) for n, (c, o) in enumerate(pairs, 1)))
    inp = open_input(path)
    records = list(iter_records(inp))
    for record in records:
        assert 1 <= record.span.first_line <= record.span.last_line <= len(pairs) + 1


def test_follow_mode_yields_each_record_as_the_collector_appends_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source, "POLL_SECONDS", 0.02)
    path = _session(tmp_path)
    stop = threading.Event()
    out: queue.Queue[Record] = queue.Queue()

    def follow() -> None:
        for record in iter_records(open_input(path), follow=True, stop=stop):
            out.put(record)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    stack = (SAMPLES / "stack-variants.txt").read_text(encoding="utf-8").split("\n\n")[0]
    with open(path, "a", encoding="ascii") as session:
        session.write(_command(".bugcheck", "Bugcheck code 000000c4\nArguments 2000 fffff802`da2d33e8 0 0\n"))
        session.flush()
        first = out.get(timeout=HANG_SECONDS)
        assert isinstance(first, BugCheckRecord) and first.span.first_line == 2
        session.write(_command("ln 0xfffff802da2d33e8", LN + "\n", 2))
        session.flush()
        second = out.get(timeout=HANG_SECONDS)
        assert isinstance(second, SymbolLineRecord) and second.span.first_line == 3
        session.write(_command("kb", stack + "\n", 3)[:40])  # half a record: nothing yet
        session.flush()
        session.write(_command("kb", stack + "\n", 3)[40:])
        session.flush()
        third = out.get(timeout=HANG_SECONDS)
        while isinstance(third, Diagnostic):
            third = out.get(timeout=HANG_SECONDS)
        assert isinstance(third, StackRecord) and third.span.first_line == 4
    stop.set()
    thread.join(HANG_SECONDS)
    assert not thread.is_alive()
