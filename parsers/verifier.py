"""Driver Verifier status: ``!verifier`` in the debugger and ``verifier /query`` on the command line.

Three layouts are read into one :class:`VerifierStatusRecord`:

- the modern debugger layout (``Verify Flags Level 0x...``, ``[X] (0x...) name`` flag lines, ``Summary of All
  Verifier Statistics``, ``nt!_VF_TARGET_DRIVER 0x...: name.sys`` per-driver sections);
- the Windows 7 debugger layout (``Verify Level 9bb ... enabled options are:`` with option names only,
  ``Driver Verification List`` and the ``Entry State NonPagedPool PagedPool Module`` table);
- ``verifier /query`` (``Module: X.sys (...)`` sections, ``Code Integrity Statistics:`` with
  ``execute pool type count: N`` lines, ``No drivers are currently verified.``).

The seven code-integrity counters are what matters for HVCI. Where they sit is not documented, so they are
accepted anywhere in the block (or alone, as pasted from the DG Readiness documentation) and attributed to the
driver section they appear under, or to the whole system when no driver is named. The Windows 7 layout prints
option names without bits; they are paired with the set bits of the level, lowest bit first, only when the
counts agree (the debugger walks the bits in that order), otherwise the names are reported in a diagnostic.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from parsers.base import Line, LineCursor, read_block
from parsers.deferred import deferred_compile
from parsers.records import CounterSet, Diagnostic, Record, Span, VerifierStatusRecord

_COUNTER_LABELS = (
    "Execute Pool Type Count",
    "Execute Page Protection Count",
    "Execute Page Mapping Count",
    "Execute-Write Section Count",
    "Section Alignment Failures",
    "Unsupported Relocs Count",
    "IAT in Executable Section Count",
)
_LABEL_ALTERNATION = "|".join(re.escape(label).replace(r"\ ", r"\s+") for label in _COUNTER_LABELS)
_COUNTER = deferred_compile(
    rf"^\s*(?P<label>{_LABEL_ALTERNATION})\s*:?\s*(?P<value>0x[0-9a-fA-F]+|\d+)\b", re.IGNORECASE
)

_MODERN_LEVEL = deferred_compile(r"^\s*Verify Flags Level\s+(?:0x)?(?P<flags>[0-9a-fA-F]+)\b")
_WIN7_LEVEL = deferred_compile(r"^\s*Verify Level\s+(?P<flags>[0-9a-fA-F]+)\b")
_QUERY_LEVEL = deferred_compile(
    r"^\s*(?:Verifier Flags|Level)\s*:\s*(?:0x)?(?P<flags>[0-9a-fA-F]+)\s*$", re.IGNORECASE
)
_FLAG = deferred_compile(r"^\s*\[(?P<on>[ xX])\]\s*\(?0x(?P<bit>[0-9a-fA-F]+)\)?\s+(?P<name>\S.*)$")
_HEADING = deferred_compile(
    r"^\s*(?:(?:STANDARD|ADDITIONAL|RESERVED|INTERNAL) FLAGS|(?:Standard|Additional|Reserved|Internal) Flags"
    r"|Summary of All Verifier Statistics|Driver Verification List|Verified [Dd]rivers\s*:|-{3,}"
    r"|Entry\s+State\s+NonPagedPool\s+PagedPool\s+Module|\[X\] Indicates flag is enabled"
    r"|Code Integrity Statistics\s*:|Pool Allocation Statistics|Pool Allocations\s*:)",
    re.IGNORECASE,
)
_CI_HEADING = deferred_compile(r"^\s*Code Integrity Statistics\s*:", re.IGNORECASE)
_STAT = deferred_compile(
    r"^\s*[A-Za-z][\w /()\-.,]*?(?:\s*:\s*|\s{2,}|\s+(?=0x))\(?\s*(?:0x[0-9a-fA-F]+|\d+)\b"
)
_VF_TARGET = deferred_compile(r"^\s*nt!_VF_TARGET_DRIVER\s+(?:0x)?[0-9a-fA-F`]+\s*:\s*(?P<name>[^\s(]+)")
_WIN7_ROW = deferred_compile(
    r"^\s*[0-9a-fA-F`]{8,17}\s+(?:Loaded|Unloaded|[A-Za-z]+)\s+[0-9a-fA-F]+\s+[0-9a-fA-F]+\s+(?P<name>\S+)\s*$"
)
_QUERY_MODULE = deferred_compile(r"^\s*(?:Module|Name)\s*:\s*(?P<name>[^\s(,]+)\s*[(,]", re.IGNORECASE)
_NO_DRIVERS = deferred_compile(r"No drivers are currently verified", re.IGNORECASE)
_WIN7_OPTIONS = deferred_compile(r"enabled options are\s*:", re.IGNORECASE)
_QUERY_DATE = deferred_compile(r"^\s*\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4},?\s+\d{1,2}:\d{2}")

_MAX_BLOCK_LINES = 200_000
_MAX_LINE = 8_192  # longer lines are not verifier output (and would make the loose patterns slow)


@dataclass
class _State:
    """What has been read so far in one block."""

    source: str
    flags: int | None = None
    enabled: list[tuple[int, str]] = field(default_factory=list)
    win7_options: list[str] = field(default_factory=list)
    reading_win7_options: bool = False
    drivers: list[str] = field(default_factory=list)
    module: str | None = None
    counters: list[tuple[str, int]] = field(default_factory=list)
    counter_module: str | None = None
    counter_line: int = 0
    counter_sets: list[CounterSet] = field(default_factory=list)
    no_drivers: bool = False

    def add_driver(self, name: str) -> None:
        self.module = name
        if name not in self.drivers:
            self.drivers.append(name)

    def flush_counters(self) -> None:
        if self.counters:
            self.counter_sets.append(CounterSet(self.counter_module, tuple(self.counters), self.counter_line))
        self.counters = []

    def add_counter(self, label: str, value: int, line: int) -> None:
        seen = {" ".join(existing.lower().split()) for existing, _ in self.counters}
        if self.counters and (" ".join(label.lower().split()) in seen or self.counter_module != self.module):
            self.flush_counters()
        if not self.counters:
            self.counter_module = self.module
            self.counter_line = line
        self.counters.append((label, value))


def _number(text: str) -> int:
    return int(text, 16) if text.lower().startswith("0x") else int(text)


class VerifierParser:
    """Reads one ``!verifier`` / ``verifier /query`` block, or a lone code-integrity counters block."""

    name = "verifier"
    trigger = (
        r"(?i)^\s*(?:Verify Flags Level\s|Verify Level\s+[0-9a-f]+\b|Verifier Flags\s*:"
        r"|Level:\s+[0-9a-f]{8}\s*$|Code Integrity Statistics\s*:|Module:\s+\S+\s+\(|"
        r"No drivers are currently verified|" + _LABEL_ALTERNATION + r")"
    )

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        if len(first.text) > _MAX_LINE:
            yield Diagnostic(
                Span(cursor.path, first.number, first.number),
                f"{self.name}: {len(first.text)}-character line is too long for this block; skipped",
            )
            return
        text = first.text
        # verifier /query prints its counters in lower case; the debugger capitalises them.
        debugger = _COUNTER.match(text) and not text.strip()[:1].islower()
        source = (
            "!verifier"
            if _MODERN_LEVEL.match(text) or _WIN7_LEVEL.match(text) or debugger
            else "verifier-query"
        )
        state = _State(source)
        self._take(state, first)

        def on_blank() -> None:
            state.reading_win7_options = False
            state.flush_counters()

        end = read_block(
            cursor,
            first,
            lambda line, _after_blank: self._take(state, line),
            limit=_MAX_BLOCK_LINES,
            on_blank=on_blank,
        )
        last = end.last_line
        if end.cut:
            yield Diagnostic(
                Span(cursor.path, first.number, last),
                "verifier: block longer than the block limit; the rest is read as separate input",
            )
        state.flush_counters()
        yield from self._records(state, Span(cursor.path, first.number, last))

    def _take(self, state: _State, line: Line) -> bool:
        """Fold one non-blank line into ``state``; ``False`` when the line is not part of the block."""
        text = line.text.rstrip()
        if len(text) > _MAX_LINE:
            return False
        counter = _COUNTER.match(text)
        if counter:
            state.add_counter(
                " ".join(counter.group("label").split()), _number(counter.group("value")), line.number
            )
            return True
        if not _CI_HEADING.match(text):
            state.flush_counters()
        level = _MODERN_LEVEL.match(text) or _WIN7_LEVEL.match(text) or _QUERY_LEVEL.match(text)
        if level:
            state.flags = int(level.group("flags"), 16)
            state.reading_win7_options = bool(_WIN7_OPTIONS.search(text))
            return True
        flag = _FLAG.match(text)
        if flag:
            if flag.group("on") in "xX":
                state.enabled.append((int(flag.group("bit"), 16), flag.group("name").strip()))
            return True
        target = _VF_TARGET.match(text) or _WIN7_ROW.match(text) or _QUERY_MODULE.match(text)
        if target:
            state.add_driver(target.group("name"))
            return True
        if _NO_DRIVERS.search(text):
            state.no_drivers = True
            return True
        if state.reading_win7_options and text[:1] in (" ", "\t"):
            state.win7_options.append(text.strip())
            return True
        return bool(
            _HEADING.match(text) or _STAT.match(text) or _QUERY_DATE.match(text) or text[:1] in (" ", "\t")
        )

    def _records(self, state: _State, span: Span) -> Iterator[Record]:
        enabled = list(state.enabled)
        if state.win7_options and state.flags is not None:
            bits = [1 << i for i in range(state.flags.bit_length()) if state.flags >> i & 1]
            if len(bits) == len(state.win7_options):
                enabled.extend(zip(bits, state.win7_options, strict=True))
            else:
                yield Diagnostic(
                    span,
                    f"verifier: {len(state.win7_options)} enabled option names for {len(bits)} set bits in "
                    f"level {state.flags:#x}; options not paired with bits: {'; '.join(state.win7_options)}",
                    "info",
                )
        if (
            state.flags is None
            and not enabled
            and not state.drivers
            and not state.counter_sets
            and not state.no_drivers
        ):
            yield Diagnostic(span, "verifier: status block without flags, drivers or counters")
            return
        yield VerifierStatusRecord(
            span=span,
            source=state.source,
            flags=state.flags,
            enabled_flags=tuple(enabled),
            drivers=tuple(state.drivers),
            counter_sets=tuple(state.counter_sets),
        )


PARSER = VerifierParser()
