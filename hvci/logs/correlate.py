"""Correlation: group a stream of parser records into the things that happened (incident groups).

A kernel-debugger session prints one crash in pieces: the verifier banner, ``*** Fatal System Error`` and/or
``BugCheck C4, {...}``, then whatever the engineer typed (``!analyze -v``, ``k``, ``lm``, ``ln``), with
``Break instruction exception`` and reboot noise in between. This module puts the pieces of ONE crash
together and keeps different crashes apart, in input order, holding at most one open crash at a time (the
look-back is bounded by :data:`hvci.logs.options.LOOK_BACK_LINES`), so a 100 MB log streams through in
constant memory.

Rules (each is a test in ``tests/hvci/test_correlate.py``):

* a verifier banner opens a crash group; a bug check that agrees with it (0xC4, the banner's subcode, the
  banner's caller as Arg2) joins it (a banner quoted AFTER its crash, as in forum posts, joins that crash when
  it names the same caller or image); a bug check that does not agree closes the banner as an incident of
  its own (log-only mode ``/log.code_integrity`` and the print-only default action print banners without
  stopping) and opens a new group;
* bug-check records (fatal-error line, ``BugCheck`` line, ``.bugcheck``, ``!analyze``, dump header) with the
  same code and arguments belong to the same crash; a different code or different arguments start a new one;
* stacks, fault sites (``FAULTING_IP``, a ``.cxr`` register dump) and ``ln`` answers join the open crash;
  with no crash open, a ``STACK_TEXT`` or a stack through ``nt!KeBugCheckEx``, a ``FAULTING_IP`` or an
  ``ExceptionAddress`` opens one (a fragment of an analysis pasted without its bug check);
* a bug check printed in pieces (``Arg`` lines alone, a blue screen's stop code name) is made whole first
  (:mod:`hvci.logs.partial`) and then joins or opens a crash like any bug check;
* ``lm`` tables, ``!verifier`` output, readiness verdicts,
  events and image headers never close it (they are the engineer's follow-up commands);
* each driver's set of counters with a non-zero value, each readiness verdict, each event and each ``!dh``
  dump is a group of its own.

Module lists are not grouped here: the pipeline collects them for the whole input, because ``lm`` is often
typed after the crash it explains (see :mod:`hvci.logs.pipeline`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import msgspec
from msgspec.structs import replace

from hvci.knowledge import kb
from hvci.logs.options import LOOK_BACK_LINES
from hvci.logs.partial import complete
from parsers.records import (
    AnalyzeRecord,
    BugCheckRecord,
    CounterSet,
    EventRecord,
    FaultSiteRecord,
    ImageHeaderRecord,
    MemoryIntegrityRecord,
    MentionRecord,
    PartialBugCheckRecord,
    ReadinessRecord,
    Record,
    Span,
    StackRecord,
    SymbolLineRecord,
    VerifierBannerRecord,
    VerifierStatusRecord,
    WdfLogRecord,
)

#: At most this many stack listings are kept per crash (an engineer may type ``k`` many times).
MAX_STACKS = 8

#: At most this many ``ln`` answers are kept per crash.
MAX_SYMBOL_LINES = 64

_MASK64 = (1 << 64) - 1
_MASK32 = (1 << 32) - 1


#: Lines between a prose mention and the crash output it introduces (parsers.mentions looks 6 lines back;
#: an analysis's header may sit a dozen lines above the Arguments line that triggered it).
_MENTION_DISTANCE = 24


def banner_subcodes(issue: str) -> frozenset[int]:
    """The 0xC4 subcodes a verifier banner kind goes with, current and older numbering (knowledge base)."""
    return frozenset(code for f in kb.load().banner_formats if f.issue == issue for code in f.subcodes)


class CrashGroup(msgspec.Struct, frozen=True):
    """One crash (or one banner that did not stop the machine) with every record that belongs to it."""

    banner: VerifierBannerRecord | None = None
    bugchecks: tuple[BugCheckRecord, ...] = ()
    analyze: AnalyzeRecord | None = None
    stacks: tuple[StackRecord, ...] = ()
    symbol_lines: tuple[SymbolLineRecord, ...] = ()
    fault_sites: tuple[FaultSiteRecord, ...] = ()
    #: the driver the prose just before the crash's output names (the weakest blame)
    mention: MentionRecord | None = None

    @property
    def spans(self) -> tuple[Span, ...]:
        spans: list[Span] = []
        if self.banner is not None:
            spans.append(self.banner.span)
        spans.extend(b.span for b in self.bugchecks)
        if self.analyze is not None:
            spans.append(self.analyze.span)
        spans.extend(s.span for s in self.stacks)
        spans.extend(s.span for s in self.symbol_lines)
        spans.extend(s.span for s in self.fault_sites)
        return tuple(spans)

    @property
    def span(self) -> Span:
        spans = self.spans
        return Span(spans[0].path, min(s.first_line for s in spans), max(s.last_line for s in spans))

    @property
    def bugcheck(self) -> BugCheckRecord | None:
        """The most informative bug-check record: ``!analyze`` (names and argument texts) first."""
        if self.analyze is not None and self.analyze.bugcheck is not None:
            chosen = self.analyze.bugcheck
            fuller = max(self.bugchecks, key=lambda r: len(r.args), default=None)
            if fuller is not None and len(fuller.args) > len(chosen.args):
                return replace(chosen, args=fuller.args)  # a report cut short: the arguments it lost
            return chosen
        if not self.bugchecks:
            return None
        chosen = max(self.bugchecks, key=lambda r: len(r.args))  # the first of the fullest
        named = next((r.name for r in self.bugchecks if r.name), None)
        return replace(chosen, name=named) if chosen.name is None and named else chosen


class CounterGroup(msgspec.Struct, frozen=True):
    """One driver's code-integrity counters with at least one non-zero value (``!verifier``, ``/query``);
    classification makes one incident per non-zero counter."""

    status: VerifierStatusRecord
    counter_set: CounterSet
    span: Span


class ReadinessGroup(msgspec.Struct, frozen=True):
    record: ReadinessRecord

    @property
    def span(self) -> Span:
        return self.record.span


class EventGroup(msgspec.Struct, frozen=True):
    record: EventRecord

    @property
    def span(self) -> Span:
        return self.record.span


class ImageGroup(msgspec.Struct, frozen=True):
    record: ImageHeaderRecord

    @property
    def span(self) -> Span:
        return self.record.span


class NoticeGroup(msgspec.Struct, frozen=True):
    """What the input says about the machine rather than about a crash: memory integrity's state or
    Windows Security's verdict on a driver, a Driver Verifier notice."""

    record: MemoryIntegrityRecord | VerifierStatusRecord | WdfLogRecord

    @property
    def span(self) -> Span:
        return self.record.span


