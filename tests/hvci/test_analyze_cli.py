"""``hvci-triage analyze``: formats, stdin, folders, unreadable inputs and the exit-code contract."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from cli.exitcodes import ExitCode
from cli.main import cli
from tests.conftest import REPORT_SCHEMA

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "samples" / "logs"
HAXM = LOGS / "session-pool-type-haxm.log"
NON_HVCI = LOGS / "session-non-hvci-d1-50.log"
NUMBERS = LOGS / "session-numbers-only-and-fc.log"


def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    """``analyze`` in-process; a JSON report it writes is validated against docs/report.schema.json."""
    result = CliRunner().invoke(cli, ["analyze", *args], input=stdin, catch_exceptions=False)
    if "json" in args and result.stdout.strip():
        jsonschema.validate(json.loads(result.stdout), json.loads(REPORT_SCHEMA.read_text(encoding="utf-8")))
    return result.exit_code, result.stdout, result.stderr


def test_hvci_findings_exit_1_and_json_is_the_contract() -> None:
    code, out, _ = run("--format", "json", str(HAXM))
    assert code == ExitCode.FINDINGS
    data = json.loads(out)
    assert data["schema"] == "hvci-triage/1" and data["incidents"][0]["category"] == "execute-pool-type"


def test_non_hvci_crashes_pass_by_default_and_fail_with_fail_on_any() -> None:
    assert run("-q", str(NON_HVCI))[0] == ExitCode.OK
    assert run("-q", "--fail-on", "any", str(NON_HVCI))[0] == ExitCode.FINDINGS


def test_fail_on_confidence_threshold_and_exit_zero() -> None:
    # this log holds a "likely" 0x2000 (numbers + lm) and a "possible" 0xFC
    assert run("-q", "--fail-on", "certain", str(NUMBERS))[0] == ExitCode.OK
    assert run("-q", "--fail-on", "likely", str(NUMBERS))[0] == ExitCode.FINDINGS
    assert run("-q", "--exit-zero", str(HAXM))[0] == ExitCode.OK
    assert run("-q", "--fail-on", "never", str(HAXM))[0] == ExitCode.OK


def test_stdin_dash() -> None:
    code, out, _ = run("--format", "jsonl", "-", stdin=HAXM.read_bytes())
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == ExitCode.FINDINGS and lines[1]["id"] == "<stdin>:17"


def test_unreadable_input_is_one_line_and_the_rest_is_analysed(tmp_path: Path) -> None:
    missing = tmp_path / "nope.log"
    code, out, err = run("--format", "json", str(missing), str(HAXM))
    assert code == ExitCode.FINDINGS
    assert err.strip().splitlines()[0] == f"hvci-triage: {missing}: cannot read: No such file or directory"
    assert "Traceback" not in err
    assert len(json.loads(out)["incidents"]) == 1
    code, _, _ = run("-q", str(missing), str(NON_HVCI))
    assert code == ExitCode.INCOMPLETE  # no findings, but not everything could be read
    code, out, err = run(str(missing))
    assert code == ExitCode.USAGE and out == ""


def test_a_folder_expands_to_its_files_and_names_the_ones_that_are_not_logs(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    (lab / "host1").mkdir(parents=True)
    (lab / "host1" / "kd.log").write_bytes(HAXM.read_bytes())
    (lab / "host2.log").write_bytes(NON_HVCI.read_bytes())
    (lab / ".hidden.log").write_text("x")
    (lab / "utf16.txt").write_bytes(b"\xff\xfe" + "hello\r\n".encode("utf-16-le"))
    (lab / "driver.sys").write_bytes(b"MZ\x90\x00" + b"\x00" * 64)
    code, out, err = run("--format", "json", str(lab))
    data = json.loads(out)
    names = [Path(i["path"]).name for i in data["inputs"]]
    assert names == ["driver.sys", "host2.log", "utf16.txt", "kd.log"]
    assert code == ExitCode.FINDINGS and len(data["incidents"]) == 3
    assert data["inputs"][0]["format"] == "mz-image"
    assert (
        err.strip() == f"hvci-triage: {lab / 'driver.sys'}: an MS-DOS/PE executable (MZ header), not a text "
        "log: check a driver with `hvci-triage scan FILE`"
    )


def test_output_file_is_utf8(tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    code, stdout, _ = run(
        "--format", "markdown", "-o", str(out), str(LOGS / "session-utf16-logopen-relocs.log")
    )
    assert code == ExitCode.FINDINGS and stdout == ""
    assert out.read_text(encoding="utf-8").startswith("# hvci-triage report")


def test_bad_module_spec_is_a_usage_error() -> None:
    code, _, err = run("--module", "nonsense", str(HAXM))
    assert code == ExitCode.USAGE and "NAME=BASE" in err


def test_module_option_resolves_callers(tmp_path: Path) -> None:
    log = tmp_path / "bare.log"
    log.write_text("BugCheck C4, {2000, fffff80431b07a6c, 0, 4b425356}\n", encoding="utf-8")
    code, out, _ = run("--format", "json", "--module", "SensorHub.sys=fffff80431af0000:31000", str(log))
    caller = json.loads(out)["incidents"][0]["caller"]
    assert (caller["module"], caller["offset"]) == ("SensorHub.sys", "0x17a6c")


@pytest.mark.parametrize("fmt", ["text", "json", "jsonl", "sarif", "markdown", "html"])
def test_every_format_from_the_command_line(fmt: str) -> None:
    code, out, err = run("--format", fmt, str(HAXM))
    assert code == ExitCode.FINDINGS and out and "\x1b" not in out and err == ""


DRIVERS = ROOT / "samples" / "drivers" / "build"
SYMBOL_LOG = LOGS / "session-lab-api-misuse-symbols.log"


def test_images_resolve_callers_to_function_file_and_line() -> None:
    code, out, _ = run("--format", "json", "--images", str(DRIVERS), str(SYMBOL_LOG))
    callers = [i["caller"] for i in json.loads(out)["incidents"]]
    assert code == ExitCode.FINDINGS
    assert [(c["function"], c["line"], c["resolved_by"]) for c in callers] == [
        ("bad_pool_nonpaged", 26, "pdb"),
        ("bad_io_space_rwx", 143, "pdb"),
        ("bad_mdl_map_normal", 201, "pdb"),
    ]
    assert callers[0]["file"].endswith("src/api_misuse.c") and callers[0]["offset"] == "0x101c"


def test_symbol_path_comes_from_the_environment_too() -> None:
    result = CliRunner(env={"_NT_SYMBOL_PATH": str(DRIVERS)}).invoke(
        cli, ["analyze", "--format", "json", str(SYMBOL_LOG)], catch_exceptions=False
    )
    assert json.loads(result.stdout)["incidents"][0]["caller"]["resolved_by"] == "pdb"


def test_missing_symbols_make_the_run_incomplete(tmp_path: Path) -> None:
    code, out, _ = run("--exit-zero", "--format", "json", "--images", str(tmp_path), str(SYMBOL_LOG))
    assert code == ExitCode.INCOMPLETE
    note = json.loads(out)["incidents"][0]["caller"]["note"]
    assert "not found" in note


def test_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("cli.commands.analyze.stream_batch", interrupted)
    code, out, err = run(str(HAXM))
    assert code == ExitCode.INTERRUPTED and out == "" and "interrupted" in err


def test_progress_goes_to_a_terminal_stderr_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from cli import progress

    shown: list[str] = []
    monkeypatch.setattr(progress.BatchProgress, "advance", lambda self, unit, _: shown.append(unit.name))
    run(str(HAXM), str(NON_HVCI))
    assert shown == []  # CliRunner's stderr is not a terminal
    monkeypatch.setattr(progress, "stderr_is_terminal", lambda: True)
    run("-q", str(HAXM), str(NON_HVCI))
    assert shown == []  # -q: never
    code, out, _ = run("--format", "json", "--jobs", "2", str(HAXM), str(NON_HVCI))
    assert sorted(shown) == sorted([str(HAXM), str(NON_HVCI)])
    assert json.loads(out)["schema"] == "hvci-triage/1"  # stdout stays data
