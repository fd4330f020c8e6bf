"""Acceptance: input the way users really hand it over. Cut-off logs, binary files, a 10 MB line, folders,
missing paths, empty files and stdin: one clear line on stderr, the right exit code, never a traceback,
and nothing else in the input lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from cli.exitcodes import ExitCode
from cli.main import cli
from parsers.base import Line, LineCursor
from parsers.stack import read_frames
from tests.conftest import HANG_SECONDS

LOGS = Path(__file__).resolve().parent / "logs"
KD_SESSION = LOGS / "06_kd_serial_session_c4_2000.log"  # banner + Fatal System Error + !analyze -v + kb + lm
MODERN = LOGS / "02_windbgx_2023_c4_2001_inline.txt"
TEN_MB = 10 * 1024 * 1024


def analyze(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["analyze", *args], input=stdin, catch_exceptions=False)
    assert "Traceback" not in result.stderr
    return result.exit_code, result.stdout, result.stderr


def report(*args: str, stdin: bytes | None = None) -> tuple[int, dict[str, Any]]:
    code, out, _ = analyze("--format", "json", *args, stdin=stdin)
    return code, json.loads(out)


def cut(source: Path, marker: bytes, keep: int, target: Path) -> Path:
    """``source`` cut ``keep`` bytes after the first ``marker`` (a copy interrupted mid-report)."""
    data = source.read_bytes()
    target.write_bytes(data[: data.index(marker) + keep])
    return target


def test_log_cut_in_the_middle_of_the_arguments_is_still_one_crash(tmp_path: Path) -> None:
    """The banner and the Fatal System Error line printed all four arguments; the !analyze that follows
    stops inside Arg3. It is the same crash, not a second one with three arguments."""
    log = cut(KD_SESSION, b"Arg3: ", 14, tmp_path / "cut.log")
    code, data = report(str(log))
    assert code == ExitCode.FINDINGS
    [incident] = data["incidents"]
    assert incident["category"] == "execute-pool-type" and incident["confidence"] == "certain"
    assert incident["bugcheck"]["args"] == [0x2000, 0xFFFFF80C4A1E2F3B, 0, 0x6C6F6F50]


def test_log_cut_inside_the_stack_keeps_the_verdict_and_the_caller(tmp_path: Path) -> None:
    log = cut(MODERN, b"acmeflt!AcmeInstanceSetup", 10, tmp_path / "cut.log")
    code, data = report(str(log))
    [incident] = data["incidents"]
    assert code == ExitCode.FINDINGS and incident["category"] == "execute-page-protection"
    assert incident["caller"]["address"] == "0xfffff8063a4b2c1e"
    assert incident["caller"]["function"] == "AcmeMapSharedSection"


def test_banner_cut_short_is_code_integrity_of_unknown_kind_not_non_hvci(tmp_path: Path) -> None:
    """Only the banner's header and half an address survive: still a code-integrity report (exit 1), and
    the human report must not call it "not HVCI-related"."""
    log = cut(KD_SESSION, b"** The caller", 30, tmp_path / "cut.log")
    code, data = report(str(log))
    [incident] = data["incidents"]
    assert code == ExitCode.FINDINGS and incident["hvci_related"] and incident["caller"] is None
    for fmt in ("text", "markdown"):
        _, out, _ = analyze("--format", fmt, str(log))
        assert "not HVCI-related" not in out


def test_random_binary_is_named_as_such_and_never_clean(tmp_path: Path) -> None:
    blob = tmp_path / "crash.bin"
    blob.write_bytes(os.urandom(256 * 1024))
    code, data = report(str(blob))
    assert code == ExitCode.INCOMPLETE and data["incidents"] == []
    assert data["inputs"][0]["diagnostics"][0]["message"].startswith("binary data, not a text log")


def test_a_10_mb_line_is_cut_with_a_warning_and_the_log_around_it_survives(tmp_path: Path) -> None:
    body = MODERN.read_bytes()
    huge = b"Z" * TEN_MB
    for name, data in (("alone", huge), ("before", huge + b"\n" + body), ("after", body + huge + b"\n")):
        path = tmp_path / f"{name}.log"
        path.write_bytes(data)
        code, result = report(str(path))
        warnings = [d["message"] for d in result["inputs"][0]["diagnostics"]]
        assert any("longer than" in w for w in warnings), name
        categories = [i["category"] for i in result["incidents"]]
        assert categories == ([] if name == "alone" else ["execute-page-protection"]), name
        assert code == (ExitCode.OK if name == "alone" else ExitCode.FINDINGS), name


def test_a_folder_is_every_log_in_it_and_an_empty_folder_is_a_usage_error(tmp_path: Path) -> None:
    folder = tmp_path / "collected"
    folder.mkdir()
    (folder / "a.log").write_bytes(KD_SESSION.read_bytes())
    (folder / "b.txt").write_bytes(MODERN.read_bytes())
    (folder / "driver.sys").write_bytes(b"MZ\x90\x00" + bytes(512))  # not a log: named, not read
    code, data = report(str(folder))
    assert code == ExitCode.FINDINGS and len(data["inputs"]) == 3
    assert data["inputs"][2]["diagnostics"][0]["severity"] == "error"
    assert sorted(i["category"] for i in data["incidents"]) == [
        "execute-page-protection",
        "execute-pool-type",
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = analyze(str(empty))
    assert code == ExitCode.USAGE and out == "" and len(err.strip().splitlines()) == 1


def test_a_missing_path_is_one_line_and_the_other_inputs_are_still_analysed(tmp_path: Path) -> None:
    missing = tmp_path / "nope.log"
    code, out, err = analyze(str(missing))
    assert (
        code == ExitCode.USAGE
        and err.strip() == f"hvci-triage: {missing}: cannot read: No such file or directory"
    )
    code, out, err = analyze("--format", "json", str(missing), str(KD_SESSION))
    assert code == ExitCode.FINDINGS and len(json.loads(out)["incidents"]) == 1
    assert err.count("\n") == 1 and "nope.log" in err


def test_an_empty_file_and_empty_stdin_are_no_findings(tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    assert report(str(empty)) == (ExitCode.OK, report(str(empty))[1])
    assert report(str(empty))[1]["incidents"] == []
    code, data = report("-", stdin=b"")
    assert code == ExitCode.OK and data["incidents"] == []


def test_stdin_in_utf16_with_bom_and_crlf() -> None:
    text = (LOGS / "05_arm64_c4_2001.txt").read_text("utf-8").replace("\n", "\r\n")
    code, data = report("-", stdin=b"\xff\xfe" + text.encode("utf-16-le"))
    assert code == ExitCode.FINDINGS and data["inputs"][0]["encoding"].startswith("utf-16")
    assert [i["category"] for i in data["incidents"]] == ["execute-page-protection"]
    assert data["incidents"][0]["caller"]["function"] == "CamMapRegisters"


def test_terminal_escapes_and_nul_bytes_in_a_log_stay_data(tmp_path: Path) -> None:
    text = KD_SESSION.read_text("utf-8")
    text = text.replace("netbench: registry", "\x1b[2J\x1b]0;owned\x07netbench: registry")
    text = text.replace("IMAGE_NAME:  netbench.sys", "IMAGE_NAME:  net\x1b[31mbench.sys")
    text = text.replace("Arg1: 0000000000002000, Code", "Arg1: 0000000000002000,\x00 Code")
    log = tmp_path / "escapes.log"
    log.write_text(text, "utf-8")
    for fmt in ("text", "markdown", "html", "json"):
        code, out, _ = analyze("--format", fmt, str(log))
        assert code == ExitCode.FINDINGS and "\x1b" not in out and "\x07" not in out and "\x00" not in out, (
            fmt
        )


def test_the_installed_entry_point_reads_stdin_without_a_traceback() -> None:
    """The real console script in a child process (CliRunner cannot show an uncaught-exception exit)."""
    done = subprocess.run(
        [sys.executable, "-m", "cli", "analyze", "--format", "json", "-"],
        input=os.urandom(4096) + KD_SESSION.read_bytes(),
        capture_output=True,
        timeout=HANG_SECONDS,
        check=False,
    )
    assert b"Traceback" not in done.stderr and done.returncode == ExitCode.FINDINGS
    assert [i["category"] for i in json.loads(done.stdout)["incidents"]] == ["execute-pool-type"]


# ---- hard-wrapped stack frames (a console or forum that cut every line at 80 columns) ---------------

_WRAPPED = [
    "ffffd60f`e2a5f1b8 fffff802`2b5c1e2e     : 00000000`000000c4 00000000`00002000 ff",
    "fff802`7a8c10e4 00000000`00000000 : nt!KeBugCheckEx",
    "ffffd60f`e2a5f2e0 fffff802`7a8c2290     : ffffb488`3c1f0000 00000000`00000000 00",
    "000000`00000000 00000000`00000000 : clmmdrv+0x10e4",
    "",
    "SYMBOL_NAME:  clmmdrv+10e4",
]


def test_read_frames_joins_hard_wrapped_frames() -> None:
    cursor = LineCursor([Line(n, t) for n, t in enumerate(_WRAPPED, 1)], "paste")
    frames, last = read_frames(cursor)
    assert [(f.module, f.function, f.offset) for f in frames] == [
        ("nt", "KeBugCheckEx", None),
        ("clmmdrv", None, 0x10E4),
    ]
    assert frames[0].args == (0xC4, 0x2000, 0xFFFFF8027A8C10E4, 0) and last == 4


def test_read_frames_takes_no_following_line_that_gives_no_call_site() -> None:
    """A frame without a call site before a field line: the field line is not glued onto it."""
    lines = [
        "ffffd60f`e2a5f1b8 fffff802`2b5c1e2e     : 00000000`000000c4 00000000`00002000",
        "SYMBOL_NAME:  x+1",
    ]
    cursor = LineCursor([Line(n, t) for n, t in enumerate(lines, 1)], "paste")
    frames, last = read_frames(cursor)
    assert len(frames) == 1 and frames[0].module is None and last == 1
    following = cursor.next()
    assert following is not None and following.text == "SYMBOL_NAME:  x+1"