Group = CrashGroup | CounterGroup | ReadinessGroup | EventGroup | ImageGroup | NoticeGroup


def _narrow(value: int) -> int:
    """A 32-bit value that a debugger printed sign-extended to 64 bits, back to 32 bits."""
    if value >> 32 == _MASK32 and value & 0x8000_0000:
        return value & _MASK32
    return value


def same_value(a: int, b: int) -> bool:
    """Equal as two debugger commands print it: an x86 pointer may be sign-extended in one of them."""
    return (a & _MASK64) == (b & _MASK64) or _narrow(a) == _narrow(b)


def same_bugcheck(a: BugCheckRecord, b: BugCheckRecord) -> bool:
    """The same crash: same code and, where both printed them, the same arguments (a report cut short
    printed only the first ones)."""
    if a.code != b.code:
        return False
    return all(same_value(x, y) for x, y in zip(a.args, b.args, strict=False))


def banner_agrees(banner: VerifierBannerRecord, bugcheck: BugCheckRecord) -> bool:
    """Whether a bug check is the one the banner announced (0xC4, a matching subcode, the same caller)."""
    if bugcheck.code != kb.VERIFIER_BUGCHECK:
        return False
    if not bugcheck.args:
        return True
    subcodes = banner_subcodes(banner.issue)
    if subcodes and bugcheck.args[0] not in subcodes:
        return False
    if not subcodes and not kb.load().is_code_integrity_subcode(bugcheck.args[0]):
        return False
    if banner.caller is not None and len(bugcheck.args) > 1:
        return same_value(banner.caller, bugcheck.args[1])
    return True


