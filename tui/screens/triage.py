"""The main triage screen: the findings list, the selected finding in detail, and the raw evidence.

Inputs load in thread workers (see :mod:`tui.loading`); a new finding wakes the screen at once (one message
however many arrive before it is handled) and a timer takes in the progress and the text a few times a
second, so the first findings appear while a large file is still being read and the keyboard never waits
for the engine. Once every input is read and shown, the timer stops until another is opened.
"""

from __future__ import annotations

import time
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Header, Input, Static, TabbedContent, TabPane

from hvci.findings import Finding, group_findings
from hvci.model import Incident
from tui.loading import Feed, Load, Source
from tui.screens.bindings import MAIN_BINDINGS
from tui.screens.layout import PaneLayout
from tui.settings import ViewSettings
from tui.status import counts_text, empty_text, loads_text
from tui.widgets.detail_pane import DetailPane, warm_up_detail
from tui.widgets.evidence_log import EvidenceLog
from tui.widgets.findings_table import GROUP_KEYS, SORT_KEYS, Filter, FindingsTable
from tui.widgets.follow_badge import FollowBadge
from tui.widgets.key_hints import KeyHints, hints

#: How often the screen takes in the loaders' progress and text (seconds). New findings do not wait for it:
#: the loaders wake the screen (:meth:`TriageScreen.on_triage_screen_load_changed`). Each tick repaints the
#: status line, which a key arriving meanwhile waits behind.
POLL_INTERVAL = 0.25
#: New findings are taken in at most this often (seconds; the first at once).
WAKE_INTERVAL = 0.1
#: A full re-sort of the table is done at most this often while loading (seconds).
RESORT_INTERVAL = 0.5
#: The view counts as up this long after it mounted (seconds), should no finding be drawn before and the
#: analysis not be over: see :meth:`TriageScreen._view_is_up`.
START_UP_LIMIT = 0.5


