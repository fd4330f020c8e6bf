"""Issue 16: peak memory must not grow with the number of crashes of a long log. The crash groups the analysis
keeps for its final pass (up to ``MAX_ENRICHABLE``) and the incidents the final window holds until nothing
can change them any more are therefore held as compressed pickles, not as Python objects (about seven
kilobytes a crash): these tests fail if either is held as objects again or if a kept crash grows back to
several kilobytes."""

from __future__ import annotations

import pickle
from pathlib import Path

from hvci.logs.final import FinalIncidents
from hvci.logs.pipeline import AnalyzeOptions, _InputRun
from parsers.stream import iter_records, open_input

ROOT = Path(__file__).resolve().parents[2]
SESSION = ROOT / "samples" / "logs" / "session-pool-type-haxm.log"
COPIES = 40  # one crash per session

#: what a kept crash of the session may take at most (about 640 bytes today; its plain pickle: 11 KB)
MAX_PACKED_BYTES = 2048


def _sessions() -> bytes:
    return SESSION.read_bytes() * COPIES


def test_kept_crash_groups_are_held_as_small_compressed_bytes() -> None:
    options = AnalyzeOptions()
    inp = open_input(None, data=_sessions(), name="sessions.log")
    run = _InputRun(inp.path, options, options.user_modules(), options.resolver())
    emitted = [incident.id for record in iter_records(inp) for incident in run.feed(record)]
    emitted.extend(incident.id for incident in run.finish())
    assert len(set(emitted)) == COPIES
    assert len(run.tracked) == COPIES
    for tracked in run.tracked:
        packed = tracked.packed
        assert isinstance(packed, bytes)
        assert len(packed) <= MAX_PACKED_BYTES
        group, kept = tracked.unpacked()  # rebuilt whole: what the final pass classifies again
        assert group.span.first_line == tracked.first_line
        assert len(packed) * 4 < len(pickle.dumps((group, kept)))
        assert {incident.id for incident in kept} == set(tracked.ids[: len(kept)])


def test_the_final_window_holds_its_incidents_as_bytes() -> None:
    stream = FinalIncidents(open_input(None, data=_sessions(), name="sessions.log"), AnalyzeOptions())
    incidents = iter(stream)
    first = next(incidents)  # the window is handed out at the end: the others are still held
    held = list(stream._pending.values())
    assert len(held) >= COPIES - 1
    assert all(isinstance(blob, bytes) and len(blob) <= MAX_PACKED_BYTES for _, blob in held)
    rest = list(incidents)
    assert [first.source.first_line, *(i.source.first_line for i in rest)] == sorted(
        i.source.first_line for i in (first, *rest)
    )
