"""The analysis pipeline: inputs -> records -> incident groups -> classified incidents -> a report.

One engine serves batch and live use:

* :func:`iter_incidents` streams one input and yields each incident as soon as its group is complete (a new
  crash starts, the look-back window passes, the input ends, or, when following a live log, the input goes
  quiet for :attr:`AnalyzeOptions.idle_seconds`), so the TUI shows the first finding while a 100 MB log is
  still loading.
* A module list (``lm``) or an ``ln`` answer often comes AFTER the crash it explains. Incidents are therefore
  emitted with what is known at that moment and **re-emitted with the same ``id``** when later input
  enriches them (a module list that resolves the caller, a late ``ln``, counters for the same driver, and a
  final pass at the end of the input). Consumers keep the latest version per ``id``; the order of first
  appearance is the order of the report.
* :func:`analyze_inputs` runs that stream for each input and keeps the last version of each incident, so a
  batch report is exactly the final state of the stream.

Incident ids are ``path:first_line``; when one record yields several incidents (several
non-zero counters of one driver, several failing image rules of one ``!dh`` dump), the second and later get
``#2``, ``#3`` ... appended.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

import msgspec

from hvci.knowledge import kb
from hvci.logs.account import input_info, read_error
from hvci.logs.awaiting import Awaiting, enrichable
from hvci.logs.correlate import Correlator, CounterGroup, CrashGroup, Group
from hvci.logs.kept import Packer, Tracked
from hvci.logs.options import AnalyzeOptions as AnalyzeOptions  # its home before hvci.logs.options
from hvci.model import Incident, Report
from parsers.records import (
    AnalyzeRecord,
    Diagnostic,
    EventRecord,
    InputInfo,
    MemoryIntegrityRecord,
    MemoryStringRecord,
    ModuleListRecord,
    ReadinessRecord,
    Record,
    SymbolLineRecord,
    VerifierBannerRecord,
    VerifierStatusRecord,
)
from parsers.stream import Input, iter_records, open_input
from symbols.modules import ModuleMap, normalize_name

if TYPE_CHECKING:
    from hvci.logs.classify import Context
    from symbols.resolve import SymbolResolver

_R = TypeVar("_R", SymbolLineRecord, MemoryStringRecord)

#: Crash groups kept for re-classification when a later module list or ``ln`` arrives; older ones keep
#: the verdict they had (this bounds memory on huge logs).
MAX_ENRICHABLE = 4096


class _InputRun(msgspec.Struct):
    """The state of one input while it streams: the correlator, everything learnt for the whole input
    (module lists, ``ln`` answers, counters), and the groups that may still be enriched."""

    path: str
    options: AnalyzeOptions
    user_modules: ModuleMap
    resolver: SymbolResolver | None
    correlator: Correlator = msgspec.field(default_factory=Correlator)  # looking back as the options say
    # every module list and every !analyze so far, merged as they come: a log of N sessions, each with its
    # own lm, costs N merges of a map the size of one session's (dedupe keeps one entry per module name)
    lm_map: ModuleMap = msgspec.field(default_factory=ModuleMap)
    analyze_map: ModuleMap = msgspec.field(default_factory=ModuleMap)
    symbol_lines: dict[int, SymbolLineRecord] = msgspec.field(default_factory=dict)
    strings: dict[int, MemoryStringRecord] = msgspec.field(default_factory=dict)
    counters: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)
    image_names: dict[str, str] = msgspec.field(default_factory=dict)
    tracked: list[Tracked] = msgspec.field(default_factory=list)
    awaiting: Awaiting = msgspec.field(default_factory=Awaiting)
    crashes_kept: int = 0  # numbers the kept crash groups (their seq)
    counter_groups: list[Tracked] = msgspec.field(default_factory=list)
    violations: dict[tuple[str, str], list[str]] = msgspec.field(default_factory=dict)
    ids_given: dict[str, int] = msgspec.field(default_factory=dict)  # base id -> ids handed out on that line
    verified_drivers: list[str] = msgspec.field(default_factory=list)
    memory_integrity: list[MemoryIntegrityRecord] = msgspec.field(default_factory=list)
    #: how often what a crash's classification reads (everything above but the counters' violations) has
    #: changed: the final pass skips a crash classified since the last change, with the same result
    learned: int = 0
    #: the kept groups' (and :mod:`hvci.logs.final`'s window)
    packer: Packer = msgspec.field(default_factory=Packer)
    _context: Context | None = None
    _open: Tracked | None = None

    def __post_init__(self) -> None:
        self.correlator.look_back_lines = self.options.look_back_lines

    # ----------------------------------------------------------------------------------------- context

    def context(self) -> Context:
        """What the whole input has taught so far. The mappings are the live ones (classification runs in
        this thread), so only a new module list or ``!analyze`` makes a new context."""
        if self._context is None:
            from hvci.logs.classify import Context  # with classify: only an input that has a group

            modules = self.user_modules.merged(self.lm_map, self.analyze_map)
            self._context = Context(
                modules=modules,
                symbol_lines=self.symbol_lines,
                strings=self.strings,
                counters=self.counters,
                resolver=self.resolver,
                image_names=self.image_names,
                violations=self.violations,
                verified_drivers=self.verified_drivers,
                memory_integrity=self.memory_integrity,
            )
        return self._context

    def _note_violations(self, before: Sequence[Incident], after: Sequence[Incident]) -> None:
        """Keep the (driver, category) -> banner/bug check ids index the counters point at up to date."""
        for incidents, add in ((before, False), (after, True)):
            for incident in incidents:
                if not (incident.driver and incident.category):
                    continue
                key = (normalize_name(incident.driver), incident.category)
                ids = self.violations.setdefault(key, [])
                if add:
                    ids.append(incident.id)
                elif incident.id in ids:
                    ids.remove(incident.id)

    def _name(self, module: str | None, image: str | None) -> None:
        """Remember an image file name (``X.sys``) for a module the input also names without extension."""
        if image and normalize_name(image) != image.strip().lower():
            key = normalize_name(module or image)
            if key not in self.image_names:
                self.image_names[key] = image.strip()
                self.learned += 1

    def _merged(self, known: ModuleMap, new: ModuleMap) -> ModuleMap:
        merged = known.merged(new)
        if merged.modules != known.modules:
            self.learned += 1
            self._context = None
        return merged

    def _learn(self, record: Record) -> bool:
        """Take what the whole input should know from a record; True when it may resolve earlier callers
        (a module list or an ``ln``; counters are brought in by the final pass)."""
        if isinstance(record, ModuleListRecord):
            self.lm_map = self._merged(self.lm_map, ModuleMap.from_entries(record.modules))
            for entry in record.modules:
                self._name(entry.name, entry.image_name)
        elif isinstance(record, AnalyzeRecord):
            frames = record.stack.frames if record.stack is not None else ()
            self.analyze_map = self._merged(self.analyze_map, ModuleMap.from_analyze(record.fields, frames))
            self._name(record.field("MODULE_NAME"), record.field("IMAGE_NAME"))
        elif isinstance(record, SymbolLineRecord) and record.address is not None:
            self._remember(self.symbol_lines, record.address, record)
        elif isinstance(record, MemoryStringRecord):
            self._remember(self.strings, record.address, record)
        elif isinstance(record, MemoryIntegrityRecord):
            self.memory_integrity.append(record)
            self.learned += 1
            return False
        elif isinstance(record, EventRecord):
            self._learn_event(record)
            return False
        elif isinstance(record, VerifierStatusRecord):
            for driver in record.drivers:
                if driver.lower() not in (known.lower() for known in self.verified_drivers):
                    self.verified_drivers.append(driver)
                    self.learned += 1
            for counter_set in record.counter_sets:
                if counter_set.module is None:
                    continue
                self._name(None, counter_set.module)
                known = self.counters.setdefault(counter_set.module.lower(), {})
                for label, value in counter_set.counters:
                    if label not in known or value > known[label]:
                        known[label] = max(value, known.get(label, 0))
                        self.learned += 1
        elif isinstance(record, VerifierBannerRecord | ReadinessRecord):
            self._name(None, record.image if isinstance(record, VerifierBannerRecord) else record.module)
            return False
        else:
            return False
        return isinstance(record, ModuleListRecord | SymbolLineRecord | MemoryStringRecord)

    def _learn_event(self, record: EventRecord) -> None:
        """A CodeIntegrity event that only memory integrity raises (a driver blocked as incompatible with
        it: the knowledge base's ``hvci-driver-block`` events) says memory integrity was running."""
        info = kb.load().event(record.event_id)
        blocks = info is not None and info.category == "hvci-driver-block"
        if not blocks or "codeintegrity" not in record.provider.lower():
            return
        fact = f"event {record.event_id}: {' '.join(record.message.split())[:160]}"
        self.memory_integrity.append(MemoryIntegrityRecord(record.span, "CodeIntegrity event", True, fact))
        self.learned += 1

    def _remember(self, known: dict[int, _R], address: int, record: _R) -> None:
        """The first record printed for an address is the one used (``setdefault``)."""
        if address not in known:
            known[address] = record
            self.learned += 1

    # -------------------------------------------------------------------------------------- incidents

    def _incidents(self, tracked: Tracked) -> list[Incident]:
        """Classify a group and return the incidents that are new or changed since last emitted."""
        from hvci.logs.classify import classify  # the classifiers and their tables: only inputs with groups

        group, before = tracked.unpacked()
        classified = classify(group, self.context())
        tracked.learned = self.learned
        while len(tracked.ids) < len(classified):
            tracked.ids.append(self._next_id(tracked.base_id))
        ids = tracked.ids[: len(classified)]
        fresh = tuple(
            msgspec.structs.replace(incident, id=ident)
            for incident, ident in zip(classified, ids, strict=True)
        )
        previous = {i.id: i for i in before}
        tracked.store(group, fresh)
        if tracked.seq:
            self.awaiting.update(tracked)
        changed = [incident for incident in fresh if previous.get(incident.id) != incident]
        if changed and isinstance(group, CrashGroup):
            self._note_violations(tuple(previous.values()), fresh)
        return changed

    def _next_id(self, base: str) -> str:
        """``path:line``, then ``path:line#2``, ``#3`` ...: unique even when several groups start on one line
        (a session file's record holds a whole command's output on one line)."""
        given = self.ids_given.get(base, 0) + 1
        self.ids_given[base] = given
        return base if given == 1 else f"{base}#{given}"

    def forget_ids_before(self, line: int) -> None:
        """Drop the id counters of lines before ``line`` once no group can start there any more (the caller
        knows: :mod:`hvci.logs.final`), so that a long input does not keep one per incident. Counters are
        dropped oldest first and only up to the first line at or after ``line``."""
        given = self.ids_given
        while given:
            base = next(iter(given))
            if int(base.rpartition(":")[2]) >= line:
                return
            del given[base]

    def _track(self, group: Group) -> Tracked:
        span = group.span
        tracked = Tracked(group, f"{span.path}:{span.first_line}")
        if isinstance(group, CrashGroup | CounterGroup):
            kept = self.tracked if isinstance(group, CrashGroup) else self.counter_groups
            if kept is self.tracked:
                self.crashes_kept += 1
                tracked.seq = self.crashes_kept
            kept.append(tracked)
            tracked.packer = self.packer
            if len(kept) > MAX_ENRICHABLE:
                evicted = kept.pop(0)
                self.awaiting.drop(evicted.seq)
                evicted.seq = 0
                if evicted is not tracked and evicted is not self._open:  # (only ever with no room at all)
                    evicted.release()
        return tracked

    def _complete(self, group: Group) -> list[Incident]:
        if (
            isinstance(group, CrashGroup)
            and self._open is not None
            and isinstance(self._open.group, CrashGroup)
            and _first(self._open.group) == _first(group)
        ):
            tracked = self._open
            tracked.store(group, tracked.incidents)
            self._open = None
        else:
            tracked = self._track(group)
        return self._incidents(tracked)

    def feed(self, record: Record) -> list[Incident]:
        out: list[Incident] = []
        enrich = self._learn(record)
        for group in self.correlator.feed(record):
            out.extend(self._complete(group))
        if enrich:
            for tracked in self.awaiting.for_record(record):
                if enrichable(tracked, record):
                    out.extend(self._incidents(tracked))
        return out

    def idle(self) -> list[Incident]:
        """The open crash, shown early while a followed log is quiet (it may still grow)."""
        group = self.correlator.open_group
        if group is None:
            return []
        current = self._open
        if (
            current is None
            or not isinstance(current.group, CrashGroup)
            or _first(current.group) != _first(group)
        ):
            current = self._open = self._track(group)
        current.store(group, current.incidents)
        return self._incidents(current)

    def finish(self) -> Iterator[Incident]:
        """The last groups and the final pass, crash by crash (thousands of kept crashes are classified
        again here: their incidents are handed on as they come, never all held at once)."""
        for group in self.correlator.finish():
            yield from self._complete(group)
        for tracked in self.tracked:
            if tracked.learned != self.learned:  # else classifying it again gives what it gave
                yield from self._incidents(tracked)
        for tracked in self.counter_groups:  # after the crashes: they point at them
            yield from self._incidents(tracked)


def _first(group: CrashGroup) -> tuple[str, int]:
    """A crash group's identity while it grows: where it starts (later records only add later lines)."""
    span = group.span
    return span.path, span.first_line


def _followed(
    inp: Input, run: _InputRun, stop: threading.Event | None, idle_seconds: float
) -> Iterator[Incident]:
    """Follow mode: records come from a reader thread so that a quiet log still shows its open crash."""
    import queue  # follow mode only

    records: queue.Queue[Record | BaseException | None] = queue.Queue(maxsize=10_000)
    stopper = stop or threading.Event()

    def reader() -> None:
        try:
            for record in iter_records(inp, follow=True, stop=stopper):
                records.put(record)
        except BaseException as error:  # handed to the consumer thread, which re-raises it
            records.put(error)
        records.put(None)

    thread = threading.Thread(target=reader, name=f"hvci-follow:{inp.path}", daemon=True)
    thread.start()
    shown_idle = False
    while True:
        try:
            item = records.get(timeout=idle_seconds)
        except queue.Empty:
            if not shown_idle:
                yield from run.idle()
                shown_idle = True
            if stopper.is_set() and not thread.is_alive():
                break
            continue
        if item is None:
            break
        if isinstance(item, BaseException):
            raise item
        shown_idle = False
        yield from run.feed(item)


def iter_incidents(
    inp: Input,
    options: AnalyzeOptions | None = None,
    *,
    follow: bool = False,
    stop: threading.Event | None = None,
) -> Iterator[Incident]:
    """Incidents of one input as they complete; an ``id`` seen before is an enriched version of that
    incident and replaces it (see the module docstring). With ``follow=True`` keeps tailing the input until
    ``stop`` is set."""
    options = options or AnalyzeOptions()
    run = _InputRun(inp.path, options, options.user_modules(), options.resolver())
    try:
        yield from _run(inp, run, follow=follow, stop=stop)
    finally:
        run.packer.close()


def _run(inp: Input, run: _InputRun, *, follow: bool, stop: threading.Event | None) -> Iterator[Incident]:
    if follow:
        yield from _followed(inp, run, stop, run.options.idle_seconds)
    else:
        for record in iter_records(inp, stop=stop):
            yield from run.feed(record)
    yield from run.finish()


def analyze_inputs(
    inputs: Sequence[Input],
    options: AnalyzeOptions | None = None,
    *,
    progress: Callable[[int, Input], None] | None = None,
) -> Report:
    """Analyse every input to its end and report the final version of every incident, input by input and
    in line order within an input. A read error part-way through becomes an ``error`` diagnostic of that input
    (the report is then ``incomplete``); the other inputs are still analysed. ``progress(n, input)`` is
    called as the n-th input (from 1) starts."""
    options = options or AnalyzeOptions()
    user_modules = options.user_modules()
    resolver = options.resolver()
    incidents: dict[str, Incident] = {}
    infos: list[InputInfo] = []
    paths = {inp.path: n for n, inp in enumerate(inputs)}
    for number, inp in enumerate(inputs, 1):
        if progress is not None:
            progress(number, inp)
        run = _InputRun(inp.path, options, user_modules, resolver)
        extra: list[Diagnostic] = []
        try:
            for incident in _run(inp, run, follow=False, stop=None):
                incidents[incident.id] = incident
        except OSError as error:
            extra.append(read_error(inp, error))
            for incident in run.finish():
                incidents[incident.id] = incident
        finally:
            run.packer.close()
        infos.append(input_info(inp, extra))
    ordered = sorted(incidents.values(), key=lambda i: (paths.get(i.source.path, 0), i.source.first_line))
    return Report(inputs=tuple(infos), incidents=tuple(ordered))


def analyze_text(text: str, name: str = "<paste>", options: AnalyzeOptions | None = None) -> Report:
    """Analyse pasted text (the TUI's paste view, tests). A lone surrogate (what a terminal can hand over
    from a cut emoji) is passed on as the bytes it stands for, and the reader decodes those as it decodes
    any file's bytes, instead of the encoder raising."""
    data = text.encode("utf-8", errors="surrogatepass")
    return analyze_inputs([open_input(None, data=data, name=name)], options)