class Correlator(msgspec.Struct):
    """The streaming state machine. ``feed`` each record in input order; it returns the groups that are
    complete; ``finish`` returns the rest at the end of input. ``open_group`` is the crash still collecting
    follow-up records (the TUI shows it early, see :func:`hvci.logs.pipeline.iter_incidents`)."""

    look_back_lines: int = LOOK_BACK_LINES
    open_group: CrashGroup | None = None
    _last_line: int = 0
    _mention: MentionRecord | None = None

    def feed(self, record: Record) -> list[Group]:
        done: list[Group] = []
        span = getattr(record, "span", None)
        if (
            self.open_group is not None
            and span is not None
            and span.first_line - self._last_line > self.look_back_lines
        ):
            done.append(self.open_group)
            self.open_group = None
        if isinstance(record, VerifierBannerRecord):
            if self._late_banner(record):
                return done
            done.extend(self._close())
            self._open(CrashGroup(banner=record), record.span)
        elif isinstance(record, BugCheckRecord):
            done.extend(self._bugcheck(record))
        elif isinstance(record, PartialBugCheckRecord):
            whole = complete(record)
            if whole is not None:
                done.extend(self._bugcheck(whole))
        elif isinstance(record, FaultSiteRecord):
            done.extend(self._join_fault_site(record))
        elif isinstance(record, AnalyzeRecord):
            done.extend(self._analyze(record))
        elif isinstance(record, StackRecord):
            done.extend(self._join_stack(record))
        elif isinstance(record, SymbolLineRecord):
            self._join_symbol_line(record)
        elif isinstance(record, VerifierStatusRecord):
            done.extend(counter_groups(record) if record.source != "kd-notice" else [NoticeGroup(record)])
        elif isinstance(record, MemoryIntegrityRecord | WdfLogRecord):
            done.append(NoticeGroup(record))
        elif isinstance(record, MentionRecord):
            self._mention = record  # for the crash its parser is about to report
        elif isinstance(record, ReadinessRecord):
            done.append(ReadinessGroup(record))
        elif isinstance(record, EventRecord):
            done.append(EventGroup(record))
        elif isinstance(record, ImageHeaderRecord):
            done.append(ImageGroup(record))
        return done

    def finish(self) -> list[Group]:
        return self._close()

    def _close(self) -> list[Group]:
        group, self.open_group = self.open_group, None
        return [group] if group is not None else []

    def _open(self, group: CrashGroup, span: Span) -> None:
        mention, self._mention = self._mention, None
        if mention is not None and 0 <= span.first_line - mention.span.last_line <= _MENTION_DISTANCE:
            group = replace(group, mention=mention)
        self.open_group = group
        self._last_line = span.last_line

    def _touch(self, group: CrashGroup, span: Span) -> None:
        self.open_group = group
        self._last_line = max(self._last_line, span.last_line)

    def _accepts(self, bugcheck: BugCheckRecord) -> bool:
        group = self.open_group
        if group is None:
            return False
        current = group.bugcheck
        if current is not None:
            return same_bugcheck(current, bugcheck)
        if group.banner is not None:
            return banner_agrees(group.banner, bugcheck)
        return True

    def _late_banner(self, record: VerifierBannerRecord) -> bool:
        """A banner quoted after its crash (forum posts, pasted notes): it joins the open crash only when it
        names the same violation: same subcode and the same caller, or the image ``!analyze`` blamed."""
        group = self.open_group
        bugcheck = group.bugcheck if group is not None else None
        if (
            group is None
            or group.banner is not None
            or bugcheck is None
            or not banner_agrees(record, bugcheck)
        ):
            return False
        if record.caller is None:
            image = group.analyze.field("IMAGE_NAME") if group.analyze is not None else None
            if not image or not record.image or image.strip().lower() != record.image.strip().lower():
                return False
        self._touch(replace(group, banner=record), record.span)
        return True

    def _bugcheck(self, record: BugCheckRecord) -> list[Group]:
        if self._accepts(record):
            assert self.open_group is not None
            self._touch(
                replace(self.open_group, bugchecks=(*self.open_group.bugchecks, record)),
                record.span,
            )
            return []
        done = self._close()
        self._open(CrashGroup(bugchecks=(record,)), record.span)
        return done

    def _analyze(self, record: AnalyzeRecord) -> list[Group]:
        group = self.open_group
        if record.bugcheck is None or self._accepts(record.bugcheck):
            if group is None:
                self._open(CrashGroup(analyze=record), record.span)
                return []
            if group.analyze is None or richness(record) >= richness(group.analyze):
                group = replace(group, analyze=record)
            self._touch(group, record.span)
            return []
        done = self._close()
        self._open(CrashGroup(analyze=record), record.span)
        return done

    def _join_stack(self, record: StackRecord) -> list[Group]:
        group = self.open_group
        if group is None and (record.style == "stack_text" or _through_bugcheck(record)):
            self._open(CrashGroup(stacks=(record,)), record.span)
        elif group is not None and len(group.stacks) < MAX_STACKS:
            self._touch(replace(group, stacks=(*group.stacks, record)), record.span)
        return []

    def _join_fault_site(self, record: FaultSiteRecord) -> list[Group]:
        group = self.open_group
        if group is not None and _site_conflicts(group, record):
            if record.source == "registers":
                return []
            done = self._close()
            self._open(CrashGroup(fault_sites=(record,)), record.span)
            return done
        if group is None and record.source != "registers":  # a register dump alone is any break-in
            self._open(CrashGroup(fault_sites=(record,)), record.span)
        elif group is not None and len(group.fault_sites) < MAX_STACKS:
            self._touch(replace(group, fault_sites=(*group.fault_sites, record)), record.span)
        return []

    def _join_symbol_line(self, record: SymbolLineRecord) -> None:
        group = self.open_group
        if group is not None and len(group.symbol_lines) < MAX_SYMBOL_LINES:
            self._touch(replace(group, symbol_lines=(*group.symbol_lines, record)), record.span)


