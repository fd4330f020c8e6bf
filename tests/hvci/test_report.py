"""Report writers: the JSON contract, JSON Lines, text, Markdown and HTML, and log text kept inert."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from hvci.details import CrashDetails
from hvci.logs.pipeline import analyze_text
from hvci.model import Caller, Evidence, Incident, Report
from hvci.report import FORMATS, incident_markdown, render, to_json_dict
from parsers.records import InputInfo, Span
from tests.conftest import REPORT_SCHEMA

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCHEMA = json.loads((REPORT_SCHEMA).read_text(encoding="utf-8"))
HAXM = (ROOT / "samples" / "logs" / "session-pool-type-haxm.log").read_text(encoding="utf-8")
NON_HVCI = (ROOT / "samples" / "logs" / "session-non-hvci-d1-50.log").read_text(encoding="utf-8")

EVIL = "\x1b]52;c;ZXZpbA==\x07\x1b[31m<script>alert(1)</script>*bold* | `tick` \u202e"


@pytest.fixture(scope="module")
def report() -> Report:
    return analyze_text(NON_HVCI + "\n" + HAXM, "lab.log")


def evil_report() -> Report:
    incident = Incident(
        id="e.log:1",
        source=Span("e.log", 1, 2),
        kind="verifier-banner",
        category="execute-pool-type",
        hvci_related=True,
        confidence="certain",
        title=f"title {EVIL}",
        driver=f"drv{EVIL}",
        caller=Caller(
            0xFFFFF80000001000, module=f"m{EVIL}", offset=0x10, function=f"f{EVIL}", resolved_by="debugger"
        ),
        details=CrashDetails(image=EVIL),
        evidence=(Evidence(f"reason {EVIL}", Span("e.log", 1, 1), "deciding"),),
        bucket="execute-pool-type:m",
    )
    return Report(inputs=(InputInfo("e.log", "kd-log", "utf-8", 2),), incidents=(incident,))


def test_json_follows_the_design_contract(report: Report) -> None:
    data = to_json_dict(report)
    jsonschema.validate(data, SCHEMA)
    assert data["schema"] == "hvci-triage/1"
    hvci = next(i for i in data["incidents"] if i["hvci_related"])
    assert hvci["bugcheck"] == {
        "code": 196,
        "name": "DRIVER_VERIFIER_DETECTED_VIOLATION",
        "args": [8192, 0xFFFFF8074B9852F0, 0, 0x484D454D],
    }
    assert hvci["caller"]["address"] == "0xfffff8074b9852f0" and hvci["caller"]["offset"] == "0x52f0"
    assert hvci["caller"]["displacement"] == "0x12" and hvci["caller"]["line"] == 88
    assert hvci["details"]["pool_type"]["value"] == 0 and hvci["details"]["pool_tag"] == "MEMH"
    assert hvci["bucket"] == "execute-pool-type:intelhaxm!hax_alloc_buffer"
    assert hvci["id"] == f"lab.log:{hvci['source']['first_line']}"
    other = data["incidents"][0]
    assert (other["category"], other["hvci_related"], other["confidence"]) == (None, False, "none")
    assert data["summary"]["hvci_related"] == 1 and data["summary"]["by_category"] == {"execute-pool-type": 1}


def test_schema_rejects_a_broken_report(report: Report) -> None:
    data = to_json_dict(report)
    data["incidents"][0]["caller"]["address"] = 12345
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, SCHEMA)


def test_jsonl_has_header_incidents_findings_and_summary(report: Report) -> None:
    lines = [json.loads(line) for line in render(report, "jsonl").splitlines()]
    kinds = ["header", *["incident"] * 3, *["finding"] * 3, "summary"]
    assert [line["type"] for line in lines] == kinds
    assert lines[0]["schema"] == "hvci-triage/1" and lines[-1]["incidents"] == 3
    assert {k: v for k, v in lines[1].items() if k != "type"} == to_json_dict(report)["incidents"][0]


def test_text_puts_hvci_first_with_evidence_lines_and_fix(report: Report) -> None:
    text = render(report, "text")
    assert text.index("execute-pool-type") < text.index("DRIVER_IRQL_NOT_LESS_OR_EQUAL")
    assert "lab.log:" in text and "Fix:" in text and "hvci-triage explain execute-pool-type" in text
    assert "\x1b" not in text
    assert render(report, "text") == text  # stable


def test_every_format_renders(report: Report) -> None:
    for fmt in FORMATS:
        if fmt != "sarif":
            assert render(report, fmt)
    with pytest.raises(ValueError, match="unknown report format"):
        render(report, "xml")


@pytest.mark.parametrize("fmt", ["text", "markdown", "html", "json", "jsonl"])
def test_log_text_stays_inert(fmt: str) -> None:
    out = render(evil_report(), fmt)
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    if fmt == "html":
        assert "<script>" not in out and "&lt;script&gt;" in out
    if fmt == "markdown":
        assert "<script>" not in out and "\\*bold\\*" in out


def test_incident_markdown_is_self_contained(report: Report) -> None:
    hvci = report.hvci_incidents[0]
    text = incident_markdown(hvci)
    assert text.startswith("## IntelHaxm.sys allocated executable pool (NonPagedPool, tag MEMH)")
    assert "````text" in text or "```text" in text  # the stack, fenced
    assert "**Evidence**" in text and "**Fix:**" in text


def test_html_is_self_contained(report: Report) -> None:
    html = render(report, "html")
    assert (
        html.startswith("<!DOCTYPE html>") and "<script" not in html and "http" not in html.split("<body>")[0]
    )


def test_a_banner_of_unknown_kind_is_not_called_not_hvci() -> None:
    text = "\n".join(
        [
            "*********** Verifier Detected a Code Integrity Issue ************",
            "**",
            "** The caller 0xFFFFF80547B4B777 did something a future kernel will tell us about.",
            "**",
            "*****************************************************************",
        ]
    )
    report = analyze_text(text, "u.log")
    (incident,) = report.incidents
    assert incident.hvci_related and incident.category is None
    rendered = render(report, "text")
    assert "code integrity, kind unknown" in rendered and "not HVCI-related" not in rendered
