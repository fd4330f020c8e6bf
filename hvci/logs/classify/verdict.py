"""The verdict on a crash: category, HVCI relation and confidence, each piece of evidence weighed.

A 0xC4 code-integrity subcode is decided by the verifier banner (two strong votes), the ``!analyze`` text of
Arg1 (one strong vote), then the number alone; a code address inside a loaded driver and the driver's
non-zero counters of the same category are independent support. Other bug checks get the category the
knowledge base gives them, ``possible`` at most.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import msgspec

from hvci.knowledge import kb
from hvci.logs.classify.context import (
    CONFLICTING,
    DECIDING,
    SUPPORTING,
    Context,
)
from hvci.logs.correlate import CrashGroup
from hvci.logs.wording import text_matches
from hvci.model import Confidence, Evidence
from parsers.records import AnalyzeRecord, BugCheckRecord, Span, VerifierBannerRecord
from symbols.modules import normalize_name

_FIELD_CODE = re.compile(r"^0x([0-9a-f]+)_([0-9a-f]+)", re.IGNORECASE)


class Verdict(msgspec.Struct):
    category: str | None
    hvci_related: bool
    confidence: Confidence
    evidence: list[Evidence]
    meaning: kb.SubcodeMeaning | None = None


class _Votes(msgspec.Struct):
    """The evidence gathered so far on a 0xC4 subcode's meaning, and how strongly it decides."""

    evidence: list[Evidence] = msgspec.field(default_factory=list)
    chosen: kb.SubcodeMeaning | None = None
    strong: int = 0
    independent: int = 0
    disputed: bool = False  # two strong pieces of evidence disagree

    def confidence(self) -> Confidence:
        found: Confidence
        if self.strong >= 2 or (self.strong == 1 and self.independent >= 1):
            found = "certain"
        elif self.strong == 1 or self.independent >= 1:
            found = "likely"
        else:
            found = "possible"
        return "likely" if self.disputed and found == "certain" else found


def _banner_meaning(
    banner: VerifierBannerRecord, meanings: Sequence[kb.SubcodeMeaning]
) -> kb.SubcodeMeaning | None:
    for meaning in meanings:
        if banner.issue in meaning.banner_issues:
            return meaning
    return None


def _banner_category(banner: VerifierBannerRecord) -> kb.SubcodeMeaning | None:
    """The meaning a banner announces, whatever bug check (if any) follows it (its first subcode's)."""
    base = kb.load()
    for banner_format in base.banner_formats:
        if banner_format.issue == banner.issue:
            for arg1 in banner_format.subcodes:
                found = _banner_meaning(banner, base.subcode(arg1))
                if found is not None:
                    return found
    return None


def _arg1_text(group: CrashGroup) -> tuple[str, Span] | None:
    for record in bugcheck_records(group):
        if record.arg_texts and record.arg_texts[0].strip():
            return record.arg_texts[0].strip(), record.span
    return None


def bugcheck_records(group: CrashGroup) -> list[BugCheckRecord]:
    """Every printed form of the group's bug check, the ``!analyze`` one first."""
    records = []
    if group.analyze is not None and group.analyze.bugcheck is not None:
        records.append(group.analyze.bugcheck)
    records.extend(group.bugchecks)
    return records


def _field_repeats(analyze: AnalyzeRecord | None, code: int, arg1: int) -> list[Evidence]:
    """``BUGCHECK_STR: 0xc4_2000`` / ``FAILURE_BUCKET_ID: 0xc4_2000_...`` repeat the numbers: supporting."""
    if analyze is None:
        return []
    found = []
    for key in ("BUGCHECK_STR", "FAILURE_BUCKET_ID", "DEFAULT_BUCKET_ID"):
        value = (analyze.field(key) or "").strip()
        match = _FIELD_CODE.match(value)
        if match and int(match.group(1), 16) == code and int(match.group(2), 16) == arg1:
            found.append(Evidence(f"{key} {value} repeats bug check {code:#x} / {arg1:#x}", analyze.span))
    return found


def _banner_vote(group: CrashGroup, meanings: Sequence[kb.SubcodeMeaning], votes: _Votes) -> None:
    """The banner names the issue in words, at the moment of the violation: two strong votes."""
    if group.banner is None:
        return
    choice = _banner_meaning(group.banner, meanings)
    if choice is not None:
        message = group.banner.message.strip()
        votes.evidence.append(Evidence(f"verifier banner: {message}", group.banner.span, DECIDING))
        votes.chosen, votes.strong = choice, votes.strong + 2


def _text_vote(group: CrashGroup, meanings: Sequence[kb.SubcodeMeaning], votes: _Votes) -> None:
    """The ``!analyze`` text of Arg1: decides when nothing else did, agrees, or loses to the banner."""
    text = _arg1_text(group)
    if text is None:
        return
    printed, span = text
    choice = next((m for m in meanings if text_matches(printed, m.description)), None)
    if choice is None:
        votes.evidence.append(Evidence(f"!analyze Arg1 text not recognised: {printed}", span, SUPPORTING))
    elif votes.chosen is None:
        votes.evidence.append(Evidence(f"!analyze Arg1 text: {printed}", span, DECIDING))
        votes.chosen, votes.strong = choice, votes.strong + 1
    elif choice is votes.chosen:
        votes.evidence.append(Evidence(f"!analyze Arg1 text agrees: {printed}", span, SUPPORTING))
        votes.strong += 1
    else:
        votes.evidence.append(
            Evidence(
                f"!analyze Arg1 text says {choice.category or 'not code integrity'} ({printed}); "
                "the debugger's bug-code table can be newer than the crashed build, so the banner wins",
                span,
                CONFLICTING,
            )
        )
        votes.strong -= 1
        votes.disputed = True


