"""Issue 10 item 13: a batch streams, so memory does not grow with the number of incidents (63 MB of verifier
banners, 277,534 incidents, took 1.2 GB), and the report is the same as the whole-report writers make.

Memory is measured on a child process (``os.wait4``: the peak resident set of the command and of the worker
processes it waited for) for a small and a large dense-banner log; the windows the streaming keeps (crash
groups kept for enrichment, occurrences held before they spill, parts of units running ahead) are made small
in the child so that a few thousand incidents are enough to see whether anything still grows with them.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.exitcodes import ExitCode
from cli.main import cli
from cli.main import run as main
from hvci.batch import inproc, pool
from hvci.batch import run as batch_run
from hvci.batch.run import run_batch
from hvci.batch.units import Unit, plan
from hvci.batch.work import IncidentBatch, Part, stream_unit
from hvci.logs import final, kept, pipeline
from hvci.logs.pipeline import AnalyzeOptions, analyze_inputs
from parsers.stream import open_input
from tests.hvci.batch_corpus import LOGS
from tests.hvci.dense_banners import write_dense_log

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted(p for p in LOGS.iterdir() if p.is_file())

#: Run in the child: the windows made small (see the module docstring), then the command.
CHILD = textwrap.dedent(
    """
    import sys
    from hvci.batch import run, spill
    from hvci.logs import final, kept, pipeline
    pipeline.MAX_ENRICHABLE = 64
    final.SETTLE_EVERY = 64
    spill.OCCURRENCES_IN_MEMORY = 500
    run.WAITING_IN_MEMORY = 256 * 1024
    from cli.main import run as main
    sys.exit(main(sys.argv[1:]))
    """
)


def analyze(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["analyze", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


# ------------------------------------------------------------------------------ one input, final incidents


def _same_as_whole(name: str, data: bytes) -> None:
    whole = analyze_inputs([open_input(None, data=data, name=name)])
    stream = final.FinalIncidents(open_input(None, data=data, name=name), AnalyzeOptions())
    assert tuple(stream) == whole.incidents, name
    assert stream.info == whole.inputs[0]


@pytest.mark.parametrize(("window", "in_memory"), [(4096, None), (2, None), (4096, 1)])
def test_final_incidents_are_the_whole_analysis_in_its_order(
    window: int, in_memory: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every sample, and logs made of several samples (a later lm or ln enriching an earlier crash, counters
    pointing back at banners), with incidents settled at every look, a tiny enrichment window, and every
    packed crash and incident read back from the packer's temporary file."""
    monkeypatch.setattr(final, "SETTLE_EVERY", 1)
    monkeypatch.setattr(pipeline, "MAX_ENRICHABLE", window)
    if in_memory is not None:
        monkeypatch.setattr(kept, "PACKED_IN_MEMORY", in_memory)
        monkeypatch.setattr(kept._SpillFile, "BATCH", 1)  # written at once, the file rewritten often
    texts = [p.read_bytes() for p in SAMPLES if not p.read_bytes().startswith((b"\xff\xfe", b"\xfe\xff"))]
    for sample in SAMPLES:
        _same_as_whole(sample.name, sample.read_bytes())
    pick = random.Random(13)
    for number in range(12):
        _same_as_whole(f"mixed-{number}.log", b"\n".join(pick.sample(texts, 5)))


# ---------------------------------------------------------------------------------------- bounded memory


