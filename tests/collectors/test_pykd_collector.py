"""The pykd collector: the Pythons it claims, the commands it may send, replayed transcripts giving the same
findings as the plain logs, hostile transcripts, the summary printed back into the debugger."""

from __future__ import annotations

import ast
import json
import os
import re
import stat
import subprocess
import sys
import tokenize
from pathlib import Path

import parso
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors import pykd_collector as collector
from hvci.logs.pipeline import analyze_inputs
from parsers.stream import open_input
from symbols.modules import normalize_name
from tests.collectors import transcripts
from tests.conftest import realworld_files

SAMPLES = transcripts.ROOT / "samples" / "logs"
SOURCE = transcripts.PYKD_SCRIPT.read_text(encoding="utf-8")
#: What the collector may send: its fixed commands, or one of four commands with a hexadecimal number.
SAFE = re.compile(
    r"^(?:vertarget|!dbgprint|\.bugcheck|!analyze -v|kb|lm|!verifier 1|(?:ln|dS|da|!dh) 0x[0-9a-f]{1,16})$"
)
#: Standard-library modules that exist on Python 2.7 and 3.x alike.
STDLIB_2_AND_3 = {"json", "numbers", "os", "re", "subprocess", "sys", "tempfile", "time"}


# ----------------------------------------------------------------------------------- the Pythons it claims


def grammar_errors(source: str, version: str) -> list[str]:
    """Syntax errors of ``source`` under parso's grammar for Python ``version`` (0.7 still has 2.7's)."""
    grammar = parso.load_grammar(version=version)
    return [f"{e.start_pos}: {e.message}" for e in grammar.iter_errors(grammar.parse(source))]


@pytest.mark.parametrize("version", ["2.7", "3.4", "3.8"])
def test_the_script_parses_with_every_grammar_pykd_embeds(version: str) -> None:
    assert grammar_errors(SOURCE, version) == []
    ast.parse(SOURCE)  # and with this Python (3.11; community pykd builds run 3.10+)


@pytest.mark.parametrize(
    "snippet",
    [
        'x = f"{y}"\n',
        "def f(a: int) -> int:\n    return a\n",
        "x: int = 1\n",
        "print(1, end='')\n",
        "def f(*, a):\n    pass\n",
        "async def f():\n    pass\n",
        "x = {**a}\n",
    ],
)
def test_the_grammar_check_rejects_what_python_2_7_cannot_run(snippet: str) -> None:
    assert grammar_errors(snippet, "2.7")


def test_no_string_prefix_or_builtin_that_python_2_7_lacks() -> None:
    tokens = list(tokenize.generate_tokens(iter(SOURCE.splitlines(keepends=True)).__next__))
    strings = [t.string for t in tokens if t.type == tokenize.STRING]
    assert not [s for s in strings if re.match(r"^[rRbBuU]*[fF]", s)]  # f-strings
    names = {t.string for t in tokens if t.type == tokenize.NAME}
    assert not names & {"nonlocal", "pathlib", "FileNotFoundError", "print", "shutil", "TimeoutError"}


def test_it_imports_only_the_standard_library_and_uses_only_pykd_dbgcommand() -> None:
    tree = ast.parse(SOURCE)
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported == STDLIB_2_AND_3 | {"pykd"}
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "pykd"
    }
    assert used == {"dbgCommand"}


# ------------------------------------------------------------------------------- replayed transcripts


def findings(path: Path) -> set[tuple[str, str, str]]:
    report = analyze_inputs([open_input(path)])
    return {
        (str(i.category), normalize_name(i.driver or ""), i.kind) for i in report.incidents if i.hvci_related
    }


def not_replayable(log: Path, text: str) -> str | None:
    """Why one collector run cannot stand for this log, or None."""
    inp = open_input(log)
    report = analyze_inputs([inp])
    if report.inputs[0].format not in ("kd-log", "analyze", "verifier", "text"):
        return f"not debugger output ({report.inputs[0].format}): no collector ever reads it"
    if sum(1 for i in report.incidents if i.kind == "bugcheck") > 1:
        return "several crashes in one log (a lab run, a forum thread): one collector run records one stop"
    prose = "the text just before the crash output names"
    if any(e.reason.startswith(prose) for i in report.incidents for e in i.evidence):
        return "the log's prose names the driver before its output: a session records command output only"
    kinds = {i.kind for i in report.incidents}
    if "image" in kinds and "bugcheck" not in kinds:
        return "a !dh of a driver the user chose, with no stop that blames one"
    return None


