"""``.evtx`` event logs: read end to end through the ``evtx`` package in a child process, rendered as the
XML lines ``wevtutil qe /f:xml`` prints, mapped by the same events parser; damage becomes diagnostics."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.exitcodes import ExitCode
from cli.main import cli
from hvci.logs.pipeline import analyze_inputs
from parsers.evtx_reader import _chunk, _flatten
from parsers.records import Diagnostic, EventRecord, Record
from parsers.stream import iter_records, open_input, parse_text
from tests.conftest import realworld

ROOT = Path(__file__).resolve().parents[2]
EXPORTED = ROOT / "samples" / "logs" / "codeintegrity-events.xml"


def _json(*args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(cli, ["analyze", "--format", "json", *args], catch_exceptions=False)
    assert "Traceback" not in result.stderr
    return result.exit_code, json.loads(result.stdout)


def _records_count(path: Path) -> int:
    import evtx

    return sum(1 for _ in evtx.PyEvtxParser(str(path)).records())


def test_the_real_system_log_is_read_end_to_end() -> None:
    path = realworld("evtx", "system.evtx")
    inp = open_input(path)
    records = list(iter_records(inp))
    info = inp.info()
    assert info.lines == _records_count(path) == 1881
    assert info.format == "event-log" and [d for d in info.diagnostics if d.severity == "error"] == []
    assert len([r for r in records if isinstance(r, EventRecord)]) >= 1
    code, data = _json(str(path))
    assert code == ExitCode.OK and data["inputs"][0]["lines"] == 1881  # type: ignore[index]


def test_a_damaged_copy_reports_the_damage_and_reads_the_rest(tmp_path: Path) -> None:
    data = bytearray(realworld("evtx", "system.evtx").read_bytes())
    for position in range(0x20000, 0x20000 + 4000):
        data[position] ^= 0x5A
    damaged = tmp_path / "damaged.evtx"
    damaged.write_bytes(bytes(data))
    code, report = _json(str(damaged))
    [info] = report["inputs"]  # type: ignore[misc]
    errors = [d for d in info["diagnostics"] if d["severity"] == "error"]
    assert code == ExitCode.INCOMPLETE and errors and "record number 204" in errors[0]["message"]
    assert info["lines"] >= 1870 and errors[0]["span"]["first_line"] > 1


def test_a_cut_off_copy_says_where_it_ends(tmp_path: Path) -> None:
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(realworld("evtx", "system.evtx").read_bytes()[:300_000])
    code, report = _json(str(cut))
    messages = [d["message"] for d in report["inputs"][0]["diagnostics"]]  # type: ignore[index]
    assert code == ExitCode.INCOMPLETE and any("ends inside chunk 4" in m for m in messages)


def test_the_real_log_from_stdin() -> None:
    data = realworld("evtx", "system.evtx").read_bytes()
    result = CliRunner().invoke(cli, ["analyze", "--format", "json", "-"], input=data, catch_exceptions=False)
    assert result.exit_code == ExitCode.OK and json.loads(result.stdout)["inputs"][0]["lines"] == 1881


def test_an_evtx_header_over_garbage_is_one_error_and_never_clean(tmp_path: Path) -> None:
    path = tmp_path / "garbage.evtx"
    path.write_bytes(b"ElfFile\x00" + bytes(range(256)) * 20)
    code, report = _json(str(path))
    [info] = report["inputs"]  # type: ignore[misc]
    assert code == ExitCode.INCOMPLETE and info["diagnostics"][0]["message"].startswith(
        "the event log cannot be read"
    )


@settings(max_examples=8, deadline=None)
@given(st.binary(min_size=0, max_size=20_000))
def test_hostile_evtx_bytes_never_raise(body: bytes) -> None:
    inp = open_input(None, data=b"ElfFile\x00" + body, name="fuzz.evtx")
    records = list(iter_records(inp))
    assert all(isinstance(r, Record.__args__) for r in records)  # type: ignore[attr-defined]
    assert any(isinstance(r, Diagnostic) and r.severity == "error" for r in records) or inp.info().lines >= 0


def _as_evtx_renders(event: ElementTree.Element) -> str:
    """An event as the evtx library renders it: an XML declaration, then indented elements."""
    ElementTree.indent(event, "  ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(event, encoding="unicode")


def _events(records: list[Record]) -> list[tuple[object, ...]]:
    return [
        (
            r.provider,
            r.event_id,
            r.module,
            r.process,
            r.status,
            r.failure_bitmap,
            r.timestamp,
            " ".join(r.message.split()),
        )
        for r in records
        if isinstance(r, EventRecord)
    ]


def test_records_rendered_by_the_library_map_like_the_exported_xml() -> None:
    text = EXPORTED.read_text("utf-8").splitlines()
    lines = [line for line in text if line.startswith("<Event ") and line.endswith("</Event>")]
    assert len(lines) >= 3
    for line in lines:
        exported, _ = parse_text(line)
        ElementTree.register_namespace("", "http://schemas.microsoft.com/win/2004/08/events/event")
        rendered, _ = parse_text(_flatten(_as_evtx_renders(ElementTree.fromstring(line))))
        assert _events(rendered) == _events(exported) and _events(exported), line[:120]


def test_problem_lines_become_error_issues() -> None:
    chunk = _chunk(b"<Event/>\n! record 7 is damaged\n<Event/>\n! chunk 2 is damaged\n")
    assert [(i.offset, i.message, i.severity) for i in chunk.issues] == [
        (9, "record 7 is damaged", "error"),
        (40, "chunk 2 is damaged", "error"),
    ]


def test_an_evtx_in_a_folder_with_dumps_and_logs(tmp_path: Path) -> None:
    (tmp_path / "system.evtx").write_bytes(realworld("evtx", "system.evtx").read_bytes())
    (tmp_path / "kd.log").write_bytes((ROOT / "samples" / "logs" / "session-pool-type-haxm.log").read_bytes())
    report = analyze_inputs([open_input(tmp_path / n) for n in ("kd.log", "system.evtx")])
    assert [i.format for i in report.inputs] == ["kd-log", "event-log"] and not report.incomplete
    assert os.path.getsize(tmp_path / "system.evtx") > 1_000_000