def _site_conflicts(group: CrashGroup, record: FaultSiteRecord) -> bool:
    """A fault site that cannot be this crash's: the bug check names its faulting address (the parameter
    ``triage.toml`` gives, or a run-time code-integrity Arg2) and the site's address is another one."""
    bc = group.bugcheck
    if bc is None or record.address is None:
        return False
    from hvci.knowledge import triage  # msgspec structs from TOML: only once a crash has a fault site

    expected: list[int] = []
    entry = triage.load().fault_argument(bc.code, tuple(bc.args))
    if entry is not None and entry.argument - 1 not in bc.missing:
        expected.append(bc.args[entry.argument - 1])
    if bc.code == kb.VERIFIER_BUGCHECK and len(bc.args) > 1 and bc.args[0] in kb.load().caller_subcodes:
        expected.append(bc.args[1])
    return bool(expected) and not any(same_value(value, record.address) for value in expected)


def _through_bugcheck(record: StackRecord) -> bool:
    """A stack that runs through the kernel's bug check routine: the stack of a crash."""
    kernel = kb.load().kernel_images
    return any(
        (frame.function or "").startswith("KeBugCheck") and (frame.module or "").lower() in kernel
        for frame in record.frames
    )


def richness(record: AnalyzeRecord) -> tuple[int, int]:
    """How much one ``!analyze`` run of a crash tells: symbolised frames, then fields. The richer run wins,
    the later one on a tie (a rerun after fixing the symbol path names what the first run could not)."""
    frames = record.stack.frames if record.stack is not None else ()
    return sum(frame.function is not None for frame in frames), len(record.fields)


def counter_groups(status: VerifierStatusRecord) -> list[Group]:
    """One group per driver with a non-zero counter. A system-wide set (no module) only counts when no
    per-driver set was printed, so the same violations are not reported twice."""
    per_driver = [s for s in status.counter_sets if s.module is not None]
    groups: list[Group] = []
    for counter_set in per_driver or status.counter_sets:
        if any(value > 0 for _, value in counter_set.counters):
            last = max(
                counter_set.line, min(counter_set.line + len(counter_set.counters), status.span.last_line)
            )
            groups.append(CounterGroup(status, counter_set, Span(status.span.path, counter_set.line, last)))
    return groups


def correlate(records: Iterable[Record], *, look_back_lines: int = LOOK_BACK_LINES) -> Iterator[Group]:
    """All groups of a record stream, in the order they complete."""
    correlator = Correlator(look_back_lines=look_back_lines)
    for record in records:
        yield from correlator.feed(record)
    yield from correlator.finish()