def replay(log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    text = transcripts.read_log(log)
    reason = not_replayable(log, text)
    if reason is not None:
        pytest.skip(reason)
    session = tmp_path / "session.jsonl"
    sent = transcripts.run_pykd(transcripts.from_log(text).answer, session, monkeypatch)
    return session, sent


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.iterdir()))
def test_a_replayed_sample_gives_the_findings_of_the_plain_log(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, sent = replay(SAMPLES / name, tmp_path, monkeypatch)
    assert all(SAFE.match(c) for c in sent)
    assert findings(session) == findings(SAMPLES / name)


@pytest.mark.parametrize("log", realworld_files("logs", "[0-9]*.txt"), ids=lambda p: p.name)
def test_a_replayed_real_log_gives_the_findings_of_the_plain_log(
    log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, sent = replay(log, tmp_path, monkeypatch)
    assert all(SAFE.match(c) for c in sent)
    assert findings(session) == findings(log)


def test_a_session_records_every_command_with_time_and_target_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vertarget = (
        "Windows 10 Kernel Version 22621 MP (2 procs) Free x64\nProduct: WinNt, suite: TerminalServer\n"
        "Built by: 22621.1.amd64fre.ni_release.220506-1250\n"
    )
    answer = transcripts.from_log(transcripts.read_log(SAMPLES / "session-pool-type-haxm.log")).answer
    session = tmp_path / "session.jsonl"
    sent = transcripts.run_pykd(lambda c: vertarget if c == "vertarget" else answer(c), session, monkeypatch)
    lines = [json.loads(line) for line in session.read_text(encoding="ascii").splitlines()]
    assert lines[0]["format"] == "hvci-triage-session" and lines[0]["version"] == 1
    assert [r["command"] for r in lines[1:]] == sent
    assert sent[:7] == list(collector.FIXED_COMMANDS)
    assert "ln 0xfffff8074b9852f0" in sent  # Arg2, the caller
    assert [r["seq"] for r in lines[1:]] == list(range(1, len(sent) + 1))
    times = [lines[0]["started"]] + [r["time"] for r in lines[1:]]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t) for t in times)
    assert {r["target"] for r in lines[1:]} == {"22621.1.amd64fre.ni_release.220506-1250"}
    (incident,) = analyze_inputs([open_input(session)]).hvci_incidents
    assert incident.category == "execute-pool-type" and incident.caller is not None
    assert incident.caller.function == "hax_alloc_buffer"
    assert 2 <= incident.source.first_line <= len(lines)


def test_image_subcodes_read_the_names_and_dump_the_blamed_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, sent = replay(SAMPLES / "session-image-load-wx-section.log", tmp_path, monkeypatch)
    assert [c.split()[0] for c in sent if c.split()[0] in ("dS", "da", "!dh")] == ["dS", "da", "!dh"]
    (image,) = [i for i in analyze_inputs([open_input(session)]).incidents if i.kind == "image"]
    assert normalize_name(image.driver or "") == "legacyaudio"


def test_appending_to_a_session_continues_it_and_other_files_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = tmp_path / "s.jsonl"
    answer = transcripts.from_log(transcripts.read_log(SAMPLES / "analyze-c4-2000-modern.txt")).answer
    first = transcripts.run_pykd(answer, session, monkeypatch)
    second = transcripts.run_pykd(answer, session, monkeypatch)
    lines = [json.loads(line) for line in session.read_text(encoding="ascii").splitlines()]
    assert sum(1 for r in lines if r["kind"] == "session") == 1
    assert [r["seq"] for r in lines[1:]] == list(range(1, len(first) + len(second) + 1))
    log = tmp_path / "notes.txt"
    log.write_text("my notes\n", encoding="utf-8")
    monkeypatch.setattr(sys, "argv", [str(transcripts.PYKD_SCRIPT), str(log)])
    sent: list[str] = []
    monkeypatch.setitem(sys.modules, "pykd", transcripts.standin_pykd(answer, sent))
    assert collector.main(sys.argv) == 2
    assert sent == [] and log.read_text(encoding="utf-8") == "my notes\n"


# ------------------------------------------------------------------------------------------- hostile


EVIL_NAMES = [
    "evil;.shell calc",
    "a$$>a<x",
    "!process",
    'q"uote',
    "q'uote",
    "new\nline",
    '.shell -ci "x" y',
    "x;g",
    "nt;.reboot",
    "m$$ .kill",
]


