"""A crash group -> one incident: verdict, details, caller, driver, title and bucket put together."""

from __future__ import annotations

from hvci.bucket import bugcheck_prefix
from hvci.knowledge import kb
from hvci.logs.classify.callers import analyze_symbol, crash_caller, crash_driver, crash_frames
from hvci.logs.classify.context import Context
from hvci.logs.classify.details import bugcheck_model, crash_details, printed_names
from hvci.logs.classify.titles import crash_bucket, crash_title
from hvci.logs.classify.verdict import (
    Verdict,
    banner_only_verdict,
    bugcheck_records,
    ci_verdict,
    other_verdict,
)
from hvci.logs.correlate import CrashGroup
from hvci.model import Evidence, Incident


def classify_crash(group: CrashGroup, context: Context) -> Incident:
    bc = group.bugcheck
    if bc is None and group.banner is not None:
        verdict = banner_only_verdict(group.banner)
        kind = "verifier-banner"
    elif bc is None:
        verdict = Verdict(None, False, "none", [Evidence("!analyze output without a bug check", group.span)])
        kind = "bugcheck"
    elif bc.code == kb.VERIFIER_BUGCHECK and bc.args and kb.load().is_code_integrity_subcode(bc.args[0]):
        verdict = ci_verdict(group, bc, context)
        kind = "bugcheck"
    else:
        verdict = other_verdict(bc)
        kind = "bugcheck"
    if bc is not None and len(bugcheck_records(group)) > 1:
        forms = sorted({r.form for r in bugcheck_records(group)})
        verdict.evidence.append(Evidence(f"the same bug check is printed by: {', '.join(forms)}", group.span))
    bugcheck = bugcheck_model(bc)
    subcode = verdict.meaning
    details = crash_details(group, bc, subcode, context)
    frames = crash_frames(group)
    caller = crash_caller(group, bc, subcode, frames, context)
    driver = crash_driver(group, caller, subcode, bc, context)
    verdict.evidence.extend(printed_names(group, bc, subcode, context))
    title = crash_title(verdict.category, bc, details, driver, group.banner)
    prefix = verdict.category or (bugcheck_prefix(bc.code) if bc is not None else kind)
    bucket = crash_bucket(prefix, caller, driver, analyze_symbol(group.analyze, driver))
    return Incident(
        id="",
        source=group.span,
        kind=kind,
        category=verdict.category,
        hvci_related=verdict.hvci_related,
        confidence=verdict.confidence,
        title=title,
        bugcheck=bugcheck,
        caller=caller,
        driver=driver,
        details=details,
        evidence=tuple(verdict.evidence),
        stack=frames,
        bucket=bucket,
        count=1,
    )