class TriageScreen(PaneLayout, Screen[None]):
    """Findings on top (or left), detail and evidence below (or right)."""

    BINDINGS: ClassVar[list[BindingType]] = MAIN_BINDINGS

    class LoadChanged(Message):
        """A loader found something (posted from its thread, at most one waiting at a time)."""

    def __init__(
        self,
        feed: Feed,
        sources: list[Source],
        *,
        follow: bool = False,
        settings: ViewSettings | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings or ViewSettings()
        self.feed = feed
        self.follow = follow
        self.loads: list[Load] = []
        self._wake_pending = False
        self._woken_at = float("-inf")  # the first news is taken in at once, however early it comes
        self._up = False
        self._mounted = False
        self._pending_loads = [self._new_load(source) for source in sources]  # started before the view is up
        self._seen: dict[int, int] = {}
        self._last_resort = 0.0
        self._dirty = False
        self._timer: Timer | None = None
        self._shown_load: Load | None = None
        self._current: Incident | None = None
        self._detail_needs_lines = 0
        self._status = Text()
        self._counts = Text()
        self._select_from: Load | None = None
        self.findings: dict[str, Finding] = {}
        self._empty_for: tuple[object, ...] = ()

    def compose(self) -> ComposeResult:
        # The inputs are read from here on, not from the mount: a large input's first finding (its analysis
        # child started with the command) is then in before the view's first frame, and drawn in it.
        for load in self._pending_loads:
            self._start_reading(load)
        yield Header()
        with Horizontal(id="status"):
            yield Static(id="counts")
            yield Static(id="progress")
            yield FollowBadge(id="follow-badge")
        with Container(id="body"):
            yield FindingsTable(id="findings")
            with TabbedContent(id="tabs", initial="detail-tab"):
                with TabPane("Detail", id="detail-tab"):
                    yield DetailPane(id="detail")
                with TabPane("Evidence", id="evidence-tab"):
                    yield EvidenceLog(id="evidence")
        yield Input(placeholder="search the input (Enter: find, n/N: next/previous, Esc: close)", id="search")
        yield KeyHints(id="key-hints")

    def on_mount(self) -> None:
        # The window's size is known: the first frame is laid out side by side or stacked as it will stay
        # (set at the first resize, after it, the change of layout restyled and laid out the whole screen
        # again, ~40 ms before the first finding could be drawn).
        self.apply_layout()
        keymap = getattr(self.app, "keymap", {})
        palette = Binding("ctrl+p", "command_palette", "Palette")
        shown = [*self.BINDINGS, *self.app.BINDINGS, palette]
        self.query_one(KeyHints).show(hints([b for b in shown if isinstance(b, Binding)], keymap))
        self._timer = self.set_interval(POLL_INTERVAL, self.poll)
        self.polling = True
        self.query_one(FindingsTable).focus()
        for load in self._pending_loads:
            self._open(load)
        self._pending_loads = []
        self._mounted = True
        self._wake_pending = False
        self.poll()  # what the readers found since the compose
        self.set_timer(START_UP_LIMIT, self._view_is_up)

    def _view_is_up(self) -> None:
        """The first frame with what start-up found (a finding, or the end of the analysis) is drawn, or
        :data:`START_UP_LIMIT` passed: only now do the text readers go on past the inputs' heads and the
        detail pane's renderers load. Until then the first frames have the interpreter to themselves
        (on a 100 MB log the readers and the imports were ~0.15 s of CPU that they shared it with)."""
        if self._up:
            return
        self._up = True
        for load in self.loads:
            load.view_up.set()
        self.query_one(DetailPane).renderers_coming = True
        self._warm_up()

    class RenderersLoaded(Message):
        """The warm-up thread loaded the detail pane's renderers."""

    @work(thread=True, group="warm-up")
    def _warm_up(self) -> None:
        """Load what showing a finding needs (the knowledge base, the Markdown renderer, the C highlighter)
        in a thread, not on the UI thread the moment the finding arrives (about 80 ms, while keys wait)."""
        warm_up_detail()
        self.post_message(self.RenderersLoaded())

    def on_triage_screen_renderers_loaded(self, message: RenderersLoaded) -> None:
        message.stop()
        self.query_one(DetailPane).renderers_loaded()

    def on_resize(self) -> None:
        self.apply_layout()

    # -- loading ----------------------------------------------------------------------------------------

    def open_source(self, source: Source, *, select: bool = False) -> Load:
        """Start reading ``source`` in the background; its findings join the list as they are found. With
        ``select`` (a paste), its first finding is selected as soon as it is found, and the evidence view
        shows its text."""
        return self._open(self._new_load(source), select=select)

    def _new_load(self, source: Source) -> Load:
        load = Load(source, follow=self.follow, on_change=self._wake)
        if not self._up:
            load.view_up.clear()
        self.feed.begin(load)
        return load

    def _wake(self) -> None:
        """Called from a loader thread: take the news in at once, with one message however many came. The
        end of the loads is news of its own, even with a message pending (it may be waiting out
        :data:`WAKE_INTERVAL`): ``done`` is shown at once."""
        if not self._wake_pending or self.all_loaded:
            self._wake_pending = True
            self.post_message(self.LoadChanged())

    def on_triage_screen_load_changed(self, message: LoadChanged) -> None:
        """The first news at once, then at most every :data:`WAKE_INTERVAL` (a log with thousands of
        findings would otherwise re-list them as fast as the UI can); no message is posted meanwhile. The
        end of the loads is taken in at once."""
        message.stop()
        if not self._mounted:
            return  # news from before the view was mounted: its mount takes them in (and wakes again)
        wait = self._woken_at + WAKE_INTERVAL - time.monotonic()
        if wait > 0 and not self.all_loaded:
            self.set_timer(wait, self._take_news)
        else:
            self._take_news()

    def _take_news(self) -> None:
        self._wake_pending = False
        self._woken_at = time.monotonic()
        self.poll()

    def _start_reading(self, load: Load) -> None:
        self.loads.append(load)
        self._keep_polling(True)
        self._read_incidents(load)
        self._read_lines(load)

    def _open(self, load: Load, *, select: bool = False) -> Load:
        if load not in self.loads:
            self._start_reading(load)
        if self._shown_load is None or select:
            self._show_load(load)
        if select:
            self._select_from = load
        return load

    def _select_new(self) -> None:
        """Select the first finding of the input just pasted, once the list has it."""
        load = self._select_from
        if load is None or not load.incidents:
            if load is not None and load.done:
                self._select_from = None
            return
        table = self.query_one(FindingsTable)
        first = next((i for i in load.incidents if i.hvci_related), load.incidents[0])
        if table.select_id(first.id):
            self._select_from = None
            self._show_incident(first)

    def reload(self) -> None:
        """Read every input again (after the symbol path or image folders changed)."""
        sources = [load.source for load in self.loads]
        for load in self.loads:
            load.stop.set()
        self.loads = []
        self._seen = {}
        self._shown_load = None
        self._current = None
        self.query_one(FindingsTable).show([])
        self.query_one(DetailPane).clear()
        for source in sources:
            self.open_source(source)

    @work(thread=True, group="incidents")
    def _read_incidents(self, load: Load) -> None:
        self.feed.read_incidents(load)

    @work(thread=True, group="lines")
    def _read_lines(self, load: Load) -> None:
        self.feed.read_lines(load)

    def on_unmount(self) -> None:
        for load in self.loads:
            load.stop.set()
            load.view_up.set()

    def all_incidents(self) -> list[Incident]:
        """Every incident so far in ``analyze``'s order: input by input, by line (the engine emits a crash
        when it completes, which can be after a later one-line banner)."""
        return [
            incident
            for load in self.loads
            for incident in sorted(load.incidents, key=lambda i: i.source.first_line)
        ]

    def finding_incidents(self) -> list[Incident]:
        """One incident per finding (the engine's de-duplication, :mod:`hvci.findings`): repeats of the same
        bucket are one row with their count; the detail pane lists every occurrence."""
        findings = group_findings(self.all_incidents())
        self.findings = {finding.incident.id: finding for finding in findings}
        self.query_one(FindingsTable).count_of = self._count_of
        return [finding.incident for finding in findings]

    def finding_of(self, incident: Incident) -> Finding | None:
        return self.findings.get(incident.id)

    def _count_of(self, incident: Incident) -> int:
        finding = self.findings.get(incident.id)
        return finding.count if finding is not None else incident.count

    def poll(self) -> None:
        """Take in what the loaders produced since the last tick."""
        grew = False
        for load in self.loads:
            if load.version != self._seen.get(id(load), 0):
                self._seen[id(load)] = load.version
                grew = True
        table = self.query_one(FindingsTable)
        now = time.monotonic()
        simple = table.order == "input" and table.grouping == "none" and len(self.loads) == 1
        if grew:
            self._dirty = True
        if self._dirty and (simple or now - self._last_resort >= RESORT_INTERVAL or self.all_loaded):
            self._dirty = False
            self._last_resort = now
            rows = table.row_count
            table.several_inputs = len(self.loads) > 1
            table.show(self.finding_incidents())
            if table.row_count != rows:
                self.apply_layout()
            if self._current is not None:  # a repeat of the finding shown, or one more place it was seen
                self.query_one(DetailPane).show_occurrences(self.finding_of(self._current))
            self._select_new()
            self._update_status()
        if table.current is None and (grew or self._empty_for != self._empty_key()):
            self._show_empty()
        if not self._up and (table.row_count or all(load.incidents_done for load in self.loads)):
            self.call_after_refresh(self._view_is_up)
        shown = self._shown_load
        if shown is not None:
            self.query_one(EvidenceLog).lines_added()
            wanted = self._detail_needs_lines
            if wanted and self._current is not None and (len(shown.lines) >= wanted or shown.lines_done):
                self._detail_needs_lines = 0
                self.query_one(DetailPane).show(self._current, self.line_at, self.finding_of(self._current))
        self._update_status()
        if self.all_loaded and not self._dirty:
            self._keep_polling(False)  # every input is read and taken in: nothing comes until one is opened

    def _keep_polling(self, on: bool) -> None:
        """Start or stop the timer that takes in the loaders' progress (see :attr:`polling`)."""
        if self._timer is None or on == self.polling:
            return
        if on:
            self._timer.resume()
        else:
            self._timer.pause()
        self.polling = on

    polling = False
    """The timer takes in the loaders' progress: while an input is being read (or followed), not once every
    input is read and shown (an idle view woke up four times a second for nothing)."""

    def _empty_key(self) -> tuple[object, ...]:
        table = self.query_one(FindingsTable)
        return (len(self.loads), sum(load.done for load in self.loads), len(self.findings), table.where)

    def _show_empty(self) -> None:
        """No finding under the cursor: say why (no input, still reading, filtered, nothing found)."""
        self._empty_for = self._empty_key()
        table = self.query_one(FindingsTable)
        self.query_one(DetailPane).clear(empty_text(self.loads, len(self.findings), table.where))

    @property
    def incomplete(self) -> bool:
        return any(load.error for load in self.loads)

    @property
    def all_loaded(self) -> bool:
        return all(load.done for load in self.loads)

    @property
    def caught_up(self) -> bool:
        """Every input is read and the view shows all of it: the list, the status line, the evidence text
        and the detail that waited for its lines. Loaders only report; the timer and the wake-up message
        take their news in, and a busy machine delays both by any amount, so this says when it is over
        (what the tests wait for, never a time)."""
        if not self.is_mounted or not self.all_loaded or self._dirty or self._wake_pending:
            return False
        if any(self._seen.get(id(load), 0) != load.version for load in self.loads):
            return False
        if self._detail_needs_lines and self._current is not None:
            return False
        shown = self._shown_load
        if shown is not None and self.query_one(EvidenceLog).line_count != len(shown.lines):
            return False
        table = self.query_one(FindingsTable)
        return self._status == loads_text(self.loads, table.order, table.grouping, table.where)

    def _update_status(self) -> None:
        table = self.query_one(FindingsTable)
        incidents = [finding.incident for finding in self.findings.values()]
        counts = counts_text(incidents, table.where, len(table.listed), incomplete=self.incomplete)
        if counts != self._counts:
            resized = counts.cell_len != self._counts.cell_len  # sized to its text: else no re-layout
            self._counts = counts
            self.query_one("#counts", Static).update(counts, layout=resized)
        text = loads_text(self.loads, table.order, table.grouping, table.where)
        if text != self._status:
            self._status = text
            self.query_one("#progress", Static).update(text, layout=False)  # one fixed line: no re-layout

    def status_text(self) -> Text:
        """The whole status line as plain text would read it (counts, then the inputs)."""
        table = self.query_one(FindingsTable)
        text = counts_text(
            [f.incident for f in self.findings.values()],
            table.where,
            len(table.listed),
            incomplete=self.incomplete,
        )
        text.append("  ")
        text.append_text(loads_text(self.loads, table.order, table.grouping, table.where))
        return text

    # -- selection ---------------------------------------------------------------------------------------

    def on_findings_table_incident_highlighted(self, event: FindingsTable.IncidentHighlighted) -> None:
        if event.incident is not None and not self._up:
            # the list's first finding reaches the screen first; its detail (the first one also loads the
            # Markdown renderer, ~40 ms) in the frame after
            self.call_after_refresh(self._follow_cursor)
            return
        self._show_highlighted(event.incident)

    def _follow_cursor(self) -> None:
        self._show_highlighted(self.query_one(FindingsTable).current)

    def _show_highlighted(self, incident: Incident | None) -> None:
        if incident is None:
            self._current = None
            self._show_empty()
        elif self._current is not None and incident.id == self._current.id:
            if incident != self._current:  # an enriched version of the same incident
                self._show_incident(incident, jump=False)
        else:
            self._show_incident(incident)

    def load_of(self, incident: Incident) -> Load | None:
        for load in self.loads:
            if load.display_name == incident.source.path:
                return load
        for load in self.loads:
            if any(i is incident for i in load.incidents):
                return load
        return None

    def line_at(self, path: str, number: int) -> str | None:
        for load in self.loads:
            if load.display_name == path and 0 < number <= len(load.lines):
                return load.lines[number - 1]
        return None

    def _show_load(self, load: Load) -> None:
        self._shown_load = load
        self.query_one(EvidenceLog).show_lines(load.lines, load.display_name, followable=load.follow)

    def _show_incident(self, incident: Incident, *, jump: bool = True) -> None:
        self._current = incident
        load = self.load_of(incident)
        if load is not None and load is not self._shown_load:
            self._show_load(load)
        detail = self.query_one(DetailPane)
        detail.show(incident, self.line_at, self.finding_of(incident))
        spans = [(incident.source.first_line, incident.source.last_line)]
        spans += [
            (e.span.first_line, e.span.last_line)
            for e in incident.evidence
            if e.span is not None and e.span.path == incident.source.path
        ]
        log = self.query_one(EvidenceLog)
        # Following a live log is only paused by the user scrolling it or asking for a finding (e/E).
        jump = jump and not log.following
        log.highlight(spans, focus_line=incident.source.first_line if jump else None)
        needed = max(last for _, last in spans)
        self._detail_needs_lines = needed if log.line_count < needed else 0
        if self._detail_needs_lines:
            self._keep_polling(True)  # the next tick shows the detail again with its lines (or without)

    @property
    def current(self) -> Incident | None:
        return self._current

    # -- actions -----------------------------------------------------------------------------------------

    def _step(self, delta: int) -> None:
        table = self.query_one(FindingsTable)
        incident = table.step(delta)
        if incident is None:
            self.notify("No findings to move between.", markup=False)
            return
        self._show_incident(incident)
        self.query_one(EvidenceLog).jump_to(incident.source.first_line)

    def action_next_finding(self) -> None:
        self._step(1)

    def action_previous_finding(self) -> None:
        self._step(-1)

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        target = self.query_one(DetailPane) if tab == "detail-tab" else self.query_one(EvidenceLog)
        target.focus()

    def action_search(self) -> None:
        search = self.query_one("#search", Input)
        search.add_class("-open")
        search.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "search":
            return
        event.stop()
        self.run_search(event.value)

    def run_search(self, pattern: str) -> None:
        log = self.query_one(EvidenceLog)
        count = log.search(pattern)
        self.query_one("#search", Input).remove_class("-open")
        self.action_show_tab("evidence-tab")
        if not pattern:
            return
        if count == 0:
            self.notify(f"No line matches {pattern!r}.", severity="warning", markup=False)
            return
        line = log.next_match()
        self.notify(f"{count} matching line{'s' if count != 1 else ''}; at line {line}.", markup=False)

    def _search_step(self, backwards: bool) -> None:
        log = self.query_one(EvidenceLog)
        if not log.matches:
            self.notify("No search yet: press / to search.", markup=False)
            return
        self.query_one(TabbedContent).active = "evidence-tab"
        log.next_match(backwards=backwards)

    def action_search_next(self) -> None:
        self._search_step(False)

    def action_search_previous(self) -> None:
        self._search_step(True)

    def set_order(self, sort: str | None = None, group: str | None = None) -> None:
        table = self.query_one(FindingsTable)
        if sort is not None:
            table.order = sort
        if group is not None:
            table.grouping = group
        table.show(self.finding_incidents())
        self._update_status()

    def action_cycle_sort(self) -> None:
        table = self.query_one(FindingsTable)
        self.set_order(sort=SORT_KEYS[(SORT_KEYS.index(table.order) + 1) % len(SORT_KEYS)])

    def action_cycle_group(self) -> None:
        table = self.query_one(FindingsTable)
        self.set_order(group=GROUP_KEYS[(GROUP_KEYS.index(table.grouping) + 1) % len(GROUP_KEYS)])

    def set_filter(self, where: Filter) -> None:
        table = self.query_one(FindingsTable)
        table.where = where
        table.show(self.finding_incidents())
        if table.current is None:
            self._current = None
            self._show_empty()
        self._update_status()

    def action_toggle_other(self) -> None:
        where = self.query_one(FindingsTable).where
        self.set_filter(Filter(where.category, where.driver, show_other=not where.show_other))

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "evidence-tab":
            log = self.query_one(EvidenceLog)
            log.call_after_refresh(log.reveal_focus)

    def on_evidence_log_follow_changed(self, event: EvidenceLog.FollowChanged) -> None:
        if self.follow:
            self.query_one(FollowBadge).show_state(event.following, event.pending)