def _lm(names: list[str]) -> str:
    rows = "".join(
        f"fffff807`4b{n:02x}0000 fffff807`4b{n:02x}f000   {name}   (deferred)\n"
        for n, name in enumerate(names)
    )
    return "start             end                 module name\n" + rows


def _analyze(name: str, arg1: int, arg2: str) -> str:
    return (
        "DRIVER_VERIFIER_DETECTED_VIOLATION (c4)\nArguments:\n"
        f"Arg1: {arg1:016x}, x\nArg2: {arg2}, y\nArg3: 0000000000000000, z\nArg4: ffffb8075a5f6e50, w\n"
        f"IMAGE_NAME:  {name}\nMODULE_NAME: {name}\nFAULTING_MODULE: fffff8074b000000 {name}\n"
    )


def _collect(answers: dict[str, str], tmp: Path) -> tuple[list[str], Path]:
    session = collector.Session(str(tmp / "hostile.jsonl"))
    session.open()
    run = collector.Collector(lambda command: answers.get(command.split(" ")[0], ""), session)
    run.collect()
    return run.sent, tmp / "hostile.jsonl"


@pytest.mark.parametrize("subcode", [0x2000, 0x2003])
def test_crafted_module_names_never_reach_a_command(subcode: int, tmp_path: Path) -> None:
    answers = {
        "lm": _lm(EVIL_NAMES),
        "!analyze": _analyze(EVIL_NAMES[0], subcode, "fffff8074b00a000"),
        "kb": "".join(
            f"00 ffff8a0f`7e4cf6f8 fffff807`4b0{n}1000 : 0 0 0 0 : {name}!f+0x1\n"
            for n, name in enumerate(EVIL_NAMES)
        ),
        "dS": 'ffffa98f`6d2c7a38  "evil;.shell calc"\n',
        ".bugcheck": f"Bugcheck code 000000c4\nArguments 00000000`0000{subcode:x} fffff807`4b00a000 0 0\n",
    }
    sent, session = _collect(answers, tmp_path)
    assert all(SAFE.match(c) for c in sent), sent
    assert not [c for c in sent if any(m in c for m in (";", "$$", ".shell", '"', "'", "\n"))]
    assert any(c.startswith("!dh 0x") for c in sent)  # the blamed driver, by its base address
    for line in session.read_text(encoding="ascii").splitlines():
        json.loads(line)


def test_a_huge_output_is_cut_and_flagged_and_the_rest_still_runs(tmp_path: Path) -> None:
    huge = "fffff807`4b000000 fffff807`4b00f000   m   (deferred)\n" * 200_000  # 11 MB
    sent, session = _collect({"lm": huge, "kb": "x" * 3_000_000}, tmp_path)
    records = [json.loads(line) for line in session.read_text(encoding="ascii").splitlines()]
    lm = next(r for r in records if r.get("command") == "lm")
    assert lm["truncated"] == len(huge) and len(lm["output"]) == collector.MAX_OUTPUT
    assert sent[-1] == "!verifier 1" and all(SAFE.match(c) for c in sent)


def test_a_failing_command_is_recorded_with_its_error_and_the_rest_still_runs(tmp_path: Path) -> None:
    session = collector.Session(str(tmp_path / "s.jsonl"))
    session.open()

    def execute(command: str) -> str:
        if command == "!analyze -v":
            raise RuntimeError("Couldn't resolve error at 'nalyze'")
        if command == ".bugcheck":
            return b"Bugcheck code 000000c4\nArguments 2000 fffff807`4b9852f0 0 0\n\xff"  # type: ignore[return-value]
        return None  # type: ignore[return-value]

    run = collector.Collector(execute, session)
    assert run.collect() == (0xC4, [0x2000, 0xFFFFF8074B9852F0, 0, 0])
    records = [json.loads(line) for line in Path(session.path).read_text(encoding="ascii").splitlines()]
    failed = next(r for r in records if r.get("command") == "!analyze -v")
    assert failed["error"] == "Couldn't resolve error at 'nalyze'" and failed["output"] == ""
    assert "ln 0xfffff8074b9852f0" in run.sent


