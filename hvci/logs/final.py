"""One input's final incidents, in report order, handed out as soon as they can no longer change.

:func:`hvci.logs.pipeline.analyze_inputs` keeps every incident of an input until its end, because a later
``lm``, ``ln`` or the final pass may still re-emit any of them; a log of 277,000 verifier banners then holds
277,000 incidents at once. Only the crash and counter groups the pipeline keeps for enrichment (at most
:data:`~hvci.logs.pipeline.MAX_ENRICHABLE` of each) and the crash the correlator still holds open can
change, so :class:`FinalIncidents` writes out everything that starts before the earliest of them, in the
order ``analyze_inputs`` reports (line order, then order of first appearance), and keeps only the window:
the same incidents, the same versions, the same order, with memory that does not grow with the input.
The window holds each incident as a pickle (:class:`~hvci.logs.kept.Packer`): a log whose crashes all stay
kept holds them all until its end, a kilobyte or two each instead of several of Python objects, and beyond
the packer's memory budget compressed in a temporary file.

The cut relies on records arriving in line order (a record never starts before one already read; checked on
every sample and every real-world log). Should a parser ever break that, the stream notices and keeps the
rest of the input until its end instead of writing anything out of order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from hvci.logs.account import input_info, read_error
from hvci.logs.options import AnalyzeOptions
from parsers.records import Diagnostic, InputInfo
from parsers.stream import Input, iter_records

if TYPE_CHECKING:
    from hvci.logs.pipeline import _InputRun
    from hvci.model import Incident
    from symbols.modules import ModuleMap
    from symbols.resolve import SymbolResolver

#: Incidents gathered between two looks at what can be written out (a look costs one pass over the window).
SETTLE_EVERY = 2048


class FinalIncidents:
    """Iterate for the final incidents of ``inp`` in report order; :attr:`info` is the input's account
    (lines, format, diagnostics, a read error that cut it short) once the iteration is over."""

    def __init__(
        self,
        inp: Input,
        options: AnalyzeOptions,
        user_modules: ModuleMap | None = None,
        resolver: SymbolResolver | None = None,
    ) -> None:
        self._input = inp
        self._options = options
        self._shared = (user_modules, resolver)
        self._run: _InputRun | None = None  # made by the first record (:meth:`_started`)
        #: id -> (first line, the packer's ticket of the latest version), in order of first appearance
        self._pending: dict[str, tuple[int, int]] = {}
        self.info: InputInfo | None = None

    def _started(self) -> _InputRun:
        """The pipeline's state for the input, made when its first record comes: an input without one (a
        short or noise-only log) gives no incident, and its run imports neither the correlator nor the
        classifiers."""
        if self._run is None:
            from hvci.logs.pipeline import _InputRun

            user_modules, resolver = self._shared
            if user_modules is None:  # one input on its own; a run of several shares them
                user_modules, resolver = self._options.user_modules(), self._options.resolver()
            self._run = _InputRun(self._input.path, self._options, user_modules, resolver)
        return self._run

    def __iter__(self) -> Iterator[Incident]:
        try:
            yield from self._incidents()
        finally:
            if self._run is not None:
                self._run.packer.close()

    def _incidents(self) -> Iterator[Incident]:
        pending = self._pending
        extra: list[Diagnostic] = []
        in_order = True
        last_line = 0
        next_look = SETTLE_EVERY
        try:
            for record in iter_records(self._input):
                run = self._started()
                for incident in run.feed(record):
                    self._hold(incident)
                if isinstance(record, Diagnostic):  # a parser's note: it starts no group
                    continue
                line = record.span.first_line
                in_order = in_order and line >= last_line
                last_line = max(last_line, line)
                if in_order and len(pending) >= next_look:
                    yield from self._settled(line)
                    next_look = len(pending) + SETTLE_EVERY
        except OSError as error:
            extra.append(read_error(self._input, error))
        if self._run is not None:
            for incident in self._run.finish():
                self._hold(incident)
        self.info = input_info(self._input, extra)
        yield from self._take(sorted(pending, key=lambda ident: pending[ident][0]))

    def _hold(self, incident: Incident) -> None:
        """Keep the latest version of an incident (the one it replaces goes)."""
        packer = self._started().packer
        replaced = self._pending.get(incident.id)
        if replaced is not None:
            packer.drop(replaced[1])
        self._pending[incident.id] = (incident.source.first_line, packer.pack(incident))

    def _settled(self, line: int) -> Iterator[Incident]:
        """Every pending incident that starts before anything that may still change or appear: the kept
        groups' incidents (re-emitted by an ``lm``, an ``ln`` or the final pass), the crash still open and
        the records still to come (which start at ``line`` or later). The pipeline forgets the id counters
        of the lines before that, too."""
        run = self._started()
        bound = line
        for tracked in (*run.tracked, *run.counter_groups):
            bound = min(bound, tracked.first_line)  # its id's line, its incidents' lines
        open_group = run.correlator.open_group
        if open_group is not None:
            bound = min(bound, open_group.span.first_line)
        run.forget_ids_before(bound)
        pending = self._pending
        ready = [ident for ident, (first_line, _) in pending.items() if first_line < bound]
        ready.sort(key=lambda ident: pending[ident][0])  # stable: on one line, the order of first appearance
        yield from self._take(ready)

    def _take(self, ids: list[str]) -> Iterator[Incident]:
        if not ids:
            return
        packer = self._started().packer
        for ident in ids:
            ticket = self._pending.pop(ident)[1]
            incident: Incident = packer.unpack(ticket)
            packer.drop(ticket)
            yield incident