def peak_mb(tmp_path: Path, incidents: int, *args: str, copies: int = 1) -> float:
    """The peak RSS (MB) of ``analyze ARGS`` over ``copies`` dense logs of ``incidents`` banners each."""
    folder = tmp_path / f"dense-{incidents}-{copies}"
    folder.mkdir()
    for copy in range(copies):
        write_dense_log(folder / f"banners-{copy}.log", incidents)
    target = folder if copies > 1 else folder / "banners-0.log"
    command = [sys.executable, "-c", CHILD, "analyze", "-q", "-o", os.devnull, *args, str(target)]
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    assert child.stderr is not None
    error = child.stderr.read().decode()
    child.stderr.close()
    assert os.waitstatus_to_exitcode(status) == ExitCode.FINDINGS, error
    return usage.ru_maxrss / 1024  # KB on Linux


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss is in KB on Linux only")
@pytest.mark.parametrize(
    ("args", "copies"),
    [
        (("--format", "jsonl"), 1),
        (("--format", "json"), 1),
        (("--format", "jsonl", "--db", "{db}"), 1),
        (("--format", "json", "--jobs", "2"), 2),
    ],
    ids=["jsonl", "json", "db", "folder-jobs-2"],
)
def test_memory_does_not_grow_with_the_incidents(tmp_path: Path, args: tuple[str, ...], copies: int) -> None:
    """Before: +3.5 KB per incident (5,000 more incidents, +17 MB); now a few MB whatever the count."""
    peaks = []
    for incidents in (1_000, 6_000):
        filled = [a.replace("{db}", str(tmp_path / f"{incidents}.db")) for a in args]
        peaks.append(peak_mb(tmp_path, incidents, *filled, copies=copies))
    assert peaks[1] - peaks[0] < 6, peaks


# ---------------------------------------------------------------------------------- order and isolation


def test_the_report_is_the_same_for_any_jobs_when_units_wait_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two dense logs and the samples: with --jobs 2 the units that run ahead wait, here in a file (a tiny
    budget), and come out in plan order; the same bytes as --jobs 1."""
    monkeypatch.setattr(batch_run, "WAITING_IN_MEMORY", 4096)
    folder = tmp_path / "lab"
    folder.mkdir()
    write_dense_log(folder / "a-dense.log", 3000)
    for sample in SAMPLES[:6]:
        (folder / sample.name).write_bytes(sample.read_bytes())
    write_dense_log(folder / "z-dense.log", 2000)
    outputs = {}
    for jobs in ("1", "2"):
        for fmt in ("json", "jsonl"):
            code, out, err = analyze("-q", "--format", fmt, "--jobs", jobs, str(folder))
            assert code == ExitCode.FINDINGS, err
            outputs[jobs, fmt] = out
    assert outputs["1", "json"] == outputs["2", "json"]
    assert outputs["1", "jsonl"] == outputs["2", "jsonl"]
    report = json.loads(outputs["1", "json"])
    assert [Path(i["path"]).name for i in report["inputs"]] == sorted(p.name for p in folder.iterdir())
    assert report["summary"]["incidents"] == len(report["incidents"]) > 5000


def _streams_then_dies(unit: Unit, options: AnalyzeOptions) -> Iterator[Part]:
    """A worker that sends part of the input's incidents, then is killed (the OOM killer, a native fault)."""
    for number, part in enumerate(stream_unit(unit, options)):
        if number == 2 and Path(unit.name).name.startswith("killed"):
            os.kill(os.getpid(), signal.SIGKILL)
        yield part


def test_a_worker_killed_mid_stream_keeps_what_it_sent_and_names_the_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dense_log(tmp_path / "killed.log", 2000)
    write_dense_log(tmp_path / "whole.log", 600)
    monkeypatch.setattr(batch_run, "stream_unit", _streams_then_dies)
    batch = run_batch(
        plan([str(tmp_path / "killed.log"), str(tmp_path / "whole.log")]), AnalyzeOptions(), jobs=2
    )
    killed, whole = batch.results
    assert "died of SIGKILL" in killed.info.diagnostics[0].message
    assert 0 < len(killed.incidents) < 2000  # the batches that came before the kill
    assert len(whole.incidents) == 600 and not whole.info.diagnostics
    assert batch.report.incomplete


