"""The pipeline: streaming, enrichment by later module lists, ids, read errors, follow mode."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterable
from pathlib import Path

import pytest

from hvci.logs.pipeline import AnalyzeOptions, analyze_inputs, analyze_text, iter_incidents
from hvci.model import Incident
from parsers.stream import open_input
from symbols.modules import Module, ModuleMap
from tests.conftest import HANG_SECONDS

ROOT = Path(__file__).resolve().parents[2]
HAXM = (ROOT / "samples" / "logs" / "session-pool-type-haxm.log").read_text(encoding="utf-8")

CRASH = """\
*** Fatal System Error: 0x000000c4
                       (0x0000000000002000,0xFFFFF8074B9852F0,0x0000000000000000,0x00000000484D454D)

Break instruction exception - code 80000003 (first chance)
"""
OTHER = """\
*** Fatal System Error: 0x000000d1
                       (0xFFFFA50C3E7C1008,0x0000000000000002,0x0000000000000000,0xFFFFF8065D3A1C47)
"""
LM = """\
0: kd> lm
start             end                 module name
fffff807`4b980000 fffff807`4b9c3000   IntelHaxm   (deferred)
"""


def test_analyze_text_on_a_whole_session() -> None:
    report = analyze_text(HAXM, "haxm.log")
    (incident,) = report.incidents
    assert incident.id == "haxm.log:17" and incident.source.first_line == 17
    assert (incident.category, incident.confidence) == ("execute-pool-type", "certain")
    assert incident.caller is not None and incident.caller.function == "hax_alloc_buffer"
    assert report.inputs[0].format == "kd-log" and not report.incomplete


def test_a_module_list_after_the_crash_resolves_the_caller() -> None:
    report = analyze_text(CRASH + "noise\n" * 5 + LM, "late.log")
    (incident,) = report.incidents
    assert incident.caller is not None and (incident.caller.module, incident.caller.offset) == (
        "IntelHaxm",
        0x52F0,
    )
    assert incident.confidence == "likely"  # number + Arg2 inside a loaded driver


def test_stream_re_emits_an_incident_when_a_later_lm_enriches_it() -> None:
    inp = open_input(None, data=(CRASH + OTHER + LM).encode(), name="s.log")
    seen = list(iter_incidents(inp))
    first = [i for i in seen if i.id == "s.log:1"]
    assert len(first) == 2, [i.id for i in seen]
    assert first[0].caller is not None and first[0].caller.module is None
    assert first[1].caller is not None and first[1].caller.module == "IntelHaxm"
    assert [i.id for i in seen].index("s.log:1") == 0  # shown before the lm arrived


def test_first_incident_streams_before_the_input_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    noise = "KDTARGET: Refreshing KD connection (noise line to make the log big)\n" * 300_000
    path.write_text(CRASH + OTHER + noise + OTHER.replace("d1", "d2"), encoding="utf-8")
    inp = open_input(path)
    stream = iter_incidents(inp)
    first: Incident = next(stream)
    assert first.id.endswith(":1")
    assert inp.info().lines < 300_000


def test_ids_are_unique_and_input_ordered() -> None:
    text = HAXM + "\n" + OTHER + "\n" + CRASH
    report = analyze_text(text, "m.log")
    ids = [i.id for i in report.incidents]
    assert len(ids) == len(set(ids)) == 3
    assert [i.source.first_line for i in report.incidents] == sorted(
        i.source.first_line for i in report.incidents
    )


def test_groups_starting_on_one_line_keep_one_incident_each(tmp_path: Path) -> None:
    """A session file holds a command's whole output on one line (an exported XML event log, several
    events): every group there still gets its own id (``path:line``, then ``#2``), none replaces another."""
    header = {"format": "hvci-triage-session", "version": 1, "kind": "session"}
    both = {"kind": "command", "command": "!dbgprint", "output": HAXM + "\n" + OTHER}
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(header) + "\n" + json.dumps(both) + "\n", encoding="utf-8")
    report = analyze_inputs([open_input(path, name="one.jsonl")])
    assert [i.id for i in report.incidents] == ["one.jsonl:2", "one.jsonl:2#2"]
    assert {i.source.first_line for i in report.incidents} == {2}


def test_address_of_a_dh_dump_names_its_module_from_lm() -> None:
    dump = (ROOT / "samples" / "logs" / "dh-wx-section.txt").read_text(encoding="utf-8")
    dump = dump.replace("!dh hvcidemo", "!dh 0xfffff8074b980000")
    report = analyze_text(LM + dump, "dh.log")
    assert {i.driver for i in report.incidents if i.kind == "image"} == {"IntelHaxm"}


def test_unreadable_input_is_a_diagnostic_and_the_others_still_run(tmp_path: Path) -> None:
    good = tmp_path / "good.log"
    good.write_text(CRASH, encoding="utf-8")
    report = analyze_inputs([open_input(tmp_path / "missing.log"), open_input(good)])
    assert report.incomplete
    assert [d.severity for d in report.inputs[0].diagnostics] == ["error"]
    assert len(report.incidents) == 1


