"""``hvci-triage --follow SESSION``: the engine shows a live session's crash while the collector is still
running, and enriches it as later records (``lm``, ``ln``) arrive."""

from __future__ import annotations

import asyncio
import queue
import threading
from pathlib import Path

import pytest

from collectors import pykd_collector as collector
from hvci.logs.pipeline import AnalyzeOptions, iter_incidents
from hvci.model import Incident
from parsers import source
from parsers.stream import open_input
from tests.collectors import transcripts
from tests.conftest import HANG_SECONDS

HAXM = transcripts.ROOT / "samples" / "logs" / "session-pool-type-haxm.log"


def test_a_followed_session_shows_the_crash_before_the_collector_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source, "POLL_SECONDS", 0.02)
    path = tmp_path / "live.jsonl"
    session = collector.Session(str(path))
    session.open()
    stop = threading.Event()
    first_seen = threading.Event()
    incidents: queue.Queue[Incident] = queue.Queue()

    def follow() -> None:
        options = AnalyzeOptions(idle_seconds=0.05)
        for incident in iter_incidents(open_input(path), options, follow=True, stop=stop):
            incidents.put(incident)
            first_seen.set()

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    answer = transcripts.from_log(transcripts.read_log(HAXM)).answer
    waited: list[bool] = []

    def execute(command: str) -> str:
        if command == "lm":  # the crash is on screen before the module list that names its driver
            waited.append(first_seen.wait(HANG_SECONDS))
        return answer(command)

    collector.Collector(execute, session).collect()
    assert waited == [True]
    latest: Incident | None = None
    while latest is None or latest.caller is None or latest.caller.function is None:
        latest = incidents.get(timeout=HANG_SECONDS)
    stop.set()
    reader.join(HANG_SECONDS)
    assert latest.category == "execute-pool-type" and latest.caller.function == "hax_alloc_buffer"
    assert latest.id.startswith(f"{path}:")


async def test_the_triage_view_follows_a_session_as_the_collector_appends(tmp_path: Path) -> None:
    """``hvci-triage --follow SESSION``: the finding appears when the collector's records arrive, and its
    evidence lines are the session file's lines."""
    from tests.tui.test_end_to_end import _app, _until
    from tui.loading import Source
    from tui.widgets.evidence_log import EvidenceLog
    from tui.widgets.findings_table import FindingsTable

    path = tmp_path / "live.jsonl"
    session = collector.Session(str(path))
    session.open()
    app = _app([Source.file(path)], tmp_path, follow=True)
    async with app.run_test(size=(120, 40)) as pilot:
        log = app.triage.query_one(EvidenceLog)
        table = app.triage.query_one(FindingsTable)
        await _until(pilot, lambda: log.line_count == 1)
        assert table.listed == []
        answer = transcripts.from_log(transcripts.read_log(HAXM)).answer
        run = collector.Collector(answer, session)
        await asyncio.to_thread(run.collect)
        await _until(pilot, lambda: log.line_count == 1 + len(run.sent))
        await _until(pilot, lambda: len(table.listed) == 1)
        finding = table.listed[0]
        assert finding.category == "execute-pool-type"
        assert 2 <= finding.source.first_line <= 1 + len(run.sent)
        app.exit()
