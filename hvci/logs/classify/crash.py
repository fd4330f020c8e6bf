"""A crash group -> one incident: verdict, details, caller, driver, title and bucket put together."""

from __future__ import annotations

from hvci.bucket import bugcheck_prefix
from hvci.knowledge import kb
from hvci.logs.classify.blame import crash_driver, read_blamed
from hvci.logs.classify.callers import analyze_symbol, crash_caller, crash_frames
from hvci.logs.classify.context import Context
from hvci.logs.classify.details import bugcheck_model, crash_details, printed_names
from hvci.logs.classify.environment import check_function_verdict, weigh_memory_integrity
from hvci.logs.classify.titles import crash_bucket, crash_title
from hvci.logs.classify.verdict import (
    Verdict,
    banner_only_verdict,
    bugcheck_records,
    ci_verdict,
    other_verdict,
)
from hvci.logs.correlate import CrashGroup
from hvci.model import Evidence, Incident, IncidentKind
from parsers.records import BugCheckRecord

_FORMS = {
    "bluescreenview": "BlueScreenView",
    "whocrashed": "WhoCrashed",
    "blue-screen": "the blue screen",
    "wer-bluescreen": "Windows Error Reporting's bucket",
}


def _read_as(record: BugCheckRecord) -> str:
    read = read_blamed(record)
    return f" (read as {read}: l and I look alike on the screen)" if read != record.blamed else ""


def _pieces(group: CrashGroup, bc: BugCheckRecord | None) -> list[Evidence]:
    """What the crash viewers blame, and which arguments the input did not print (held as 0)."""
    found = [
        Evidence(f"{_FORMS.get(r.form, r.form)} blames {r.blamed}{_read_as(r)}", r.span)
        for r in group.bugchecks
        if r.blamed
    ]
    if group.mention is not None:
        mention = group.mention
        found.append(
            Evidence(
                f"the text just before the crash output names {mention.image}: {mention.text}", mention.span
            )
        )
    if bc is not None and bc.missing:
        names = ", ".join(f"Arg{n + 1}" for n in bc.missing)
        found.append(Evidence(f"{names} not printed in the input (shown as 0)", bc.span))
    return found


def classify_crash(group: CrashGroup, context: Context) -> Incident:
    bc = group.bugcheck
    kind: IncidentKind
    if bc is None and group.banner is not None:
        verdict = banner_only_verdict(group.banner)
        kind = "verifier-banner"
    elif bc is None:
        what = "!analyze output" if group.analyze is not None else "a stack or fault site"
        verdict = check_function_verdict(crash_frames(group)) or Verdict(
            None, False, "none", [Evidence(f"{what} without a bug check", group.span)]
        )
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
    weigh_memory_integrity(verdict, bc, context)
    bugcheck = bugcheck_model(bc)
    subcode = verdict.meaning
    details = crash_details(group, bc, subcode, context)
    frames = crash_frames(group)
    caller, caller_reason = crash_caller(group, bc, subcode, frames, context)
    if caller_reason is not None:
        verdict.evidence.append(caller_reason)
    driver = crash_driver(group, caller, subcode, bc, frames, context)
    verdict.evidence.extend(printed_names(group, bc, subcode, context))
    verdict.evidence.extend(_pieces(group, bc))
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
