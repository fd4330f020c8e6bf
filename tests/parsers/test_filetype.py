"""Inputs that are not text are named, never called clean: the sniffer, ``analyze`` alone and on folders,
and the triage view's loader."""

from __future__ import annotations

import gzip
import io
import json
import os
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from cli.exitcodes import ExitCode
from cli.main import cli
from parsers.filetype import HEAD_BYTES, TEXT, sniff
from tui.engine_feed import PipelineFeed
from tui.loading import Load, Source

ROOT = Path(__file__).resolve().parents[2]
HAXM = ROOT / "samples" / "logs" / "session-pool-type-haxm.log"
DRIVER = ROOT / "samples" / "drivers" / "build" / "align80.sys"


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("kd.log", HAXM.read_bytes())
    return buffer.getvalue()


def _serial_capture() -> bytes:
    """A KD log read off a serial port: a few NUL bytes where the line was idle."""
    data = HAXM.read_bytes()
    return data[:200] + b"\x00" * 7 + data[200:900] + b"\x00\x00" + data[900:]


NOT_TEXT = {
    "logs.zip": (_zip, "zip-archive", "a ZIP archive"),
    "kd.log.gz": (lambda: gzip.compress(HAXM.read_bytes()), "gzip", "a gzip-compressed file"),
    "logs.7z": (lambda: b"7z\xbc\xaf\x27\x1c\x00\x04" + os.urandom(200), "7z-archive", "a 7-Zip archive"),
    "logs.cab": (
        lambda: b"MSCF\x00\x00\x00\x00" + os.urandom(200),
        "cab-archive",
        "a cabinet (.cab) archive",
    ),
    "app.dmp": (
        lambda: b"MDMP\x93\xa7\x00\x00" + bytes(200),
        "user-minidump",
        "a user-mode minidump, not a kernel crash",
    ),
    "driver.sys": (DRIVER.read_bytes, "pe-image", "a PE image (driver or executable)"),
    "noise.bin": (lambda: os.urandom(64 * 1024), "binary", "binary data"),
}


@pytest.mark.parametrize("name", sorted(NOT_TEXT))
def test_each_kind_of_non_text_input_is_named(name: str) -> None:
    make, kind, what = NOT_TEXT[name]
    found = sniff(make()[:HEAD_BYTES])
    assert (found.kind, found.what) == (kind, what)
    assert found.message.startswith(what) and (found.advice or found.reader)


def test_a_pe_image_says_to_use_scan() -> None:
    assert "hvci-triage scan" in sniff(DRIVER.read_bytes()[:HEAD_BYTES]).message


def test_text_in_every_encoding_and_with_a_few_nul_bytes_is_text() -> None:
    text = HAXM.read_text("utf-8")
    for data in (
        HAXM.read_bytes(),
        text.encode("utf-16-le"),
        b"\xff\xfe" + text.encode("utf-16-le"),
        text.encode("cp1252", "replace"),
        _serial_capture(),
        b"",
    ):
        assert sniff(data[:HEAD_BYTES]) == TEXT


@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=2000))
def test_printable_text_is_always_text(text: str) -> None:
    assert sniff(text.encode("utf-8")[:HEAD_BYTES]).reader == "text"


def _analyze(*args: str) -> tuple[int, dict[str, object], str]:
    result = CliRunner().invoke(cli, ["analyze", "--format", "json", *args], catch_exceptions=False)
    assert "Traceback" not in result.stderr
    return result.exit_code, json.loads(result.stdout), result.stderr


#: What ``analyze`` reads in place (hvci/batch): its archives' members and decompressed logs are inputs.
READ_IN_PLACE = {"logs.zip", "kd.log.gz"}
NOT_READ = sorted(set(NOT_TEXT) - READ_IN_PLACE)


@pytest.mark.parametrize("name", NOT_READ)
def test_analyze_names_a_non_text_input_in_one_line_and_never_exits_0(tmp_path: Path, name: str) -> None:
    make, _, what = NOT_TEXT[name]
    path = tmp_path / name
    path.write_bytes(make())
    code, data, err = _analyze(str(path))
    assert code == ExitCode.INCOMPLETE and data["incidents"] == []  # type: ignore[index]
    assert err.strip() == f"hvci-triage: {path}: {sniff(make()[:HEAD_BYTES]).message}"
    text = CliRunner().invoke(cli, ["analyze", str(path)]).stdout
    assert "No incidents found." not in text and what in text


def test_a_folder_of_non_text_inputs_names_each_and_reads_the_serial_log(tmp_path: Path) -> None:
    for name in NOT_READ:
        (tmp_path / name).write_bytes(NOT_TEXT[name][0]())
    (tmp_path / "serial.log").write_bytes(_serial_capture())
    code, data, err = _analyze(str(tmp_path))
    inputs = {Path(i["path"]).name: i for i in data["inputs"]}  # type: ignore[attr-defined]
    assert code == ExitCode.FINDINGS and len(inputs) == len(NOT_READ) + 1
    assert [i["category"] for i in data["incidents"]] == ["execute-pool-type"]  # type: ignore[index]
    assert inputs["serial.log"]["diagnostics"] == [] and inputs["serial.log"]["format"] == "kd-log"
    for name in NOT_READ:
        assert inputs[name]["diagnostics"][0]["severity"] == "error", name
    assert len(err.strip().splitlines()) == len(NOT_READ)
    alone = tmp_path / "only"
    alone.mkdir()
    (alone / "logs.7z").write_bytes(NOT_TEXT["logs.7z"][0]())
    assert _analyze(str(alone))[0] == ExitCode.INCOMPLETE


def test_a_serial_capture_alone_is_a_log() -> None:
    data = _serial_capture()
    result = CliRunner().invoke(cli, ["analyze", "--format", "json", "-"], input=data)
    assert (
        result.exit_code == ExitCode.FINDINGS and json.loads(result.stdout)["inputs"][0]["diagnostics"] == []
    )


def test_stdin_that_is_an_archive_we_do_not_read_is_named() -> None:
    result = CliRunner().invoke(cli, ["analyze", "--format", "json", "-"], input=NOT_TEXT["logs.7z"][0]())
    assert result.exit_code == ExitCode.INCOMPLETE and "7-Zip" in result.stderr


@pytest.mark.parametrize("name", ["logs.zip", "driver.sys", "noise.bin"])
def test_the_triage_view_loader_shows_a_non_text_input_as_an_error(tmp_path: Path, name: str) -> None:
    make, _, what = NOT_TEXT[name]
    path = tmp_path / name
    path.write_bytes(make())
    load = Load(Source.file(path))
    feed = PipelineFeed(_options())
    feed.read_incidents(load)
    feed.read_lines(load)
    assert load.error is not None and load.error.startswith(what) and load.incidents == []
    assert load.lines and load.lines[0].startswith(what) or name == "noise.bin"


def _options() -> object:
    from hvci.logs.pipeline import AnalyzeOptions

    return AnalyzeOptions()
