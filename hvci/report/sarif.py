"""SARIF 2.1.0 for GitHub code scanning, shared by ``scan`` (image and call-site incidents) and ``analyze``
(log incidents).

What GitHub requires and what BinSkim does (anchors.md §C.4) decide the shape:

* one run; ``tool.driver`` with name, version, ``informationUri`` and a ``rules[]`` entry per rule id used,
  each with ``name`` (PascalCase), short and full descriptions, ``help.text`` + ``help.markdown`` (the
  knowledge base's remediation), ``helpUri``, and ``properties`` (``tags`` incl. ``security``,
  ``security-severity``, ``precision``);
* results with ``ruleId``, ``level``, flat ``message.text``, ``locations[]``, ``partialFingerprints``;
* ``invocations[0].executionSuccessful`` is false and ``toolConfigurationNotifications`` name the inputs
  that could not be analysed (BinSkim's convention for a PDB that failed to load);
* ``kind: pass`` / ``notApplicable`` results only for the rule results the caller passes (``--verbose``).

Locations, in order of preference (the documented fallback):

1. a log incident: the log file with ``region.startLine``/``endLine`` = the incident's span;
2. a call site whose PDB gave a source file that exists under the root (the PDB's absolute build path is
   mapped by its longest suffix that exists there): that file and line;
3. otherwise the binary itself, URI relative to the root, with no region (as BinSkim does); the function is a
   ``logicalLocation`` and the RVA, file offset-independent, is in ``properties``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import quote

from hvci.details import CallSiteDetails, ImageDetails, UncalledImportDetails, level_of
from hvci.images.rules import COULD_NOT_ANALYSE, NOT_APPLICABLE, PASS, RuleResult
from hvci.knowledge import kb
from hvci.model import Incident
from parsers.records import InputInfo, Span

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
TOOL_NAME = "hvci-triage"
#: Used when the installed package names no homepage: Microsoft's page that defines the rules we check.
FALLBACK_INFORMATION_URI = (
    "https://learn.microsoft.com/windows-hardware/drivers/driversecurity/implement-hvci-compatible-code"
)
SRCROOT = "%SRCROOT%"

#: GitHub maps security-severity >= 7 to high, >= 4 to medium, else low.
SECURITY_SEVERITY = {"error": "7.5", "warning": "5.0", "note": "2.0"}
CONFIDENCE_LEVEL = {"certain": "error", "likely": "error", "possible": "warning", "none": "note"}
CONFIDENCE_PRECISION = {"certain": "very-high", "likely": "high", "possible": "medium", "none": "low"}


def render_sarif(
    incidents: Iterable[Incident],
    *,
    rule_results: Iterable[tuple[str, RuleResult]] = (),
    inputs: Iterable[InputInfo] = (),
    root: str | Path | None = None,
    category: str = TOOL_NAME,
) -> dict[str, Any]:
    """A SARIF 2.1.0 log (as a dict ready for ``json.dump``) with one run.

    ``rule_results`` are ``(artifact path, result)`` pairs; ``pass`` and ``not-applicable`` ones become
    ``kind: pass``/``notApplicable`` results, ``could-not-analyse`` ones notifications (failed rules are
    already incidents). ``root`` is the folder artifact URIs are relative to (default: the current one).
    ``category`` becomes ``automationDetails.id`` (``category/``), so GitHub keeps the uploads of ``scan``
    and ``analyze`` apart instead of one replacing the other.
    """
    base = Path(root) if root is not None else Path.cwd()
    table = kb.load()
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for incident in incidents:
        rule_id = _rule_id(incident)
        if rule_id not in rules:
            rules[rule_id] = _rule(rule_id, table)
        results.append(_result(incident, rule_id, base, seen))
    notifications: list[dict[str, Any]] = []
    for path, rule in rule_results:
        if rule.status in (PASS, NOT_APPLICABLE):
            if rule.rule_id not in rules:
                rules[rule.rule_id] = _rule(rule.rule_id, table)
            results.append(_kind_result(path, rule, base))
        elif rule.status == COULD_NOT_ANALYSE:
            notifications.append(_notification(path, f"{rule.rule_id}: {rule.message}", "warning", base))
    failed = False
    for info in inputs:
        for diagnostic in info.diagnostics:
            if diagnostic.severity in ("error", "warning"):
                notifications.append(_notification(info.path, diagnostic.message, diagnostic.severity, base))
                failed = failed or diagnostic.severity == "error"
    ordered_rules = sorted(rules.values(), key=lambda r: str(r["id"]))
    index = {r["id"]: i for i, r in enumerate(ordered_rules)}
    for result in results:
        result["ruleIndex"] = index[result["ruleId"]]
    run: dict[str, Any] = {
        "tool": {"driver": _driver(ordered_rules)},
        "automationDetails": {"id": f"{category}/"},
        "originalUriBaseIds": {SRCROOT: {"uri": base.resolve().as_uri() + "/"}},
        "invocations": [
            {
                "executionSuccessful": not failed and not any(n["level"] == "error" for n in notifications),
                "toolConfigurationNotifications": notifications,
            }
        ],
        "results": results,
        "columnKind": "unicodeCodePoints",
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


# ---------------------------------------------------------------------------------------------- rules


def _rule_id(incident: Incident) -> str:
    if isinstance(incident.details, ImageDetails):
        return incident.details.rule
    if incident.category is not None:
        return incident.category
    if incident.bugcheck is not None:
        return f"other/bugcheck-{incident.bugcheck.code:#x}"
    return f"other/{incident.kind}"


def _pascal(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", text) if part)


def _rule(rule_id: str, table: kb.KnowledgeBase) -> dict[str, Any]:
    category = table.categories.get(rule_id.split("/", 1)[0])
    image_rule = table.image_rules.get(rule_id)
    if image_rule is not None:
        name, short, full = image_rule.name, image_rule.short, image_rule.help
    elif category is not None:
        name, short, full = _pascal(category.name), category.name, " ".join(category.summary.split())
    else:
        name = _pascal(rule_id.split("/", 1)[-1])
        short = f"Not HVCI-related: {rule_id.split('/', 1)[-1]}"
        full = (
            "An incident in the input that memory integrity did not cause (reported so that nothing in a "
            "log is silently dropped)."
        )
    help_text, help_markdown, help_uri = _help(category, full)
    level = image_rule.level if image_rule else "note" if rule_id.startswith("other/") else "error"
    tags = ["driver"] if rule_id.startswith("other/") else ["security", "hvci", "memory-integrity", "driver"]
    return {
        "id": rule_id,
        "name": name,
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "help": {"text": help_text, "markdown": help_markdown},
        "helpUri": help_uri,
        "defaultConfiguration": {"level": level},
        "properties": {"tags": tags, "precision": "high", "security-severity": SECURITY_SEVERITY[level]},
    }


def _help(category: kb.Category | None, fallback: str) -> tuple[str, str, str]:
    if category is None:
        return fallback, fallback, FALLBACK_INFORMATION_URI
    remedy = category.remediation
    text = "\n\n".join(
        part.strip() for part in (remedy.what, remedy.why, remedy.fix) if part and part.strip()
    )
    links = list(remedy.links)
    markdown_parts = [
        f"## {category.name}",
        remedy.what.strip(),
        "### Why",
        remedy.why.strip(),
        "### Fix",
        remedy.fix.strip(),
    ]
    if remedy.before and remedy.after:
        markdown_parts += [
            "### Before",
            f"```c\n{remedy.before.strip()}\n```",
            "### After",
            f"```c\n{remedy.after.strip()}\n```",
        ]
    if remedy.verify:
        markdown_parts += ["### Verify", remedy.verify.strip()]
    if links:
        markdown_parts += ["### Sources", "\n".join(f"- [{link.title}]({link.url})" for link in links)]
    uri = links[0].url if links else FALLBACK_INFORMATION_URI
    return text or fallback, "\n\n".join(p for p in markdown_parts if p), uri


def _driver(rules: Sequence[dict[str, Any]]) -> dict[str, Any]:
    from importlib import metadata  # here: reading package metadata is slow, and only SARIF needs it

    try:
        version = metadata.version(TOOL_NAME)
        urls = metadata.metadata(TOOL_NAME).get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        version, urls = "0+unknown", []
    homepage = next((u.split(",", 1)[1].strip() for u in urls if "," in u), FALLBACK_INFORMATION_URI)
    return {
        "name": TOOL_NAME,
        "version": version,
        "semanticVersion": version,
        "informationUri": homepage,
        "rules": list(rules),
    }


# -------------------------------------------------------------------------------------------- results


def _level(incident: Incident) -> str:
    level = level_of(incident.details)
    if level is not None and level in SECURITY_SEVERITY:
        return level
    if not incident.hvci_related:
        return "note"
    return CONFIDENCE_LEVEL.get(incident.confidence, "warning")


def _result(incident: Incident, rule_id: str, base: Path, seen: dict[str, int]) -> dict[str, Any]:
    level = _level(incident)
    details = incident.details
    review = isinstance(details, CallSiteDetails | UncalledImportDetails) and details.verdict == "unknown"
    result: dict[str, Any] = {
        "ruleId": rule_id,
        "kind": "review" if review else "fail",
        "level": "none" if review else level,
        "message": {"text": _message(incident)},
        "locations": [_location(incident, base)],
        "partialFingerprints": {"hvciTriage/v1": _fingerprint(incident, rule_id, seen)},
        "properties": {
            "tags": ["security", "hvci"] if incident.hvci_related else ["driver"],
            "security-severity": SECURITY_SEVERITY[level],
            "precision": CONFIDENCE_PRECISION.get(incident.confidence, "medium"),
            "confidence": incident.confidence,
            "incidentKind": incident.kind,
            "bucket": incident.bucket,
            "evidence": [e.reason for e in incident.evidence],
            **({"count": incident.count} if incident.count != 1 else {}),
            **_site_properties(incident),
        },
    }
    return result


def _message(incident: Incident) -> str:
    text = incident.title.strip() or incident.kind
    if incident.driver and incident.driver not in text:
        text = f"{incident.driver}: {text}"
    return text


def _site_properties(incident: Incident) -> dict[str, str]:
    """A call site's RVA, API, verdict, argument kind and replacement value (what a reviewer filters on)."""
    site = incident.details
    if isinstance(site, UncalledImportDetails):
        return {"api": site.api, "verdict": site.verdict}
    if not isinstance(site, CallSiteDetails):
        return {}
    out = {"rva": f"0x{site.rva:x}", "api": site.api, "verdict": site.verdict}
    out["argument_kind"] = site.argument_kind
    if site.replacement is not None:
        out["replacement"] = f"0x{site.replacement:x}"
    return out