def test_one_text_log_runs_here_and_its_time_limit_still_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "one.log"
    write_dense_log(log, 50)
    units = plan([str(log)])
    assert inproc.eligible(units)
    # The input's incidents are made before the run: under the limit they are only handed over, so how
    # long the analysis takes (a cold start, a busy machine) cannot decide what is kept.
    parts = [part for part in stream_unit(units[0], AnalyzeOptions()) if isinstance(part, IncidentBatch)]

    def hangs(unit: Unit, options: AnalyzeOptions) -> Iterator[Part]:
        """The input's incidents, then a hang before the input is closed."""
        yield from parts
        threading.Event().wait()  # interrupted by the time limit

    monkeypatch.setattr(pool.IsolatedPool, "run", lambda *_: pytest.fail("a worker was started"))
    monkeypatch.setattr(inproc, "stream_unit", hangs)
    batch = run_batch(units, AnalyzeOptions(), timeout=lambda _: 0.5)
    (result,) = batch.results
    assert "time limit" in result.info.diagnostics[-1].message
    assert len(result.incidents) == 50  # parts made before the limit are kept
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL


def test_dumps_archives_and_several_inputs_still_go_to_workers(tmp_path: Path) -> None:
    log = tmp_path / "one.log"
    write_dense_log(log, 5)
    gz = tmp_path / "one.log.gz"
    gz.write_bytes(__import__("gzip").compress(log.read_bytes()))
    assert not inproc.eligible(plan([str(gz)]))
    assert not inproc.eligible(plan([str(log), str(LOGS / "lm-x64.txt")]))
    assert not inproc.eligible([Unit("x.dmp", data=b"PAGEDU64" + bytes(4096))])


# ---------------------------------------------------------------------------------------------- the store


def test_the_store_holds_what_the_report_says(tmp_path: Path) -> None:
    """The store is written as the batch streams (staged, then one transaction): inputs, incidents (the
    report's JSON objects, in its order) and findings (count, occurrences) are those of the JSON report."""
    folder = tmp_path / "lab"
    folder.mkdir()
    write_dense_log(folder / "dense.log", 1200)
    for sample in SAMPLES[:4]:
        (folder / sample.name).write_bytes(sample.read_bytes())
    db = tmp_path / "lab.db"
    code, out, _ = analyze("-q", "--format", "json", "--jobs", "2", "--db", str(db), str(folder))
    assert code == ExitCode.FINDINGS
    report = json.loads(out)
    with sqlite3.connect(db) as store:
        inputs = store.execute("SELECT id, path, lines FROM inputs ORDER BY id").fetchall()
        incidents = store.execute("SELECT input_id, data FROM incidents ORDER BY id").fetchall()
        findings = store.execute("SELECT bucket, count, occurrences FROM findings ORDER BY rowid").fetchall()
        run = store.execute("SELECT inputs, incidents, findings FROM runs").fetchall()
    assert [(path, lines) for _, path, lines in inputs] == [(i["path"], i["lines"]) for i in report["inputs"]]
    assert [json.loads(data) for _, data in incidents] == report["incidents"]
    by_id = {number: path for number, path, _ in inputs}
    assert all(by_id[input_id] == json.loads(data)["source"]["path"] for input_id, data in incidents)
    assert findings == [(f["bucket"], f["count"], len(f["occurrences"])) for f in report["findings"]]
    assert run == [(len(report["inputs"]), len(report["incidents"]), len(report["findings"]))]


class _FullDisk:
    """A temporary file on a full disk."""

    def write(self, _text: str) -> int:
        raise OSError(28, "No space left on device")

    def close(self) -> None:
        pass


def test_a_full_temporary_disk_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tempfile, "TemporaryFile", lambda *_, **__: _FullDisk())
    code = main(["analyze", "--format", "jsonl", str(LOGS / "session-pool-type-haxm.log")])
    out, err = capsys.readouterr()
    assert code == ExitCode.USAGE and out == ""
    assert (
        err.strip() == "hvci-triage: cannot keep the run's data in a temporary file: No space left on device"
    )
