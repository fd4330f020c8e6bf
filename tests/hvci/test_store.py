"""The results store: runs appended whole, known inputs skipped, concurrent writers, a killed writer, schema
versions, and the roll-up across runs."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.exitcodes import ExitCode
from cli.main import cli
from hvci.batch.store import SCHEMA_VERSION, Store, StoreError
from tests.hvci.batch_corpus import LOGS

ROOT = Path(__file__).resolve().parents[2]
HAXM = LOGS / "session-pool-type-haxm.log"
NON_HVCI = LOGS / "session-non-hvci-d1-50.log"
NUMBERS = LOGS / "session-numbers-only-and-fc.log"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


def lab(tmp_path: Path, *sources: Path) -> Path:
    folder = tmp_path / "lab"
    folder.mkdir(exist_ok=True)
    for source in sources:
        (folder / source.name).write_bytes(source.read_bytes())
    return folder


def test_a_run_is_recorded_and_known_inputs_are_skipped_unless_forced(tmp_path: Path) -> None:
    db = tmp_path / "lab.db"
    folder = lab(tmp_path, HAXM, NON_HVCI)
    code, _, _ = invoke("analyze", "-q", "--db", str(db), str(folder))
    assert code == ExitCode.FINDINGS
    assert rows(db, "SELECT COUNT(*) FROM runs") == [(1,)]
    assert rows(db, "SELECT COUNT(*) FROM inputs WHERE sha256 IS NOT NULL") == [(2,)]
    incidents = rows(db, "SELECT COUNT(*) FROM incidents")[0][0]
    assert isinstance(incidents, int) and incidents >= 2
    assert rows(db, "PRAGMA journal_mode") == [("wal",)]
    assert rows(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    lab(tmp_path, NUMBERS)  # one new input beside the two known ones
    code, out, err = invoke("analyze", "--format", "json", "--db", str(db), str(folder))
    assert err.strip() == f"hvci-triage: 2 input(s) already in {db}, not read again (--force reads them)"
    data = json.loads(out)
    skipped = [
        i
        for i in data["inputs"]
        if i["diagnostics"] and "already in the results store" in i["diagnostics"][0]["message"]
    ]
    assert len(skipped) == 2 and all(i["diagnostics"][0]["severity"] == "info" for i in skipped)
    assert {i["source"]["path"] for i in data["incidents"]} == {str(folder / NUMBERS.name)}
    code, out, _ = invoke("analyze", "--format", "json", "-q", "--force", "--db", str(db), str(folder))
    assert len({i["source"]["path"] for i in json.loads(out)["incidents"]}) == 3
    assert rows(db, "SELECT COUNT(*) FROM runs") == [(3,)]


def _analyze_process(db: Path, folder: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "analyze",
            "-q",
            "--force",
            "--jobs",
            "1",
            "--db",
            str(db),
            str(folder),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_two_concurrent_runs_both_land_whole(tmp_path: Path) -> None:
    db = tmp_path / "lab.db"
    folder = lab(tmp_path, HAXM, NON_HVCI, NUMBERS)
    first, second = _analyze_process(db, folder), _analyze_process(db, folder)
    for process in (first, second):
        _, err = process.communicate()
        assert process.returncode == ExitCode.FINDINGS, err.decode()
    runs = rows(db, "SELECT id, inputs, incidents FROM runs ORDER BY id")
    assert len(runs) == 2 and runs[0][1:] == runs[1][1:]
    for run_id, inputs, incidents in runs:
        assert rows(db, f"SELECT COUNT(*) FROM inputs WHERE run_id = {run_id}") == [(inputs,)]
        assert rows(db, f"SELECT COUNT(*) FROM incidents WHERE run_id = {run_id}") == [(incidents,)]
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]


OPENERS = 6


def test_stores_opened_at_once_on_a_new_file_all_open(tmp_path: Path) -> None:
    """Switching a new file to WAL answers SQLITE_BUSY without waiting; every opener must still get the store.

    Several rounds, as the race is lost only now and then (about one round in four without the retry).
    """
    for round_number in range(12):
        path = tmp_path / f"new-{round_number}.db"
        start = threading.Barrier(OPENERS)
        failures: list[StoreError] = []

        def open_store(
            path: Path = path, start: threading.Barrier = start, failures: list[StoreError] = failures
        ) -> None:
            start.wait()
            try:
                Store(path).close()
            except StoreError as error:
                failures.append(error)

        threads = [threading.Thread(target=open_store) for _ in range(OPENERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, failures
        assert rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


KILLED_WRITER = textwrap.dedent(
    """
    import sys, threading
    from hvci.batch.run import run_batch
    from hvci.batch.store import Store
    from hvci.batch.units import plan
    from hvci.batch.work import IncidentBatch
    from hvci.findings import group_findings
    from hvci.logs.pipeline import AnalyzeOptions

    batch = run_batch(plan([sys.argv[2]]), AnalyzeOptions(), jobs=1)
    found = group_findings(batch.report.incidents)

    class Stalls:
        '''The findings, stalling half-way through the transaction (inputs and incidents copied in).'''
        def __len__(self): return len(found)
        def __iter__(self):
            yield found[0]
            sys.stdout.write("in the transaction\\n"); sys.stdout.flush()
            threading.Event().wait()

    writer = Store(sys.argv[1]).writer()
    for result in batch.results:  # staged as a streaming run stages them
        writer.add(IncidentBatch(result.incidents))
        writer.add(result)
    writer.commit(command="killed", findings=Stalls(), incomplete=False)
    """
)


def test_a_run_killed_while_writing_leaves_no_trace(tmp_path: Path) -> None:
    db = tmp_path / "lab.db"
    folder = lab(tmp_path, HAXM, NON_HVCI)
    assert invoke("analyze", "-q", "--db", str(db), str(folder))[0] == ExitCode.FINDINGS
    before = rows(
        db,
        "SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM inputs), (SELECT COUNT(*) FROM incidents)",
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(db), str(folder)], cwd=ROOT, stdout=subprocess.PIPE
    )
    assert writer.stdout is not None
    assert writer.stdout.readline() == b"in the transaction\n"  # waits for the writer, no sleep
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    after = rows(
        db,
        "SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM inputs), (SELECT COUNT(*) FROM incidents)",
    )
    assert after == before
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert invoke("analyze", "-q", "--force", "--db", str(db), str(folder))[0] == ExitCode.FINDINGS
    assert rows(db, "SELECT COUNT(*) FROM runs") == [(2,)]


def test_a_store_from_a_newer_version_or_not_a_store_is_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as connection:
        connection.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer hvci-triage"):
        Store(newer)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    code, _, err = invoke("analyze", "--db", str(junk), str(HAXM))
    assert code == ExitCode.USAGE and "cannot use" in err and "Traceback" not in err


def test_the_rollup_counts_buckets_and_drivers_across_runs(tmp_path: Path) -> None:
    db = tmp_path / "lab.db"
    folder = lab(tmp_path, HAXM)
    invoke("analyze", "-q", "--db", str(db), str(folder))
    invoke("analyze", "-q", "--force", "--db", str(db), str(folder))
    lab(tmp_path, NUMBERS)
    invoke("analyze", "-q", "--force", "--db", str(db), str(folder))
    code, out, _ = invoke("report", "--db", str(db), "--format", "json")
    data = json.loads(out)
    assert code == ExitCode.OK and len(data["runs"]) == 3
    haxm = next(b for b in data["buckets"] if b["driver"] and "haxm" in b["driver"].lower())
    assert haxm["runs"] == 3 and haxm["trend"] == [1, 1, 1] and haxm["direction"] == "steady"
    fresh = [b for b in data["buckets"] if b["runs"] == 1]
    assert fresh and all(b["trend"] == [0, 0, 1] and b["direction"] == "new" for b in fresh)
    assert sum(d["count"] for d in data["drivers"]) == sum(b["count"] for b in data["buckets"])
    text = invoke("report", "--db", str(db))[1]
    assert "Buckets" in text and "Drivers" in text and "Runs" in text
    html = invoke("report", "--db", str(db), "--format", "html")[1]
    assert html.count("<svg") == 3 and "<script" not in html
    assert (
        json.loads(invoke("report", "--db", str(db), "--format", "json", "--since", "2999-01-01")[1])["runs"]
        == []
    )
    code, _, err = invoke("report", "--db", str(db), "--since", "yesterday")
    assert code == ExitCode.USAGE and "ISO date" in err
