"""``hvci-triage debugger-script pykd|js``: the shipped script's path and the exact commands to paste; the
wheel ships both scripts."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.collectors import transcripts


@pytest.mark.parametrize(
    ("kind", "script", "steps"),
    [
        ("pykd", transcripts.PYKD_SCRIPT, [".load pykd", '!py {script} "C:\\dbg\\my session.jsonl"']),
        (
            "js",
            transcripts.JS_SCRIPT,
            [".scriptload {script}", 'dx @$scriptContents.collect("C:\\\\dbg\\\\my session.jsonl")'],
        ),
    ],
)
def test_it_prints_the_script_and_the_commands_to_paste(kind: str, script: Path, steps: list[str]) -> None:
    result = CliRunner().invoke(cli, ["debugger-script", kind, "--session", "C:\\dbg\\my session.jsonl"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"collector: {script.resolve()}"
    pasted = [line.strip() for line in lines if line.startswith("    ")]
    assert pasted[:2] == [step.format(script=script.resolve()) for step in steps]
    assert pasted[2:] == [
        'hvci-triage --follow "C:\\dbg\\my session.jsonl"',
        'hvci-triage analyze "C:\\dbg\\my session.jsonl"',
    ]


def test_without_a_session_it_names_a_new_file_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["debugger-script", "pykd"])
    (step,) = [line for line in result.output.splitlines() if "!py " in line]
    assert step.split()[-1].startswith(str(tmp_path / "hvci-session-")) and step.endswith(".jsonl")


def test_an_unknown_kind_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["debugger-script", "python"])
    assert result.exit_code == 2 and "pykd" in result.output


@pytest.mark.slow
def test_the_wheel_ships_both_collectors(tmp_path: Path) -> None:
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(transcripts.ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        pytest.skip(f"no wheel could be built here: {built.stderr.strip().splitlines()[-1:]}")
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"collectors/pykd_collector.py", "collectors/windbg_collector.js"} <= names
