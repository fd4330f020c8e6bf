"""The machine a text was taken on: memory integrity's state, Windows Security's verdicts, Driver Verifier.

A :class:`~parsers.records.MemoryIntegrityRecord` becomes an incident of its own (kind
``memory-integrity``), so every report format shows the context; it is HVCI-related when it shows a problem
(a driver Windows Security blocks or lists as incompatible, a configured virtualization-based security
service that is not running). :func:`memory_integrity` tells the crash classifier, with evidence, whether
memory integrity was running: 0xFC, 0xBE and an execute fault (0x50 with Arg2 0x10) with memory integrity
on are then ``likely`` HVCI-related; without that context they stay ``possible``.
"""

from __future__ import annotations

from collections.abc import Sequence

from hvci.bucket import bucket_id
from hvci.details import MemoryIntegrityDetails, MemoryIntegrityState, VerifierNoticeDetails, WdfLogDetails
from hvci.knowledge import kb, triage
from hvci.logs.classify.context import DECIDING, SUPPORTING, Context, hex_or_none
from hvci.logs.classify.verdict import Verdict
from hvci.logs.correlate import NoticeGroup
from hvci.model import Evidence, Incident
from parsers.records import (
    BugCheckRecord,
    MemoryIntegrityRecord,
    StackFrame,
    VerifierStatusRecord,
    WdfLogRecord,
)

_BLOCK = "hvci-driver-block"
_SERVICES = {
    1: "Credential Guard",
    2: "memory integrity",
    3: "System Guard Secure Launch",
    4: "SMM protection",
}


def memory_integrity(context: Context) -> tuple[bool | None, Evidence | None]:
    """Whether memory integrity ran where the text was taken (the last statement wins), with its evidence."""
    for record in reversed(context.memory_integrity):
        if record.running is None:
            continue
        state = "running" if record.running else "not running"
        reason = f"memory integrity was {state} on this machine ({record.source}: {record.fact})"
        return record.running, Evidence(reason, record.span, SUPPORTING)
    return None, None


def classify_notice(group: NoticeGroup, context: Context) -> list[Incident]:
    record = group.record
    if isinstance(record, VerifierStatusRecord):
        return [_verifier_notice(record)]
    if isinstance(record, WdfLogRecord):
        return [_wdf_log(record)]
    if record.drivers or record.source == "Windows Security":
        return [_blocked(record, driver) for driver in record.drivers or (None,)]
    return [_state(record)]


def _verifier_notice(record: VerifierStatusRecord) -> Incident:
    driver = record.drivers[0] if record.drivers else None
    flag = kb.load().verifier.flag
    checks = ""
    if record.flags is not None:
        on = "on" if record.flags & flag else "off"
        checks = f" (flags {record.flags:#x}: code integrity checks {on})"
    title = f"Driver Verifier names {driver}{checks}"
    evidence = (
        Evidence(f"Driver Verifier verifies or was asked about {driver}{checks}", record.span, DECIDING),
    )
    return Incident(
        id="",
        source=record.span,
        kind="verifier-notice",
        category=None,
        hvci_related=False,
        confidence="none",
        title=title,
        driver=driver,
        details=VerifierNoticeDetails(hex_or_none(record.flags)),
        evidence=evidence,
        bucket=bucket_id("verifier-notice", module=driver),
    )


def _wdf_log(record: WdfLogRecord) -> Incident:
    """KMDF's log of a driver; its verifier's ``Vf_`` entries are the driver's framework misuse."""
    who = record.driver or "a KMDF driver"
    flagged = [entry for entry in record.entries if "::Vf_" in entry]
    what = f"{len(flagged)} KMDF verifier report(s)" if flagged else f"{len(record.entries)} entries"
    evidence = [Evidence(f"KMDF verifier: {entry}", record.span, DECIDING) for entry in flagged[:8]]
    if not evidence:
        evidence.append(Evidence(f"KMDF log: {record.entries[-1]}", record.span, DECIDING))
    return Incident(
        id="",
        source=record.span,
        kind="wdf-log",
        category=None,
        hvci_related=False,
        confidence="none",
        title=f"KMDF in-flight recorder of {who}: {what}",
        driver=record.driver,
        details=WdfLogDetails(len(record.entries), len(flagged)),
        evidence=tuple(evidence),
        bucket=bucket_id("wdf-log", module=record.driver),
    )