def _number_vote(bc: BugCheckRecord, meanings: Sequence[kb.SubcodeMeaning], votes: _Votes) -> None:
    """The number alone: supports the choice, conflicts with it, or (with nothing else) guesses the current
    meaning, saying so when the number has meant several things."""
    arg1 = bc.args[0]
    hvci_meanings = [m for m in meanings if m.hvci_related]
    number_choice = next(
        (m for m in hvci_meanings if m.era == "current"), hvci_meanings[0] if hvci_meanings else None
    )
    if len(meanings) > 1:
        note = f"Arg1 {arg1:#x} has meant: " + "; ".join(
            f"{m.category or 'not code integrity'} ({m.era}: {m.era_note})" for m in meanings
        )
    else:
        note = f"Arg1 {arg1:#x}: {number_choice.category if number_choice else 'not HVCI-related'}"
    weight = SUPPORTING
    if votes.chosen is None:
        votes.chosen = number_choice
        if len(meanings) > 1:
            note += " - no banner or !analyze text here to tell which, so the current meaning is a guess"
    elif votes.chosen is not number_choice:
        weight = CONFLICTING
        note += f" - the banner or text decides for {votes.chosen.category or 'not code integrity'}"
    votes.evidence.append(Evidence(note, bc.span, weight))


def _independent_support(group: CrashGroup, bc: BugCheckRecord, context: Context, votes: _Votes) -> None:
    """Arg2 inside a loaded driver and the driver's counters of the same category."""
    chosen = votes.chosen
    if chosen is None or not chosen.hvci_related:
        return
    if bc.args[0] in kb.load().caller_subcodes and len(bc.args) > 1 and context.modules:
        hit = context.modules.lookup(bc.args[1])
        if hit is not None and not hit.module.unloaded:
            votes.evidence.append(
                Evidence(
                    f"Arg2 {bc.args[1]:#x} is inside {context.image_name(hit.module.file_name)} "
                    f"(+{hit.offset:#x}, "
                    f"from {hit.module.source}): a driver code address, as code integrity reports it",
                    bc.span,
                    SUPPORTING,
                )
            )
            votes.independent += 1
    counted = _counter_evidence(group, chosen.category, bc, context)
    if counted is not None:
        votes.evidence.append(counted)
        votes.independent += 1


def ci_verdict(group: CrashGroup, bc: BugCheckRecord, context: Context) -> Verdict:
    """A 0xC4 code-integrity subcode: banner, then ``!analyze`` text, then the number, then support."""
    meanings = kb.load().subcode(bc.args[0])
    votes = _Votes()
    _banner_vote(group, meanings, votes)
    _text_vote(group, meanings, votes)
    _number_vote(bc, meanings, votes)
    votes.evidence.extend(_field_repeats(group.analyze, bc.code, bc.args[0]))
    _independent_support(group, bc, context, votes)
    chosen = votes.chosen
    if chosen is None or not chosen.hvci_related:
        return Verdict(None, False, "none", votes.evidence, chosen)
    return Verdict(chosen.category, True, votes.confidence(), votes.evidence, chosen)


def _counter_evidence(
    group: CrashGroup, category: str | None, bc: BugCheckRecord, context: Context
) -> Evidence | None:
    if category is None or not context.counters:
        return None
    driver = _driver_guess(group, bc, context)
    if driver is None:
        return None
    base = kb.load()
    for module, counters in context.counters.items():
        if normalize_name(module) != normalize_name(driver):
            continue
        for label, value in counters.items():
            if value > 0 and base.category_for_counter(label) == category:
                return Evidence(f"!verifier counts {label}: {value} for {module}", None, SUPPORTING)
    return None


def _driver_guess(group: CrashGroup, bc: BugCheckRecord, context: Context) -> str | None:
    if group.banner is not None and group.banner.image:
        return group.banner.image
    if len(bc.args) > 1 and context.modules:
        hit = context.modules.lookup(bc.args[1])
        if hit is not None:
            return hit.module.file_name
    if group.analyze is not None:
        return group.analyze.field("IMAGE_NAME") or group.analyze.field("MODULE_NAME")
    return None


def other_verdict(bc: BugCheckRecord) -> Verdict:
    """A bug check other than a 0xC4 code-integrity subcode: the knowledge base's category, ``possible``."""
    info = kb.load().bugcheck(bc.code)
    evidence = [Evidence(f"bug check {bc.code:#x}" + (f" {info.name}" if info else ""), bc.span, DECIDING)]
    if info is not None and info.hvci_related and info.category:
        evidence.append(
            Evidence(
                f"{info.name} is a way memory integrity stops a driver; the bug check alone does not prove "
                "memory integrity was the cause",
                bc.span,
                SUPPORTING,
            )
        )
        return Verdict(info.category, True, "possible", evidence)
    return Verdict(None, False, "none", evidence)


def banner_only_verdict(banner: VerifierBannerRecord) -> Verdict:
    """A banner with no bug check after it: log-only mode, certain when the banner's format is known."""
    meaning = _banner_category(banner)
    evidence = [Evidence(f"verifier banner: {banner.message.strip()}", banner.span, DECIDING)]
    if meaning is None:
        evidence.append(Evidence(f"banner message kind {banner.issue!r} is not a known format", banner.span))
        return Verdict(None, True, "possible", evidence)
    evidence.append(
        Evidence(
            "no bug check followed: log-only mode (/log.code_integrity) or a print-only action", banner.span
        )
    )
    return Verdict(meaning.category, True, "certain", evidence, meaning)
