"""The WinDbg JavaScript collector under node with a stand-in debugger host: the same commands and the same
session records as the pykd collector, the same findings as the plain logs, hostile transcripts."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors import pykd_collector
from tests.collectors import transcripts
from tests.collectors.test_pykd_collector import (
    _OUTPUTS,
    EVIL_NAMES,
    SAFE,
    SAMPLES,
    _analyze,
    _lm,
    findings,
    not_replayable,
)
from tests.conftest import realworld_files

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (Debian: nodejs)")


def _records(session: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in session.read_text(encoding="ascii").splitlines()]


def _same_as_pykd(log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Replay ``log`` through both collectors; assert they sent the same commands and wrote the same
    records (times aside); the JavaScript collector's session file."""
    text = transcripts.read_log(log)
    reason = not_replayable(log, text)
    if reason is not None:
        pytest.skip(reason)
    transcript = transcripts.from_log(text)
    js_session, py_session = tmp_path / "js.jsonl", tmp_path / "py.jsonl"
    js_sent = transcripts.run_js(transcripts.js_answers(transcript), js_session)
    py_sent = transcripts.run_pykd(transcript.answer, py_session, monkeypatch)
    assert js_sent == py_sent and all(SAFE.match(c) for c in js_sent)
    keys = ("kind", "seq", "command", "output", "target", "truncated", "error")
    js, py = _records(js_session), _records(py_session)
    assert [{k: r.get(k) for k in keys} for r in js] == [{k: r.get(k) for k in keys} for r in py]
    assert (js[0]["format"], js[0]["version"], js[0]["collector"]) == ("hvci-triage-session", 1, "windbg-js")
    return js_session


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.iterdir()))
def test_a_replayed_sample_gives_the_records_of_pykd_and_the_findings_of_the_log(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _same_as_pykd(SAMPLES / name, tmp_path, monkeypatch)
    assert findings(session) == findings(SAMPLES / name)


@pytest.mark.parametrize("log", realworld_files("logs", "[0-9]*.txt"), ids=lambda p: p.name)
def test_a_replayed_real_log_gives_the_records_of_pykd_and_the_findings_of_the_log(
    log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _same_as_pykd(log, tmp_path, monkeypatch)
    assert findings(session) == findings(log)


def test_crafted_module_names_never_reach_a_command(tmp_path: Path) -> None:
    answers = {
        "by_word": {
            "lm": _lm(EVIL_NAMES),
            "!analyze": _analyze(EVIL_NAMES[3], 0x2003, "fffff8074b00a000"),
            "dS": 'ffffa98f`6d2c7a38  "new;.shell x"\n',
            "kb": "".join(
                f"00 ffff8a0f`7e4cf6f8 fffff807`4b0{n}1000 : 0 : {m}!f\n" for n, m in enumerate(EVIL_NAMES)
            ),
        }
    }
    sent = transcripts.run_js(answers, tmp_path / "s.jsonl")
    assert all(SAFE.match(c) for c in sent), sent
    assert sent.count("dS 0xfffff8074b00a000") == 1 and sent[-1].startswith("!dh 0x")


def test_a_failing_command_and_a_huge_output_are_recorded_and_the_rest_still_runs(tmp_path: Path) -> None:
    huge = "fffff807`4b000000 fffff807`4b00f000   m   (deferred)\n" * 40_000
    answers = {"fail": ["!analyze -v"], "by_word": {"lm": huge}}
    sent = transcripts.run_js(answers, tmp_path / "s.jsonl")
    assert sent[:7] == list(pykd_collector.FIXED_COMMANDS)
    records = {r.get("command"): r for r in _records(tmp_path / "s.jsonl")}
    assert str(records["!analyze -v"]["error"]).startswith("Couldn't resolve error")
    assert (
        records["lm"]["truncated"] == len(huge)
        and len(str(records["lm"]["output"])) == pykd_collector.MAX_OUTPUT
    )


def test_a_session_is_continued_and_another_file_is_never_written(tmp_path: Path) -> None:
    session = tmp_path / "s.jsonl"
    first = transcripts.run_js({}, session)
    second = transcripts.run_js({}, session)
    records = _records(session)
    assert [r["seq"] for r in records[1:]] == list(range(1, len(first) + len(second) + 1))
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n", encoding="ascii")
    assert transcripts.run_js({}, notes) == [] and notes.read_text(encoding="ascii") == "mine\n"


def test_non_ascii_output_is_escaped_so_the_file_stays_ascii(tmp_path: Path) -> None:
    sent = transcripts.run_js({"by_word": {"!dbgprint": "Gerät ü \u2603 \U0001f600\n"}}, tmp_path / "s.jsonl")
    record = next(r for r in _records(tmp_path / "s.jsonl") if r.get("command") == "!dbgprint")
    assert record["output"] == "Gerät ü \u2603 \U0001f600\n" and sent


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.dictionaries(
        st.sampled_from([".bugcheck", "!analyze", "kb", "lm", "!verifier", "vertarget", "ln", "dS", "!dh"]),
        _OUTPUTS,
    )
)
def test_any_transcript_sends_what_pykd_sends_and_only_fixed_commands(
    tmp_path_factory: pytest.TempPathFactory, answers: dict[str, str]
) -> None:
    tmp = tmp_path_factory.mktemp("h")
    sent = transcripts.run_js({"by_word": answers}, tmp / "js.jsonl")
    assert all(SAFE.match(c) for c in sent), sent
    session = pykd_collector.Session(str(tmp / "py.jsonl"))
    session.open()
    run = pykd_collector.Collector(lambda command: answers.get(command.split(" ")[0], ""), session)
    run.collect()
    assert sent == run.sent


def test_the_script_is_valid_javascript() -> None:
    done = subprocess.run(
        ["node", "--check", str(transcripts.JS_SCRIPT)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
