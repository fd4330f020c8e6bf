"""Batch runs: every good input analysed, every bad one named, the same report for any parallelism, and one
crash or hang costing one input."""

from __future__ import annotations

import json
import os
import pickle
import signal
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.exitcodes import ExitCode
from cli.main import cli
from hvci.batch import run as batch_run
from hvci.batch.events import DONE
from hvci.batch.pool import IsolatedPool
from hvci.batch.run import run_batch
from hvci.batch.units import Unit, plan
from hvci.batch.work import Part, stream_unit
from hvci.logs.pipeline import AnalyzeOptions
from hvci.report import render
from tests.hvci.batch_corpus import LOGS, build

HAXM = LOGS / "session-pool-type-haxm.log"
NON_HVCI = LOGS / "session-non-hvci-d1-50.log"


def analyze(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["analyze", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_a_lab_folder_every_good_input_read_every_bad_one_named_for_any_jobs(tmp_path: Path) -> None:
    corpus = build(tmp_path / "lab", logs=12)
    reports = {}
    for jobs in ("1", "2"):
        code, out, err = analyze("--format", "json", "--jobs", jobs, str(corpus.folder))
        assert code == ExitCode.FINDINGS and "Traceback" not in err
        reports[jobs] = out
    assert reports["1"] == reports["2"]
    data = json.loads(reports["1"])
    errors = {i["path"]: [d for d in i["diagnostics"] if d["severity"] == "error"] for i in data["inputs"]}
    assert len(data["inputs"]) == corpus.inputs
    for name in corpus.good + corpus.empty:
        assert errors[name] == [], name
    for name in corpus.bad:
        assert errors[name], f"{name} must be named with an error"
        assert name in err or name.rsplit("/", 1)[-1] in err  # and on stderr
    read = {i["source"]["path"] for i in data["incidents"]}
    assert read >= {n for n in corpus.good if "utf16-nobom" not in n}
    duplicates = [
        f for f in data["findings"] if any("duplicate-a" in o["source"]["path"] for o in f["occurrences"])
    ]
    assert duplicates and all(
        {"duplicate-a.log", "duplicate-b.log"} <= {Path(o["source"]["path"]).name for o in f["occurrences"]}
        for f in duplicates
    )


def test_archive_members_are_named_after_their_archive(tmp_path: Path) -> None:
    corpus = build(tmp_path / "lab", logs=0)
    code, out, _ = analyze("--format", "json", "-q", str(corpus.folder / "odd" / "lab.zip"))
    data = json.loads(out)
    assert [i["path"] for i in data["inputs"]] == [
        f"{corpus.folder}/odd/lab.zip!host1/kd.log",
        f"{corpus.folder}/odd/lab.zip!host2/verifier.txt",
    ]
    assert data["incidents"][0]["id"].startswith(f"{corpus.folder}/odd/lab.zip!host1/kd.log:")
    assert code == ExitCode.FINDINGS


def test_stdin_can_be_a_tar_gz(tmp_path: Path) -> None:
    corpus = build(tmp_path / "lab", logs=0)
    data = (corpus.folder / "odd" / "lab.tar.gz").read_bytes()
    result = CliRunner().invoke(cli, ["analyze", "--format", "json", "-"], input=data, catch_exceptions=False)
    assert [i["path"] for i in json.loads(result.stdout)["inputs"]] == [
        "<stdin>!a/one.log",
        "<stdin>!b/two.log",
    ]


def test_a_folder_holding_only_unreadable_entries_is_never_clean(tmp_path: Path) -> None:
    folder = tmp_path / "lab"
    folder.mkdir()
    os.symlink(folder / "gone.log", folder / "dangling.log")
    code, out, err = analyze(str(folder))
    assert code == ExitCode.USAGE and "dangling" in err
    (folder / "ok.log").write_bytes(NON_HVCI.read_bytes())  # no HVCI finding, one input unreadable
    code, out, err = analyze(str(folder))
    assert code == ExitCode.INCOMPLETE and "dangling.log: a dangling link" in err


def test_a_fifo_in_a_folder_is_named_not_opened(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    folder = tmp_path / "lab"
    folder.mkdir()
    os.mkfifo(folder / "pipe.log")
    (folder / "ok.log").write_bytes(NON_HVCI.read_bytes())
    code, _, err = analyze(str(folder))  # would block for ever if the FIFO were opened
    assert code == ExitCode.INCOMPLETE and "pipe.log: a FIFO" in err


def test_a_nul_byte_in_the_head_does_not_drop_a_log(tmp_path: Path) -> None:
    folder = tmp_path / "lab"
    folder.mkdir()
    data = HAXM.read_bytes()
    (folder / "serial.log").write_bytes(data[:50] + b"\x00" + data[50:])
    code, out, _ = analyze("--format", "json", str(folder))
    assert code == ExitCode.FINDINGS and json.loads(out)["incidents"]


def test_globs_are_expanded_here(tmp_path: Path) -> None:
    for name in ("a.log", "b.log", "c.txt"):
        (tmp_path / name).write_bytes(HAXM.read_bytes())
    code, out, _ = analyze("--format", "json", str(tmp_path / "*.log"))
    assert [Path(i["path"]).name for i in json.loads(out)["inputs"]] == ["a.log", "b.log"]
    code, _, err = analyze(str(tmp_path / "*.nothing"))
    assert code == ExitCode.USAGE and "no file matches" in err


def test_stats_is_one_json_line_on_stderr(tmp_path: Path) -> None:
    code, out, err = analyze("-q", "--stats", "--jobs", "2", str(HAXM), str(NON_HVCI))
    stats = json.loads(err.strip().splitlines()[-1])
    assert stats["inputs"] == 2 and stats["jobs"] == 2 and stats["bytes"] > 0 and stats["findings"] >= 2
    assert {"files_per_second", "mb_per_second", "seconds"} <= stats.keys()


# ---------------------------------------------------------------------------------------------- isolation


def _hostile(unit: Unit, options: AnalyzeOptions) -> Iterator[Part]:
    """A stand-in for a native reader gone wrong, chosen by the input's file name."""
    name = Path(unit.name).name
    if name == "segfault.log":
        os.kill(os.getpid(), signal.SIGSEGV)
    if name == "hang.log":
        threading.Event().wait()  # blocks until the pool's time limit ends the worker
    if name == "raise.log":
        raise RuntimeError("bug in a parser")
    return stream_unit(unit, options)


def _units(tmp_path: Path, names: Sequence[str]) -> list[Unit]:
    paths = []
    for name in names:
        path = tmp_path / name
        path.write_bytes(HAXM.read_bytes())
        paths.append(str(path))
    return plan(paths)


def test_a_crash_a_hang_and_a_bug_cost_one_input_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ["a.log", "segfault.log", "b.log", "hang.log", "raise.log", "c.log"]
    units = _units(tmp_path, names)
    monkeypatch.setattr(batch_run, "stream_unit", _hostile)
    limit = {str(tmp_path / "hang.log"): 2.0}
    batch = run_batch(units, AnalyzeOptions(), jobs=2, timeout=lambda unit: limit.get(unit.name))
    messages = {
        Path(r.info.path).name: [d.message for d in r.info.diagnostics if d.severity == "error"]
        for r in batch.results
    }
    assert "SIGSEGV" in messages["segfault.log"][0]
    assert "time limit" in messages["hang.log"][0]
    assert "RuntimeError: bug in a parser" in messages["raise.log"][0]
    assert all(
        messages[n] == [] and r.incidents for n, r in zip(names, batch.results, strict=True) if n[0] in "abc"
    )
    assert [Path(r.info.path).name for r in batch.results] == names  # plan order, whatever finished first
    assert "analysis INCOMPLETE" in render(batch.report, "text")


def _multiples(value: int) -> Iterator[int]:
    return iter(range(value, value * 4, value or 1))


def test_the_pool_streams_every_part_of_every_item_once_then_ends_it() -> None:
    pool: IsolatedPool[int] = IsolatedPool(_multiples, jobs=3)
    parts: dict[int, list[object]] = {}
    for index, event in pool.run(list(range(20))):
        parts.setdefault(index, []).append(event if not isinstance(event, bytes) else pickle.loads(event))
    assert parts == {n: [*range(n, n * 4, n or 1), DONE] for n in range(20)}


# ------------------------------------------------------------------------------------------------ cluster


def test_a_dask_cluster_gives_the_same_report_as_local_workers(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
    corpus = build(tmp_path / "lab", logs=6)
    local = analyze("--format", "json", "-q", "--jobs", "1", str(corpus.folder))
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        address = cluster.scheduler_address
        remote = analyze("--format", "json", "-q", "--scheduler", address, str(corpus.folder))
    assert remote[0] == local[0] == ExitCode.FINDINGS
    assert remote[1] == local[1]


def test_an_unreachable_scheduler_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    import socket

    monkeypatch.setattr("hvci.batch.distributed.CONNECT_TIMEOUT", "1s")
    with socket.socket() as probe:  # a port nobody listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        code, out, err = analyze("--scheduler", f"tcp://127.0.0.1:{port}", str(HAXM))
    assert code == ExitCode.USAGE and out == "" and "cannot reach the Dask scheduler" in err


def test_a_file_is_hashed_only_for_the_results_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SHA-256 costs as much CPU as grep's whole search: a run without ``--db`` does without, and a file
    read without it is still a read input (exit 1 for its findings, not 2 for "nothing could be read")."""
    from cli import lab
    from hvci.batch import work

    hashed: list[str] = []
    real = work.content_hash
    monkeypatch.setattr(work, "content_hash", lambda path: hashed.append(path) or real(path))
    (unit,) = lab.before_run(plan([str(HAXM)]), lab.LabOptions(None, False, None, None), None, quiet=True)
    assert not unit.hashed
    (result,) = [p for p in stream_unit(unit, AnalyzeOptions()) if not isinstance(p, work.IncidentBatch)]
    assert hashed == [] and result.sha256 is None and not batch_run.unread(result)
    (result,) = [
        p
        for p in stream_unit(Unit(str(HAXM), str(HAXM)), AnalyzeOptions())
        if isinstance(p, work.InputResult)
    ]
    assert hashed == [str(HAXM)] and result.sha256 == real(str(HAXM))
    code, _, _ = analyze("-q", "--format", "json", str(HAXM))
    assert code == ExitCode.FINDINGS and hashed == [str(HAXM)]
    (missing,) = list(stream_unit(Unit("gone", str(tmp_path / "gone"), hashed=False), AnalyzeOptions()))
    assert isinstance(missing, work.InputResult) and batch_run.unread(missing)


@pytest.mark.parametrize("hashed", [False, True])
def test_bytes_in_memory_are_hashed_only_for_the_results_store(tmp_path: Path, hashed: bool) -> None:
    """Standard input, and a gzip file's or an archive member's bytes, follow the unit as a file does."""
    import gzip
    import hashlib

    from hvci.batch import work

    data = HAXM.read_bytes()
    packed = tmp_path / "haxm.log.gz"
    packed.write_bytes(gzip.compress(data))
    expected = hashlib.sha256(data).hexdigest() if hashed else None
    for unit in (Unit("<stdin>", data=data, hashed=hashed), Unit(str(packed), str(packed), hashed=hashed)):
        (result,) = [p for p in stream_unit(unit, AnalyzeOptions()) if isinstance(p, work.InputResult)]
        assert result.sha256 == expected and not batch_run.unread(result)
