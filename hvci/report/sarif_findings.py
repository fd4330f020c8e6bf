"""SARIF for ``analyze``: one result per finding (bucket), so code scanning sees each problem once.

:func:`hvci.report.sarif.render_sarif` writes a result per incident it is given; here it is given each
finding's representative (with the finding's bucket), and every result then gets what a lab batch adds:

* ``occurrenceCount``: how many reports the finding stands for; ``relatedLocations``: every other occurrence
  (file and lines), so nothing is lost;
* ``partialFingerprints``: ``hvciTriage/v1`` from the rule, the bucket and the API (never an address or a
  line), so the alert of one bucket keeps its identity from run to run and is not reopened;
* with a baseline, ``baselineState`` (``new``/``unchanged``) and, for an unchanged finding, an external
  ``suppressions`` entry with status ``accepted`` naming the baseline (a known, accepted problem); the
  baseline's buckets that are gone are listed in ``run.properties.baselineAbsent``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from msgspec.structs import replace

from hvci.findings import Finding, group_findings
from hvci.model import Baseline, Report
from hvci.report.json_report import dumps
from hvci.report.sarif import render_sarif, span_location


def _related(finding: Finding, base: Path) -> list[dict[str, Any]]:
    return [
        {
            "id": number,
            "physicalLocation": span_location(occurrence.source, base),
            "message": {"text": f"also seen here ({occurrence.count} report(s))"},
        }
        for number, occurrence in enumerate(finding.occurrences[1:], 1)
    ]


def _mark(result: dict[str, Any], finding: Finding, baseline: Baseline) -> None:
    state = baseline.states.get(finding.bucket, "new")
    result["baselineState"] = state
    if state == "unchanged":
        result["suppressions"] = [
            {"kind": "external", "status": "accepted", "justification": f"in the baseline {baseline.source}"}
        ]


def render_findings_sarif(report: Report, root: str | Path | None = None) -> dict[str, Any]:
    """The SARIF 2.1.0 log of a report, one result per finding (see the module docstring)."""
    base = Path(root) if root is not None else Path.cwd()
    findings = group_findings(report.incidents)
    representatives = [replace(f.incident, bucket=f.bucket) for f in findings]
    log = render_sarif(representatives, inputs=report.inputs, root=base)
    run = log["runs"][0]
    for result, finding in zip(run["results"], findings, strict=True):
        result["occurrenceCount"] = finding.count
        related = _related(finding, base)
        if related:
            result["relatedLocations"] = related
        if finding.aliases:
            result["properties"]["bucketAliases"] = list(finding.aliases)
        if report.baseline is not None:
            _mark(result, finding, report.baseline)
    if report.baseline is not None:
        run["properties"] = {
            "baselineSource": report.baseline.source,
            "baselineAbsent": list(report.baseline.absent),
        }
    return log


def render_report(report: Report) -> str:
    """``analyze --format sarif``: through the writer ``scan`` uses too, so both commands upload the same
    way."""
    return dumps(render_findings_sarif(report), indent=2) + "\n"
