"""Correlation rules: which records make one crash, and which start a new one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from hvci.logs.correlate import (
    LOOK_BACK_LINES,
    CounterGroup,
    CrashGroup,
    EventGroup,
    ImageGroup,
    ReadinessGroup,
    banner_agrees,
    correlate,
    same_bugcheck,
    same_value,
)
from parsers.records import (
    AnalyzeRecord,
    BugCheckRecord,
    CounterSet,
    EventRecord,
    ImageHeaderRecord,
    ModuleEntry,
    ModuleListRecord,
    ReadinessRecord,
    Record,
    Span,
    StackFrame,
    StackRecord,
    SymbolLineRecord,
    VerifierBannerRecord,
    VerifierStatusRecord,
)

P = "s.log"
CALLER = 0xFFFFF8074B9852F0


def span(first: int, last: int | None = None) -> Span:
    return Span(P, first, last if last is not None else first)


def banner(line: int, issue: str = "pool-type", caller: int | None = CALLER) -> VerifierBannerRecord:
    return VerifierBannerRecord(span(line, line + 4), issue, "The caller ...", caller=caller, value=0)


def bugcheck(line: int, *args: int, code: int = 0xC4, form: str = "fatal-system-error") -> BugCheckRecord:
    return BugCheckRecord(span(line, line + 1), form, code, tuple(args))


def analyze(line: int, bc: BugCheckRecord | None) -> AnalyzeRecord:
    return AnalyzeRecord(span(line, line + 40), bc, fields=(("MODULE_NAME", "IntelHaxm"),))


def stack(line: int) -> StackRecord:
    return StackRecord(span(line, line + 2), "k", (StackFrame(line + 1, "00 nt!KeBugCheckEx"),))


def crash_groups(records: Sequence[object]) -> list[CrashGroup]:
    """The groups of ``records`` (test lists mix record types, so they are typed loosely here)."""
    groups = list(correlate(cast(list[Record], records)))
    crashes = [g for g in groups if isinstance(g, CrashGroup)]
    assert crashes == groups
    return crashes


def test_banner_fatal_error_analyze_and_stack_are_one_incident() -> None:
    fatal = bugcheck(20, 0x2000, CALLER, 0, 0x484D454D)
    analyzed = analyze(40, bugcheck(48, 0x2000, CALLER, 0, 0x484D454D, form="analyze"))
    records = [
        banner(10),
        fatal,
        analyzed,
        stack(100),
        SymbolLineRecord(span(110), CALLER, "IntelHaxm", "f", 0x12),
    ]
    (group,) = crash_groups(records)
    assert group.banner is not None and group.bugchecks == (fatal,)
    assert group.analyze is analyzed and len(group.stacks) == 1 and len(group.symbol_lines) == 1
    assert group.span == Span(P, 10, 110)
    assert group.bugcheck is analyzed.bugcheck  # the most informative form


def test_a_different_bug_check_starts_a_new_incident() -> None:
    records = [bugcheck(10, 0x2000, CALLER, 0, 0), stack(20), bugcheck(50, 0x2001, CALLER, 0x40, 0)]
    first, second = crash_groups(records)
    assert first.span == Span(P, 10, 22) and second.bugchecks[0].args[0] == 0x2001


def test_same_code_but_different_arguments_is_a_new_crash() -> None:
    records = [bugcheck(10, 0x2000, CALLER, 0, 0), bugcheck(50, 0x2000, CALLER + 8, 0, 0)]
    assert len(crash_groups(records)) == 2


def test_the_bugcheck_line_repeating_the_fatal_error_joins_it() -> None:
    records = [bugcheck(10, 0x2000, CALLER, 0, 0), bugcheck(30, 0x2000, CALLER, 0, 0, form="bugcheck-line")]
    (group,) = crash_groups(records)
    assert len(group.bugchecks) == 2


def test_banner_without_bug_check_is_its_own_incident() -> None:
    """Log-only mode: banners back to back, then a crash that is about something else."""
    records = [banner(1), banner(6), bugcheck(30, 0xD1, 1, 2, 0, 3, code=0xD1)]
    first, second, third = crash_groups(records)
    assert first.banner is not None and first.bugcheck is None
    assert second.banner is not None and second.bugcheck is None
    assert third.banner is None and third.bugcheck is not None and third.bugcheck.code == 0xD1


def test_banner_with_a_different_caller_does_not_take_the_bug_check() -> None:
    records = [banner(1, caller=CALLER + 0x100), bugcheck(10, 0x2000, CALLER, 0, 0)]
    first, second = crash_groups(records)
    assert first.bugcheck is None and second.banner is None


def test_image_banner_joins_its_subcode_only() -> None:
    wx = VerifierBannerRecord(
        span(1, 5), "wx-section", "The image a.sys ...", image="a.sys", section_name="HOOK"
    )
    assert banner_agrees(wx, bugcheck(9, 0x2003, 1, 2, 3))
    assert not banner_agrees(wx, bugcheck(9, 0x2004, 1, 2, 3))
    relocs = VerifierBannerRecord(
        span(1, 5), "unsupported-relocs", "The image a.sys contains unsupported relocs"
    )
    assert banner_agrees(relocs, bugcheck(9, 0x2005, 1, 2, 3))
    iat = VerifierBannerRecord(span(1, 5), "iat", "The image a.sys contains an IAT")
    assert banner_agrees(iat, bugcheck(9, 0x2006, 1, 2, 3))


def test_follow_up_records_do_not_close_the_crash() -> None:
    lm = ModuleListRecord(span(60, 70), (ModuleEntry(61, "IntelHaxm", 1, 2),))
    status = VerifierStatusRecord(span(80, 90), "!verifier")
    records = [bugcheck(10, 0x2000, CALLER, 0, 0), lm, status, stack(100)]
    (group,) = crash_groups(records)
    assert len(group.stacks) == 1


def test_a_stack_before_any_crash_is_not_an_incident() -> None:
    assert list(correlate([stack(5)])) == []


def test_look_back_is_bounded() -> None:
    far = 10 + LOOK_BACK_LINES + 100
    (group,) = crash_groups([bugcheck(10, 0x2000, CALLER, 0, 0), stack(far)])
    assert group.stacks == ()


def test_analyze_of_the_same_crash_after_noise_joins_and_of_another_starts_new() -> None:
    records = [
        bugcheck(10, 0x50, 0xFFFF0000, 0, 1, 2, code=0x50),
        analyze(30, bugcheck(38, 0x50, 0xFFFF0000, 0, 1, 2, code=0x50, form="analyze")),
        analyze(200, bugcheck(208, 0xD1, 1, 2, 0, 3, code=0xD1, form="analyze")),
    ]
    first, second = crash_groups(records)
    assert first.analyze is not None and second.analyze is not None and second.bugchecks == ()


def test_x86_sign_extended_values_match() -> None:
    assert same_value(0xFFFFFFFF8F6C21A4, 0x8F6C21A4)
    assert not same_value(0x8F6C21A4, 0x8F6C21A5)
    assert not same_value(0x1_8F6C21A4, 0x8F6C21A4)
    a = bugcheck(1, 0x2002, 0x8F6C21A4, 0x10, 0)
    b = bugcheck(9, 0x2002, 0xFFFFFFFF8F6C21A4, 0x10, 0, form="analyze")
    assert same_bugcheck(a, b)


def test_counters_readiness_events_and_image_dumps_are_groups_of_their_own() -> None:
    sets = (
        CounterSet(None, (("Execute Pool Type Count", 3),), 12),
        CounterSet("a.sys", (("Execute Pool Type Count", 3), ("Section Alignment Failures", 0)), 20),
        CounterSet("b.sys", (("Execute Pool Type Count", 0),), 30),
    )
    status = VerifierStatusRecord(span(10, 40), "!verifier", counter_sets=sets)
    readiness = ReadinessRecord(span(50), "dg-readiness", "c.sys", "execute pool type count", 3)
    event = EventRecord(span(60), "Microsoft-Windows-CodeIntegrity", 3087, "blocked")
    image = ImageHeaderRecord(span(70, 90), "d.sys")
    groups = list(correlate([status, readiness, event, image]))
    assert [type(g) for g in groups] == [CounterGroup, ReadinessGroup, EventGroup, ImageGroup]
    counters = groups[0]
    assert isinstance(counters, CounterGroup) and counters.counter_set.module == "a.sys"
    assert counters.span.first_line == 20


def test_system_wide_counters_count_when_no_driver_is_named() -> None:
    status = VerifierStatusRecord(
        span(10, 20), "!verifier", counter_sets=(CounterSet(None, (("Execute Pool Type Count", 3),), 12),)
    )
    (group,) = list(correlate([status]))
    assert isinstance(group, CounterGroup) and group.counter_set.module is None


def test_a_banner_quoted_after_its_crash_joins_it_only_when_it_names_the_same_caller() -> None:
    crash = bugcheck(10, 0x2000, CALLER, 0, 0)
    (group,) = crash_groups([crash, stack(20), banner(60)])
    assert group.banner is not None and group.span == Span(P, 10, 64)
    first, second = crash_groups([crash, banner(60, caller=CALLER + 4)])
    assert first.banner is None and second.banner is not None and second.bugcheck is None


def test_a_late_image_banner_needs_the_analyzed_image_name() -> None:
    args = (0x2004, 1, 2, 3)
    late = VerifierBannerRecord(span(90, 94), "alignment", "The image old.sys ...", image="old.sys")
    bare = crash_groups([bugcheck(10, *args), late])
    assert len(bare) == 2
    analyzed = AnalyzeRecord(
        span(20, 60), bugcheck(28, *args, form="analyze"), fields=(("IMAGE_NAME", "old.sys"),)
    )
    (group,) = crash_groups([bugcheck(10, *args), analyzed, late])
    assert group.banner is late
