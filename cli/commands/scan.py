"""``hvci-triage scan PATH...``: the offline check of driver images, before anyone reboots a lab machine.

Paths are ``.sys`` files, folders (every ``*.sys`` below them) or glob patterns. Each image gets the load-time
header rules (W+X sections, section alignment, IAT in an executable section, relocations, NX_COMPAT) and the
call-site analysis (every call to an affected API with its deciding argument).

``--fail-on`` picks the level that makes the run fail (exit 1): ``error`` (default: a rule Driver Verifier
or code integrity enforces, or a call that asks for executable memory), ``warning`` (also an RWX INIT
section, straddling relocations and banned APIs without a deciding argument), ``note`` (also a missing
NX_COMPAT and call sites whose argument is not known statically), or ``never``.

With more than one image, ``--jobs`` worker processes (default: one per 8 images, at most one per core) scan
them, each image in isolation: a worker that crashes or runs past ``--timeout`` makes its image
could-not-analyse with the reason (:mod:`hvci.batch.images`); the report is the same for any ``--jobs``.

Exit codes: 0 nothing at or above the threshold and everything decided; 1 findings; 2 usage
error, or no image could be read at all; 3 no findings but something could not be decided (an image that is
not a PE or cannot be read, a rule that could not run, a call whose argument is only known at run time):
never reported as clean. ``--exit-zero`` turns 1 into 0 (or 3 when incomplete) and keeps 2 and 3.

``--format json`` writes::

    {"schema": "hvci-triage-scan/1", "root": ".",
     "images": [{"path", "status", "facts", "symbols", "diagnostics",
                 "rules": [{"id", "status", "category", "level", "message", "evidence", "details"}],
                 "call_site_analysis": {"status", "notes", "instructions", "code_bytes"} | null,
                 "call_sites": [{"rva", "function", "displacement", "resolved_by", "file", "line", "api",
                                 "dll", "category", "verdict", "how", "instruction", "argument_index",
                                 "argument_kind", "values", "decoded", "reason", "replacement"}],
                 "imported_apis": [{"api", "dll", "category", "iat_rva", "call_sites"}]}],
     "incidents": [... the analyze report's incident shape ...]}
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import click

from cli.exitcodes import ExitCode
from cli.output import emit, warn
from cli.workers import jobs_option, timeout_option
from hvci.batch.images import in_workers
from hvci.details import details_json
from hvci.images.callsites import EXECUTABLE, SAFE, CallSite
from hvci.images.rules import PASS, RuleResult
from hvci.images.scan import LEVELS, ImageReport, ScanReport, incident_level, scan_paths
from hvci.knowledge.decode import DECODERS
from hvci.report.common import one_line
from symbols.environment import symbol_path_from_environment

FAIL_ON = (*LEVELS, "never")
SCHEMA = "hvci-triage-scan/1"


def fails(level: str, fail_on: str) -> bool:
    return fail_on != "never" and LEVELS.index(level) <= LEVELS.index(fail_on)


def exit_code(report: ScanReport, fail_on: str, *, exit_zero: bool) -> ExitCode:
    if report.images and all(i.status == "unreadable" for i in report.images):
        return ExitCode.USAGE
    if not exit_zero and any(fails(incident_level(i), fail_on) for i in report.incidents):
        return ExitCode.FINDINGS
    if report.incomplete:
        return ExitCode.INCOMPLETE
    return ExitCode.OK


# ---------------------------------------------------------------------------------------------- text

_STATUS_WORD = {"pass": "pass", "fail": "FAIL", "not-applicable": "n/a ", "could-not-analyse": "????"}
_VERDICT_WORD = {"executable": "FAIL", "banned": "FAIL", "unknown": "????", "safe": "pass"}


def _facts_line(image: ImageReport) -> str:
    f = image.facts
    parts = [
        str(f.get("machine")),
        str(f.get("format")),
        str(f.get("subsystem")),
        f"linker {f.get('linker_version')}",
        "signed" if f.get("signed") else "unsigned",
        "NX_COMPAT" if f.get("nx_compat") else "no NX_COMPAT",
    ]
    if f.get("force_integrity"):
        parts.append("FORCE_INTEGRITY")
    codeview = f.get("codeview")
    if isinstance(codeview, Mapping):
        parts.append(f"PDB {codeview.get('pdb_name')}")
    if f.get("timestamp_utc"):
        parts.append(f"timestamp {f.get('timestamp_utc')}")
    return ", ".join(parts)


def _rule_lines(rule: RuleResult, verbose: bool) -> list[str]:
    level = f" [{rule.level}]" if rule.status == "fail" else ""
    lines = [
        f"  {_STATUS_WORD.get(rule.status, rule.status)}  {rule.rule_id:<28} {one_line(rule.message)}{level}"
    ]
    if rule.status != PASS or verbose:
        lines.extend(f"        {one_line(e)}" for e in rule.evidence)
    return lines


def _site_line(site: CallSite) -> str:
    fn = site.function
    where = f"{fn.name}+0x{site.displacement:x}" if fn.name and site.displacement is not None else "?"
    source = f" ({fn.file}:{fn.line})" if fn.file and fn.line else ""
    fix = ""
    if site.verdict == EXECUTABLE and site.replacement is not None:
        fix = f" -> use 0x{site.replacement:x} ({DECODERS[site.argument_kind](site.replacement).name})"
    return (
        f"  {_VERDICT_WORD[site.verdict]}  0x{site.rva:06x}  {one_line(where)}{one_line(source)}  "
        f"{site.api}: "
        f"{one_line(site.reason)}{fix}  [{site.how}]"
    )


def render_text(report: ScanReport, *, verbose: bool) -> str:
    out: list[str] = []
    for image in report.images:
        out.append(f"{one_line(image.path)}: {image.status}")
        if image.facts.get("machine"):
            out.append(f"  {one_line(_facts_line(image))}")
        if image.symbols:
            out.append(f"  symbols: {one_line(image.symbols)}")
        out.extend(f"  ! {one_line(d)}" for d in image.diagnostics)
        for rule in image.rules:
            out.extend(_rule_lines(rule, verbose))
        if image.calls is not None:
            sites = image.call_sites
            counts = {v: sum(1 for s in sites if s.verdict == v) for v in _VERDICT_WORD}
            summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
            out.append(f"  call sites: {summary or 'none found'} ({image.calls.status})")
            out.extend(_site_line(s) for s in sites if s.verdict != SAFE or verbose)
            out.extend(
                f"  ????  {i.api} imported from {one_line(i.dll)} but no call site found"
                for i in image.calls.imported
                if i.call_sites == 0
            )
            out.extend(f"  note: {one_line(n)}" for n in image.calls.notes)
        out.append("")
    findings = [i for i in report.incidents if incident_level(i) == "error"]
    out.append(
        f"{len(report.images)} image(s), {len(findings)} error-level finding(s), "
        f"{len(report.incidents) - len(findings)} other incident(s)"
    )
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------- json


def _site_dict(site: CallSite) -> dict[str, Any]:
    return {
        "rva": f"0x{site.rva:x}",
        "function": site.function.name,
        "displacement": site.displacement,
        "resolved_by": site.function.resolved_by,
        "file": site.function.file,
        "line": site.function.line,
        "api": site.api,
        "dll": site.dll,
        "category": site.category,
        "verdict": site.verdict,
        "how": site.how,
        "instruction": site.instruction,
        "argument_index": site.argument_index,
        "argument_kind": site.argument_kind,
        "values": list(site.values),
        "decoded": list(site.decoded),
        "reason": site.reason,
        "replacement": site.replacement,
    }


def _image_dict(image: ImageReport) -> dict[str, Any]:
    from hvci.report.json_report import jsonable  # the writers load when their format is asked for

    calls = image.calls
    return {
        "path": image.path,
        "status": image.status,
        "facts": jsonable(dict(image.facts)),
        "symbols": image.symbols,
        "diagnostics": list(image.diagnostics),
        "rules": [
            {
                "id": r.rule_id,
                "status": r.status,
                "category": r.category,
                "level": r.level,
                "message": r.message,
                "evidence": list(r.evidence),
                "details": details_json(r.details),
            }
            for r in image.rules
        ],
        "call_site_analysis": None
        if calls is None
        else {
            "status": calls.status,
            "notes": list(calls.notes),
            "instructions": calls.instructions,
            "code_bytes": calls.code_bytes,
        },
        "call_sites": [_site_dict(s) for s in image.call_sites],
        "imported_apis": [
            {
                "api": i.api,
                "dll": i.dll,
                "category": i.category,
                "iat_rva": f"0x{i.iat_rva:x}",
                "call_sites": i.call_sites,
            }
            for i in (calls.imported if calls else ())
        ],
    }


def to_json_dict(report: ScanReport) -> dict[str, Any]:
    from hvci.report.json_report import incident_dict

    return {
        "schema": SCHEMA,
        "root": report.root,
        "images": [_image_dict(i) for i in report.images],
        "incidents": [incident_dict(i) for i in report.incidents],
    }


# --------------------------------------------------------------------------------------------- sarif


def _verbose_results(report: ScanReport) -> list[tuple[str, RuleResult]]:
    """Rule results plus safe call sites as passes (SARIF ``kind: pass`` under ``--verbose``)."""
    out = list(report.rule_results)
    for image in report.images:
        for site in image.call_sites:
            if site.verdict == SAFE:
                out.append(
                    (
                        image.path,
                        RuleResult(
                            site.category,
                            PASS,
                            site.category,
                            f"{site.api} at RVA 0x{site.rva:x}: {site.reason}",
                        ),
                    )
                )
    return out


def render(report: ScanReport, fmt: str, *, verbose: bool) -> str:
    if fmt in ("json", "sarif"):
        import json  # the text report (the default) needs no JSON encoder
    if fmt == "json":
        return json.dumps(to_json_dict(report), indent=2, ensure_ascii=False) + "\n"
    if fmt == "sarif":
        from hvci.report.sarif import render_sarif

        rule_results = (
            _verbose_results(report)
            if verbose
            else [(p, r) for p, r in report.rule_results if r.status == "could-not-analyse"]
        )
        sarif = render_sarif(
            report.incidents,
            rule_results=rule_results,
            inputs=report.inputs,
            root=report.root,
            category="hvci-triage-scan",
        )
        return json.dumps(sarif, indent=2, ensure_ascii=False) + "\n"
    return render_text(report, verbose=verbose)


def _pdb_option(values: tuple[str, ...]) -> list[str] | dict[str, str]:
    """``--pdb FILE`` (repeatable; each image takes the one that matches) or ``--pdb IMAGE=FILE``."""
    mapped = {v.split("=", 1)[0]: v.split("=", 1)[1] for v in values if "=" in v}
    if mapped:
        if len(mapped) != len(values):
            raise click.BadParameter(
                "use either FILE or IMAGE=FILE for every --pdb, not both", param_hint="--pdb"
            )
        return mapped
    return list(values)


@click.command("scan")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "sarif"]), default="text", show_default=True
)
@click.option("-o", "--output", metavar="FILE", help="Write here, not stdout.")
@click.option(
    "--pdb",
    "pdbs",
    multiple=True,
    metavar="FILE|IMAGE=FILE",
    help="PDB for function names and source lines (repeatable).",
)
@click.option(
    "--symbols",
    "symbol_path",
    metavar="PATH",
    help="Symbol path: folders or local symbol stores (srv*DIR*URL keeps DIR); "
    "default: _NT_ALT_SYMBOL_PATH;_NT_SYMBOL_PATH.",
)
@click.option(
    "--fail-on",
    type=click.Choice(FAIL_ON),
    default="error",
    show_default=True,
    help="Lowest level that makes the run fail (exit 1).",
)
@click.option("--exit-zero", is_flag=True, help="Exit 0 on findings (2 and 3 still apply).")
@jobs_option("one per 8 images, at most all cores")
@timeout_option(
    "Time limit per image in a worker (default: 300 s + 10 s per MB, ten times the measured rate; 0: "
    "none). An image over it, or whose worker crashes, is could-not-analyse. One image, -j1, or fewer "
    "than 16 images without -j are scanned in this process unless --timeout is given."
)
@click.option("-v", "--verbose", is_flag=True, help="Show passing rules and safe call sites too.")
def command(
    paths: tuple[str, ...],
    fmt: str,
    output: str | None,
    pdbs: tuple[str, ...],
    symbol_path: str | None,
    fail_on: str,
    exit_zero: bool,
    jobs: int | None,
    timeout: float | None,
    verbose: bool,
) -> None:
    """Check driver images (.sys files, folders, globs) for memory-integrity problems, offline.

    Exit status: 0 nothing at or above --fail-on and everything decided; 1 findings; 2 usage error or no
    image readable; 3 no findings, but something could not be decided (a file that is not a PE, a call
    whose argument is only known at run time): never reported as clean.
    """
    if symbol_path is None:
        symbol_path = symbol_path_from_environment()  # the same default as every other command
    workers = in_workers(jobs, timeout)
    report = scan_paths(paths, symbol_path=symbol_path, pdb=_pdb_option(pdbs), scan_many=workers)
    text = render(report, fmt, verbose=verbose)
    emit(text, output)
    for image in report.images:
        if image.status in ("unreadable", "could-not-analyse"):
            warn(f"{image.path}: {'; '.join(image.diagnostics)}", prefix="hvci-triage scan")
    sys.exit(exit_code(report, fail_on, exit_zero=exit_zero))