def _fingerprint(incident: Incident, rule_id: str, seen: dict[str, int]) -> str:
    """Stable across rebuilds: the bucket (category, module, function) and the API, not the address;
    repeated call sites in one function are told apart by their order."""
    details = incident.details
    api = details.api if isinstance(details, CallSiteDetails | UncalledImportDetails) else ""
    key = "|".join((rule_id, incident.bucket or incident.id, api))
    seen[key] = seen.get(key, 0) + 1
    return hashlib.sha256(f"{key}|{seen[key]}".encode()).hexdigest()[:32]


def _location(incident: Incident, base: Path) -> dict[str, Any]:
    caller = incident.caller
    if incident.kind in ("image", "call-site"):
        source = _source_file(caller.file, base) if caller is not None and caller.file else None
        if source is not None and caller is not None and caller.line:
            physical = {"artifactLocation": _artifact(source, base), "region": {"startLine": caller.line}}
        else:
            physical = {"artifactLocation": _artifact(incident.source.path, base)}
    else:
        binary = [e.span for e in incident.evidence if e.span is not None and e.span.offset is not None]
        physical = span_location(binary[0] if binary else incident.source, base)
    location: dict[str, Any] = {"physicalLocation": physical}
    if caller is not None and caller.function:
        qualified = f"{incident.driver or caller.module or ''}!{caller.function}".lstrip("!")
        location["logicalLocations"] = [
            {"name": caller.function, "fullyQualifiedName": qualified, "kind": "function"}
        ]
    return location


