"""Incidents of the groups that are not crashes: verifier counters, readiness verdicts, events, ``!dh``."""

from __future__ import annotations

from hvci.bucket import bucket_id
from hvci.details import CounterDetails, EventDetails, ReadinessDetails, image_details
from hvci.images.headers import ImageHeaders
from hvci.images.rules import FAIL, RULE_WX_INIT, check_headers
from hvci.knowledge import kb
from hvci.logs.classify.context import DECIDING, Context, hex_or_none
from hvci.logs.correlate import CounterGroup, EventGroup, ImageGroup, ReadinessGroup
from hvci.logs.wording import normalized_words
from hvci.model import Evidence, Incident
from symbols.modules import normalize_name


def classify_counters(group: CounterGroup, context: Context) -> list[Incident]:
    """One incident per non-zero counter, pointing at the banners and bug checks in the same input that
    report the same driver and category (the counter says how often; they say where)."""
    base = kb.load()
    driver = group.counter_set.module
    source = group.status.source
    incidents = []
    for label, value in group.counter_set.counters:
        if value <= 0:
            continue
        category = base.category_for_counter(label)
        evidence = [
            Evidence(
                f"{source}: {label}: {value}" + (f" for {driver}" if driver else ""), group.span, DECIDING
            )
        ]
        if category is None:
            evidence.append(
                Evidence(f"counter {label!r} is not one of the code-integrity counters", group.span)
            )
        seen = context.violations.get((normalize_name(driver), category or ""), ()) if driver else ()
        if seen:
            evidence.append(
                Evidence(f"{len(seen)} banner(s) or bug check(s) in this input report it: {', '.join(seen)}")
            )
        who = driver or "All verified drivers"
        incidents.append(
            Incident(
                id="",
                source=group.span,
                kind="verifier-counters",
                category=category,
                hvci_related=category is not None,
                confidence="certain" if category is not None else "none",
                title=f"{who}: {label} = {value} ({source})",
                driver=driver,
                details=CounterDetails(label, value, source),
                evidence=tuple(evidence),
                bucket=bucket_id(category or "verifier-counters", module=driver),
                count=value,
            )
        )
    return incidents


def classify_readiness(group: ReadinessGroup) -> Incident:
    record = group.record
    base = kb.load()
    category = base.category_for_counter(record.reason) if record.reason else None
    tool = base.verifier.readiness_tools.get(record.tool, record.tool)
    verdict = "incompatible" if record.incompatible else "compatible"
    reason = (
        f": {record.reason}" + (f" {record.count}" if record.count is not None else "")
        if record.reason
        else ""
    )
    evidence = [Evidence(f"{tool} reports {record.module} {verdict}{reason}", record.span, DECIDING)]
    hvci_related = record.incompatible
    if hvci_related and category is None:
        evidence.append(Evidence("the reason does not name one of the seven categories", record.span))
    return Incident(
        id="",
        source=record.span,
        kind="readiness",
        category=category if hvci_related else None,
        hvci_related=hvci_related,
        confidence=("certain" if category else "likely") if hvci_related else "none",
        title=f"{record.module} reported {verdict} with memory integrity by {tool}{reason}",
        driver=record.module,
        details=ReadinessDetails(record.tool, record.reason, record.count, record.incompatible),
        evidence=tuple(evidence),
        bucket=bucket_id((category or "readiness") if hvci_related else "readiness", module=record.module),
        count=record.count or 1,
    )


_LOAD_FAILURE = "ci-load-failure"
_USER_MODE_SUFFIXES = (".dll", ".exe", ".ocx", ".cpl", ".scr", ".msi", ".ps1")


def _user_mode_image(module: str | None) -> bool:
    return bool(module) and module.strip().lower().endswith(_USER_MODE_SUFFIXES)  # type: ignore[union-attr]


def _event_info(event_id: int, provider: str) -> kb.EventInfo | None:
    """The knowledge base's entry for an event, only when the provider is the one it is about."""
    info = kb.load().event(event_id)
    if info is None or normalized_words(info.provider) != normalized_words(provider):
        return None
    return info


def classify_event(group: EventGroup) -> Incident:
    record = group.record
    info = _event_info(record.event_id, record.provider)
    category = info.category if info is not None else None
    message = " ".join(record.message.split())
    evidence = [Evidence(f"{record.provider} event {record.event_id}: {message}", record.span, DECIDING)]
    if info is not None and info.explanation:
        evidence.append(Evidence(info.explanation, record.span))
    if category == _LOAD_FAILURE and _user_mode_image(record.module):
        category = None  # a user-mode DLL or program failing App Control / a signing level, not HVCI
        evidence.append(
            Evidence(
                f"{record.module} is a user-mode image: an App Control or signing-level block of a process's "
                "load, which memory integrity (kernel code integrity) does not decide",
                record.span,
            )
        )
    details = EventDetails(
        record.provider,
        record.event_id,
        record.message,
        process=record.process,
        timestamp=record.timestamp,
        status=hex_or_none(record.status),
        failure_bitmap=hex_or_none(record.failure_bitmap),
    )
    who = record.module.replace("/", "\\").rsplit("\\", 1)[-1] if record.module else "a driver"
    title = f"{record.provider} event {record.event_id} about {who}"
    return Incident(
        id="",
        source=record.span,
        kind="event",
        category=category,
        hvci_related=category is not None,
        confidence="certain" if category is not None else "none",
        title=title,
        driver=record.module,
        details=details,
        evidence=tuple(evidence),
        bucket=bucket_id(category or f"event-{record.event_id}", module=record.module),
    )


def _module_at(address: int | None, context: Context) -> str | None:
    """The image a ``!dh <address>`` dumped: the loaded module that holds the address."""
    hit = context.modules.lookup(address) if address is not None and context.modules else None
    return context.image_name(hit.module.file_name) if hit is not None and not hit.module.unloaded else None


def classify_image(group: ImageGroup, context: Context) -> list[Incident]:
    """A ``!dh`` dump judged by the same rules as ``hvci-triage scan`` judges a ``.sys`` file."""
    record = group.record
    driver = context.image_name(record.module) if record.module else _module_at(record.address, context)
    incidents = []
    for result in check_headers(ImageHeaders.from_record(record)):
        if result.status != FAIL:
            continue
        # an RWX INIT is tolerated (Windows strips W, the verifier skips it): a note, not a violation that
        # fails the run (hvci-domain.md 9.3); `scan` shows it as a warning-level rule result
        category = None if result.rule_id == RULE_WX_INIT else result.category
        evidence = [Evidence(result.message, record.span, DECIDING)]
        evidence.extend(Evidence(text, record.span) for text in result.evidence)
        details = image_details(result.rule_id, result.level, result.details)
        who = driver or "image"
        incidents.append(
            Incident(
                id="",
                source=record.span,
                kind="image",
                category=category,
                hvci_related=category is not None,
                confidence="certain" if category is not None else "none",
                title=f"{who}: {result.message}",
                driver=driver,
                details=details,
                evidence=tuple(evidence),
                bucket=bucket_id(category or result.rule_id, module=driver),
                count=result.count,
            )
        )
    return incidents
