"""Fixtures for the TUI tests: incidents built by hand over a small log, and a feed that serves them.

The feed stands in for the engine so that these tests pin the view's behaviour, not the classifier's;
tests that run the real pipeline on the sample logs live in ``test_end_to_end.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from textual.app import App
from textual.pilot import Pilot

from hvci.details import CrashDetails, DecodedValue
from hvci.logs.pipeline import AnalyzeOptions
from hvci.model import BugCheck, Caller, Evidence, Incident
from parsers.records import Span, StackFrame
from tui.app import TriageApp, make_app
from tui.loading import Load, Source

LOG_NAME = "crash.log"

LOG_LINES = [
    "Microsoft (R) Windows Debugger Version 10.0.22621.2428 AMD64",  # 1
    "Connected to Windows 10 19041 x64 target",
    "*********** Verifier Detected a Code Integrity Issue ************",
    "**",
    "** The caller 0xFFFFF8074B9852F0 specified an executable pool type 0x0 (tag 0x484d454d).",  # 5
    "**",
    "*****************************************************************",
    "*** Fatal System Error: 0x000000c4",
    "                       (0x0000000000002000,0xFFFFF8074B9852F0,0x0000000000000000,0x00000000484D454D)",
    "",  # 10
    "STACK_TEXT:",
    "fffffa0b`17901228 fffff807`4c7dfe63     : 00000000`000000c4 : nt!KeBugCheckEx",
    "fffffa0b`17901230 fffff807`4b9852f0     : 00000000`00000000 : nt!VerifierExAllocatePoolWithTag+0x8a",
    "fffffa0b`17901238 fffff807`4b981000     : 00000000`00000000 : IntelHaxm!AllocateBuffer+0x12",
    "",  # 15
    "*********** Verifier Detected a Code Integrity Issue ************",
    "**",
    "** The caller 0xFFFFF8074C001234 specified an executable page protection 0x40.",
    "**",
    "*****************************************************************",  # 20
    "[bold red]x[/] [@click=app.quit]click[/] \x1b[2J\x1b]52;c;SGVsbG8=\x07 evil",
    "*** Fatal System Error: 0x0000000a",
    "                       (0x0000000000000000,0x0000000000000002,0x0000000000000000,0xFFFFF8074C000000)",
    "kd> lm",
    "fffff807`4b980000 fffff807`4b990000   IntelHaxm   (pdb symbols)",  # 25
    "end of log",
]
LOG_TEXT = "\n".join(LOG_LINES) + "\n"


def _span(first: int, last: int | None = None, path: str = LOG_NAME) -> Span:
    return Span(path, first, last if last is not None else first)


def sample_incidents(path: str = LOG_NAME) -> list[Incident]:
    """Three incidents over :data:`LOG_LINES`: an 0xC4/0x2000 crash, an 0x2001 banner, and an 0xA."""
    frames = (
        StackFrame(line=12, text=LOG_LINES[11], index=0, module="nt", function="KeBugCheckEx"),
        StackFrame(
            line=13,
            text=LOG_LINES[12],
            index=1,
            module="nt",
            function="VerifierExAllocatePoolWithTag",
            offset=0x8A,
        ),
        StackFrame(
            line=14, text=LOG_LINES[13], index=2, module="IntelHaxm", function="AllocateBuffer", offset=0x12
        ),
    )
    pool = Incident(
        id=f"{path}:3",
        source=_span(3, 14, path),
        kind="bugcheck",
        category="execute-pool-type",
        hvci_related=True,
        confidence="certain",
        title="IntelHaxm.sys allocated executable pool (NonPagedPool)",
        bugcheck=BugCheck(
            0xC4, "DRIVER_VERIFIER_DETECTED_VIOLATION", (0x2000, 0xFFFFF8074B9852F0, 0, 0x484D454D)
        ),
        caller=Caller(
            address=0xFFFFF8074B9852F0,
            module="IntelHaxm.sys",
            offset=0x52F0,
            function="AllocateBuffer",
            displacement=0x12,
            file="src/alloc.c",
            line=42,
            resolved_by="pdb",
        ),
        driver="IntelHaxm.sys",
        details=CrashDetails(pool_type=DecodedValue(0, "NonPagedPool", True), pool_tag="MEMH"),
        evidence=(
            Evidence("verifier banner: executable pool type", _span(3, 7, path), "deciding"),
            Evidence("bug check 0xC4 with Arg1 0x2000", _span(8, 9, path), "deciding"),
        ),
        stack=frames,
        bucket="execute-pool-type:intelhaxm!AllocateBuffer",
    )
    protection = Incident(
        id=f"{path}:16",
        source=_span(16, 20, path),
        kind="verifier-banner",
        category="execute-page-protection",
        hvci_related=True,
        confidence="likely",
        title="a driver passed an executable page protection (PAGE_EXECUTE_READWRITE)",
        caller=Caller(
            address=0xFFFFF8074C001234, module="evil[bold]drv.sys; .shell calc", resolved_by="module"
        ),
        driver="evil[bold]drv.sys; .shell calc",
        details=CrashDetails(protection=DecodedValue(0x40, "PAGE_EXECUTE_READWRITE", True)),
        evidence=(Evidence("verifier banner: executable page protection", _span(16, 20, path), "deciding"),),
        count=3,
    )
    other = Incident(
        id=f"{path}:22",
        source=_span(22, 23, path),
        kind="bugcheck",
        category=None,
        hvci_related=False,
        confidence="none",
        title="[bold red]IRQL_NOT_LESS_OR_EQUAL[/] [@click=app.quit]x[/]",
        bugcheck=BugCheck(0xA, "IRQL_NOT_LESS_OR_EQUAL", (0, 2, 0, 0xFFFFF8074C000000)),
        evidence=(Evidence("bug check 0xA", _span(22, 23, path)),),
    )
    return [pool, protection, other]


@dataclass
class FixtureFeed:
    """Serves prepared text and incidents per source name. With ``hold_after`` set, it hands out that many
    incidents and then waits for ``release`` (a test sees the app in the middle of loading, for as long as
    it needs, on any machine)."""

    texts: Mapping[str, str]
    incidents: Mapping[str, Sequence[Incident]]
    hold_after: int | None = None
    release: threading.Event = field(default_factory=threading.Event)
    options: AnalyzeOptions | None = None

    def begin(self, load: Load) -> None:
        pass  # everything happens in the read methods

    def read_incidents(self, load: Load) -> None:
        for number, incident in enumerate(self.incidents.get(load.source.name, ())):
            if number == self.hold_after:
                self.release.wait()
            load.add(incident)
        load.incidents_done = True

    def read_lines(self, load: Load) -> None:
        for line in self.texts.get(load.source.name, "").splitlines():
            load.lines.append(line)
        load.bytes_read = len(self.texts.get(load.source.name, "").encode())
        load.lines_done = True


def fixture_factory(feed: FixtureFeed):  # type: ignore[no-untyped-def]
    def factory(options: AnalyzeOptions) -> FixtureFeed:
        feed.options = options
        return feed

    return factory


@pytest.fixture
def feed() -> FixtureFeed:
    return FixtureFeed({LOG_NAME: LOG_TEXT}, {LOG_NAME: sample_incidents()})


def fixture_app(
    feed: FixtureFeed,
    tmp_path: Path,
    sources: list[Source] | None = None,
    keymap: Path | None = None,
) -> TriageApp:
    """The app on ``sources`` (by default the sample log) fed by ``feed``, exporting into ``tmp_path`` and
    with no user keymap unless ``keymap`` names one."""
    return make_app(
        [Source(name=LOG_NAME, data=LOG_TEXT.encode())] if sources is None else sources,
        feed_factory=fixture_factory(feed),
        export_dir=tmp_path,
        keymap_file=keymap or tmp_path / "no-keymap.toml",
    )


@pytest.fixture
def app(feed: FixtureFeed, tmp_path: Path) -> TriageApp:
    return fixture_app(feed, tmp_path)


async def settle(pilot: Pilot[None], app: App[None] | None = None) -> None:
    """Let the workers finish and the view take in all they produced (the screen says so: its poll timer and
    wake-up message may be delayed by any amount on a busy machine), then let the app go quiet. Waits for
    events, never for a fixed time."""
    target = app or pilot.app
    await target.workers.wait_for_complete()
    triage = getattr(target, "triage", None)
    await wait_for(pilot, lambda: triage is None or bool(getattr(triage, "caught_up", True)), "caught up")
    await target.workers.wait_for_complete()  # those started meanwhile (the detail's warm-up, once up)
    await quiet(pilot)


async def wait_for(pilot: Pilot[None], condition: Callable[[], bool], what: str = "the condition") -> None:
    """Let the app run until ``condition`` holds. Bounded by a number of turns of the event loop, not by a
    clock, so that a loaded machine only makes it slower."""
    for _ in range(WAIT_TURNS):
        if condition():
            return
        await pilot.pause()
    raise AssertionError(f"{what} never happened")


async def quiet(pilot: Pilot[None]) -> None:
    """Let the app run until it has nothing left to do: every message handled, every deferred callback run,
    no layout or repaint pending, no animation running or scheduled. A snapshot or an assertion on what is
    drawn then sees a settled state, however slowly a busy machine got there.

    ``Pilot.pause()`` alone is one round of messages and then a guess from CPU time that the app is idle: a
    message posted by a handler in that round, or a process starved by another job, can fool it. This looks
    at the queues themselves (Textual internals; textual is pinned)."""
    app = pilot.app
    for _ in range(WAIT_TURNS):
        await pilot.pause()
        if _pending_work(app) is None:
            return
    raise AssertionError(f"the app never went quiet: {_pending_work(app)}")


def _pending_work(app: App[None]) -> str | None:
    """What ``app`` still has to do on its current screen, or ``None``."""
    screen = app.screen
    for node in (app, *screen.walk_children(with_self=True)):
        if not node._message_queue.empty() or node._next_callbacks:
            return f"messages for {node!r}"
    if (
        screen._layout_required
        or screen._scroll_required
        or screen._repaint_required
        or screen._recompose_required
        or screen._dirty_widgets
        or screen._callbacks
    ):
        return "a refresh of the screen"
    if app.animator._animations or app.animator._scheduled:
        return "an animation"
    return None


WAIT_TURNS = 5000


def iter_table_text(app: TriageApp) -> Iterator[str]:
    from tui.widgets.findings_table import FindingsTable

    table = app.triage.query_one(FindingsTable)
    for row in range(table.row_count):
        yield " | ".join(str(cell) for cell in table.get_row_at(row))