def span_location(span: Span, base: Path) -> dict[str, Any]:
    """A physical location for lines of a log: the file, and the region when the span has lines; in a
    binary input (a crash dump) the region is the byte offset of the field the verdict rests on."""
    physical: dict[str, Any] = {"artifactLocation": _artifact(span.path, base)}
    if span.offset is not None:
        physical["region"] = {"byteOffset": span.offset}
    elif span.first_line >= 1:
        physical["region"] = {"startLine": span.first_line, "endLine": max(span.last_line, span.first_line)}
    return physical


def _artifact(path: str, base: Path) -> dict[str, Any]:
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            relative = candidate.resolve().relative_to(base.resolve())
        except ValueError:
            return {"uri": candidate.as_uri()}
        return {"uri": _uri_path(relative.as_posix()), "uriBaseId": SRCROOT}
    return {"uri": _uri_path(PurePosixPath(path.replace("\\", "/")).as_posix()), "uriBaseId": SRCROOT}


def _uri_path(path: str) -> str:
    return quote(path, safe="/")


def _source_file(path: str, base: Path) -> str | None:
    """A PDB source path mapped into the root: the longest trailing part of it that exists there."""
    parts = (PureWindowsPath(path) if "\\" in path else PurePosixPath(path)).parts
    for start in range(len(parts)):
        tail = [p for p in parts[start:] if p not in ("/", "\\") and not p.endswith(":\\")]
        if not tail:
            continue
        candidate = base.joinpath(*tail)
        if candidate.is_file():
            return str(candidate.resolve())
    return None


def _kind_result(path: str, rule: RuleResult, base: Path) -> dict[str, Any]:
    return {
        "ruleId": rule.rule_id,
        "kind": "pass" if rule.status == PASS else "notApplicable",
        "level": "none",
        "message": {"text": rule.message},
        "locations": [{"physicalLocation": {"artifactLocation": _artifact(path, base)}}],
        "properties": {"evidence": list(rule.evidence)},
    }


def _notification(path: str, message: str, severity: str, base: Path) -> dict[str, Any]:
    return {
        "descriptor": {"id": "could-not-analyse"},
        "level": "error" if severity == "error" else "warning",
        "message": {"text": f"{path}: {message}"},
        "locations": [{"physicalLocation": {"artifactLocation": _artifact(path, base)}}],
    }