def test_user_modules_resolve_without_lm() -> None:
    options = AnalyzeOptions(modules=("IntelHaxm.sys=fffff8074b980000:43000",))
    (incident,) = analyze_text(CRASH, "u.log", options).incidents
    assert incident.caller is not None and (incident.caller.module, incident.caller.offset) == (
        "IntelHaxm.sys",
        0x52F0,
    )


def test_follow_shows_the_open_crash_when_the_log_goes_quiet(tmp_path: Path) -> None:
    path = tmp_path / "live.log"
    path.write_text("Connected to Windows 10 22621 x64 target\n", encoding="utf-8")
    stop = threading.Event()
    found: queue.Queue[Incident] = queue.Queue()

    def consume() -> None:
        for incident in iter_incidents(
            open_input(path), AnalyzeOptions(idle_seconds=0.1), follow=True, stop=stop
        ):
            found.put(incident)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    with path.open("a", encoding="utf-8") as handle:
        handle.write(CRASH)
    try:
        first = found.get(timeout=HANG_SECONDS)  # no line follows the crash: only the quiet log shows it
    finally:
        stop.set()
    thread.join(timeout=HANG_SECONDS)
    assert first.category == "execute-pool-type"
    assert not thread.is_alive()


LN = """\
0: kd> ln fffff807`4b9852f0
c:\\src\\haxm\\windows\\hax_host_mem.c(88)+0x12
(fffff807`4b9852de)   IntelHaxm!hax_alloc_buffer+0x12   |  (fffff807`4b985390)   IntelHaxm!hax_free_buffer
"""


def test_a_late_ln_names_the_function() -> None:
    (incident,) = analyze_text(CRASH + OTHER.replace("d1", "d2") + LM + LN, "ln.log").incidents[:1]
    assert incident.caller is not None and incident.caller.resolved_by == "debugger"
    assert (incident.caller.function, incident.caller.line) == ("hax_alloc_buffer", 88)


def test_counters_point_at_the_banners_of_the_same_driver() -> None:
    text = (ROOT / "samples" / "logs" / "session-log-only-mode.log").read_text(encoding="utf-8")
    report = analyze_text(text, "lo.log")
    counter = next(
        i for i in report.incidents if i.kind == "verifier-counters" and i.category == "execute-pool-type"
    )
    assert any("lo.log:8, lo.log:13" in e.reason for e in counter.evidence)


def test_many_sessions_each_with_its_own_lm_cost_linear_map_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10 item 5: every lm rebuilt the module map from all entries seen so far (quadratic)."""
    samples = Path(__file__).resolve().parents[2] / "samples" / "logs"
    session = (samples / "session-pool-type-haxm.log").read_text("utf-8")
    built = [0]
    original = ModuleMap.__init__

    def counting(self: ModuleMap, modules: Iterable[Module] = (), notes: Iterable[str] = ()) -> None:
        modules = list(modules)
        built[0] += len(modules)
        original(self, modules, notes)

    monkeypatch.setattr(ModuleMap, "__init__", counting)

    def work(copies: int) -> int:
        built[0] = 0
        report = analyze_text(session * copies)
        assert len(report.incidents) >= copies
        return built[0]

    assert work(40) <= 2.2 * work(20)


def test_a_module_list_looks_only_at_crashes_still_missing_a_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """N sessions each with its own lm: every lm used to re-examine every crash seen so far (quadratic).
    Now an lm looks at the crashes whose caller has no module yet, which a session's own lm settles."""
    from hvci.logs import pipeline
    from hvci.logs.pipeline import analyze_inputs
    from parsers.stream import open_input

    session = (ROOT / "samples" / "logs" / "session-pool-type-haxm.log").read_bytes()
    examined: list[int] = []
    original = pipeline.enrichable

    def counting(tracked: object, record: object) -> bool:
        examined.append(1)
        return original(tracked, record)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "enrichable", counting)
    report = analyze_inputs([open_input(None, data=session * 60, name="sessions.log")])
    assert len(report.incidents) == 60
    assert len(examined) <= 2 * 60  # linear; the old loop made 60 * 61 / 2 = 1,830 checks


def test_the_final_pass_classifies_again_only_what_the_input_taught_more_about(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A crash classified with all the input says about it is not classified again at the end; one that a
    later ``dS`` tells more about (the image behind Arg2) is, with what it taught."""
    import hvci.logs.classify as classify_package

    calls: list[int] = []
    original = classify_package.classify

    def counting(group: object, context: object) -> list[Incident]:
        calls.append(group.span.first_line)  # type: ignore[attr-defined]
        return original(group, context)  # type: ignore[arg-type]

    monkeypatch.setattr(classify_package, "classify", counting)
    report = analyze_text(CRASH + OTHER + LM, "late.log")
    assert report.incidents[0].caller is not None and report.incidents[0].caller.module == "IntelHaxm"
    assert calls.count(1) == 2  # when the next crash closed its group, and when the lm resolved its caller
    calls.clear()
    image = CRASH.replace("0x0000000000002000", "0x0000000000002003")
    dump = '0: kd> dS fffff807`4b9852f0\nfffff807`4b9853a0  "\\SystemRoot\\drivers\\Late.sys"\n'
    report = analyze_text(image + OTHER + dump, "ds.log")
    assert calls.count(1) == 2 and report.incidents[0].driver == "Late.sys"