_HEXES = st.integers(0, (1 << 64) - 1).map(lambda n: f"{n >> 32:08x}`{n & 0xFFFFFFFF:08x}")
_LINES = st.one_of(
    st.text(max_size=120),
    st.builds(lambda a, b, n: f"{a} {b}   {n}   (deferred)", _HEXES, _HEXES, st.sampled_from(EVIL_NAMES)),
    st.builds(lambda a, b: f"00 {a} {b} : 0 0 0 0 : m!f", _HEXES, _HEXES),
    st.builds(lambda k, a: f"Arg{k}: {a}, text", st.integers(1, 4), _HEXES),
    st.builds(lambda a: f"Arguments {a} {a} {a} {a}", _HEXES),
    st.sampled_from(
        [
            "Bugcheck code 000000c4",
            "DRIVER_VERIFIER_DETECTED_VIOLATION (c4)",
            "BUGCHECK_P1: 2003",
            "IMAGE_NAME:  evil;.shell x",
            "FAULTING_MODULE: fffff8074b000000 x;g",
            "Built by: 1;.kill",
        ]
    ),
)
_OUTPUTS = st.lists(_LINES, max_size=30).map("\n".join)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "vertarget",
                "!dbgprint",
                ".bugcheck",
                "!analyze",
                "kb",
                "lm",
                "!verifier",
                "ln",
                "dS",
                "da",
                "!dh",
            ]
        ),
        _OUTPUTS,
    )
)
def test_any_transcript_sends_only_fixed_commands_and_never_crashes(
    tmp_path_factory: pytest.TempPathFactory, answers: dict[str, str]
) -> None:
    sent, session = _collect(answers, tmp_path_factory.mktemp("h"))
    assert all(SAFE.match(c) for c in sent), sent
    assert sent[:7] == list(collector.FIXED_COMMANDS)
    assert len([c for c in sent if c.startswith("ln ")]) <= collector.MAX_ADDRESSES
    records = [json.loads(line) for line in session.read_text(encoding="ascii").splitlines()]
    assert [r["command"] for r in records[1:]] == sent


# ------------------------------------------------------------------------------------- the summary


def test_the_summary_runs_hvci_triage_with_an_argument_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    record = tmp_path / "argv.json"
    fake = tools / "hvci-triage"
    fake.write_text(
        f"#!{sys.executable}\nimport json, sys\njson.dump(sys.argv[1:], open({str(record)!r}, 'w'))\n"
        "print('\\n'.join('summary line %d' % n for n in range(60)))\n",
        encoding="utf-8",
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    session = tmp_path / "a b; touch pwned.jsonl"
    answer = transcripts.from_log(transcripts.read_log(SAMPLES / "analyze-c4-2000-modern.txt")).answer
    sent: list[str] = []
    monkeypatch.setitem(sys.modules, "pykd", transcripts.standin_pykd(answer, sent))
    monkeypatch.setenv("PATH", str(tools))
    monkeypatch.chdir(tmp_path)
    assert collector.main([str(transcripts.PYKD_SCRIPT), str(session)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1:] == [f"summary line {n}" for n in range(collector.MAX_SUMMARY_LINES)] + [
        f"... 20 more lines: hvci-triage analyze --format text {session}"
    ]
    assert json.loads(record.read_text(encoding="utf-8")) == ["analyze", "--format", "text", str(session)]
    assert not (tmp_path / "pwned.jsonl").exists() and not Path("pwned.jsonl").exists()
    assert collector.find_tool(os.pathsep.join(["", str(tmp_path), str(tools)])) == str(fake)


def test_a_tool_that_cannot_run_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    assert collector.summary(str(tmp_path / "missing"), "s.jsonl").startswith("hvci-triage could not run: ")


def test_a_fresh_python_with_someone_elses_standin_pykd_writes_a_session_analyze_classifies(
    tmp_path: Path,
) -> None:
    """As an outside check runs it: a new interpreter, a ``pykd`` module that only has ``dbgCommand`` and
    knows only ``!analyze -v`` (raising for anything else), the script run as a program."""
    analysis = SAMPLES / "analyze-c4-2003-wx-section.txt"
    (tmp_path / "pykd.py").write_text(
        "class DbgException(Exception):\n    pass\n\n"
        f"TEXT = open({str(analysis)!r}, encoding='utf-8').read()\n\n"
        "def dbgCommand(command):\n"
        "    if command == '!analyze -v':\n        return TEXT\n"
        "    raise DbgException('Couldn\\'t resolve error at ' + command)\n",
        encoding="utf-8",
    )
    session = tmp_path / "session.jsonl"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PATH": ""}
    done = subprocess.run(
        [sys.executable, str(transcripts.PYKD_SCRIPT), str(session)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "(bug check 0xc4)" in done.stdout
    (incident,) = analyze_inputs([open_input(session)]).hvci_incidents
    assert incident.category == "execute-write-section" and incident.source.first_line == 5
    assert findings(session) == findings(analysis)