def _blocked(record: MemoryIntegrityRecord, driver: str | None) -> Incident:
    """Windows Security: memory integrity blocks a driver (on) or lists it incompatible (cannot turn on)."""
    who = driver or "A driver"
    if record.running:
        title = f"{who} is kept from loading by memory integrity ({record.source})"
    else:
        title = f"{who} is listed as incompatible with memory integrity ({record.source})"
    evidence = [
        Evidence(
            f"{record.source}: {record.fact}" + (f" - {driver}" if driver else ""), record.span, DECIDING
        )
    ]
    return Incident(
        id="",
        source=record.span,
        kind="memory-integrity",
        category=_BLOCK,
        hvci_related=True,
        confidence="certain",
        title=title,
        driver=driver,
        details=MemoryIntegrityDetails(record.source, record.running),
        evidence=tuple(evidence),
        bucket=bucket_id(_BLOCK, module=driver),
    )


def _state(record: MemoryIntegrityRecord) -> Incident:
    """Memory integrity's state; a problem when a configured security service does not run."""
    missing = [_SERVICES.get(n, f"service {n}") for n in record.not_running]
    state = {True: "running", False: "not running", None: "in an unknown state"}[record.running]
    title = f"Memory integrity is {state} ({record.source})"
    evidence = [Evidence(f"{record.source}: {record.fact}", record.span, DECIDING)]
    if missing:
        title += f"; configured but not running: {', '.join(missing)}"
        evidence.append(Evidence(f"configured but not running: {', '.join(missing)}", record.span, DECIDING))
    return Incident(
        id="",
        source=record.span,
        kind="memory-integrity",
        category=None,
        hvci_related=bool(missing),
        confidence="likely" if missing else "none",
        title=title,
        details=MemoryIntegrityState(record.source, record.running, record.configured),
        evidence=tuple(evidence),
        bucket=bucket_id("memory-integrity", module=None),
    )


#: Bug check 0x50's Arg2 for an instruction fetch (Windows 10 and later: 0 read, 2 write, 0x10 execute).
_EXECUTE_ACCESS = 0x10
_EXECUTE_FAULT = "execute-nx-memory"


def weigh_memory_integrity(verdict: Verdict, bc: BugCheckRecord | None, context: Context) -> None:
    """Add the machine's memory-integrity state to a crash verdict other than a 0xC4 code-integrity one:
    an execute fault (0x50, Arg2 0x10) is an attempt to run non-executable memory; a stop that memory
    integrity can cause is ``likely`` its doing when memory integrity was running."""
    running, evidence = memory_integrity(context)
    if evidence is not None:
        verdict.evidence.append(evidence)
    if bc is None or verdict.meaning is not None:
        return
    if bc.code & ~kb.M_VARIANT == 0x50 and len(bc.args) > 1 and bc.args[1] == _EXECUTE_ACCESS:
        verdict.evidence.append(
            Evidence("Arg2 0x10: the page fault was an instruction fetch (execute)", bc.span, SUPPORTING)
        )
        if verdict.category is None:
            verdict.category, verdict.hvci_related, verdict.confidence = _EXECUTE_FAULT, True, "possible"
    if running and verdict.hvci_related and verdict.confidence == "possible":
        verdict.confidence = "likely"
        verdict.evidence.append(
            Evidence("with memory integrity running, this stop is likely its doing", bc.span, SUPPORTING)
        )


def check_function_verdict(frames: Sequence[StackFrame]) -> Verdict | None:
    """A crash stack without its bug check that runs through one of the verifier's code-integrity checks
    (``triage.toml``): a code-integrity violation whose subcode the text does not show."""
    checks = triage.load().ci_check_functions
    for frame in frames:
        if frame.function in checks and (frame.module or "").lower() in kb.load().kernel_images:
            reason = (
                f"the stack runs through {frame.module}!{frame.function}, the verifier's code-integrity "
                "check; the bug check's arguments (which violation) are not in the input"
            )
            return Verdict(None, True, "likely", [Evidence(reason, None, DECIDING)])
    return None
