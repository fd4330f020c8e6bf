"""The results store (``--db FILE``): every batch run appended to one SQLite file a lab keeps.

Standard library ``sqlite3`` only. What makes it safe to share:

* **WAL journal** and a busy timeout: readers never block the writer, and two runs writing at once wait for
  each other instead of failing ("database is locked"). Opening is retried as well (:func:`_retry_busy`):
  switching a new file to WAL and reading a WAL another process is recovering answer ``SQLITE_BUSY`` at
  once, without the busy handler, so two runs started together on a new store would otherwise fail;
* **one transaction per run**, opened only once the run's analysis is done (``BEGIN IMMEDIATE`` ...
  ``COMMIT``): a run killed at any moment leaves either all of its rows or none, never a half-written run.
  Until then a :class:`RunWriter` writes inputs and incidents as the batch streams them into a private
  temporary database attached to the connection (memory stays flat however many incidents a run has); the
  transaction copies them over in SQL;
* **a schema version** (``PRAGMA user_version``) and ordered migrations applied in a transaction of their
  own when an older store is opened; a store made by a newer hvci-triage is refused, not damaged.

Tables: ``runs`` (when, what command, which tool version, totals), ``inputs`` (name, SHA-256, size, format,
encoding, diagnostics), ``incidents`` (every incident, its bucket and the full JSON object of the report) and
``findings`` (one row per bucket per run: count, occurrences, aliases). An input whose content hash is
already in the store is skipped by the next run unless ``--force`` (:meth:`Store.known`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from hvci.batch.run import BatchResult
from hvci.batch.work import IncidentBatch, InputResult
from hvci.findings import FindingLike, group_findings, joined_buckets
from hvci.model import Incident
from hvci.report.json_report import dumps, incident_dict
from hvci.report.rollup import BucketRow, DriverRow, Rollup, RunRow

#: How long a writer waits for another one to commit (seconds).
BUSY_TIMEOUT = 60.0

#: The first pause before opening the store again after ``SQLITE_BUSY`` (seconds); it doubles up to a second.
FIRST_RETRY_PAUSE = 0.01

#: Trend columns in the roll-up: the last this many runs.
TREND_RUNS = 8

#: The schema, one migration per version: the store's ``user_version`` says how many have been applied.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started TEXT NOT NULL,
        finished TEXT NOT NULL,
        tool_version TEXT NOT NULL,
        command TEXT NOT NULL,
        inputs INTEGER NOT NULL,
        incidents INTEGER NOT NULL,
        findings INTEGER NOT NULL,
        incomplete INTEGER NOT NULL
    );
    CREATE TABLE inputs (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        path TEXT NOT NULL,
        sha256 TEXT,
        size INTEGER NOT NULL,
        format TEXT NOT NULL,
        encoding TEXT NOT NULL,
        lines INTEGER NOT NULL,
        diagnostics TEXT NOT NULL
    );
    CREATE INDEX inputs_by_hash ON inputs(sha256);
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        input_id INTEGER NOT NULL REFERENCES inputs(id),
        incident TEXT NOT NULL,
        bucket TEXT NOT NULL,
        category TEXT,
        hvci_related INTEGER NOT NULL,
        confidence TEXT NOT NULL,
        driver TEXT,
        count INTEGER NOT NULL,
        first_line INTEGER NOT NULL,
        last_line INTEGER NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX incidents_by_run ON incidents(run_id);
    CREATE TABLE findings (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        bucket TEXT NOT NULL,
        aliases TEXT NOT NULL,
        category TEXT,
        driver TEXT,
        hvci_related INTEGER NOT NULL,
        title TEXT NOT NULL,
        count INTEGER NOT NULL,
        occurrences INTEGER NOT NULL,
        PRIMARY KEY (run_id, bucket)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

#: The staging tables of a :class:`RunWriter` (in the attached temporary database ``stage``): the columns
#: of ``inputs`` and ``incidents`` without the run, inputs numbered from 1 in report order.
_STAGE = """
    CREATE TABLE stage.inputs (seq INTEGER PRIMARY KEY, path TEXT, sha256 TEXT, size INTEGER, format TEXT,
        encoding TEXT, lines INTEGER, diagnostics TEXT);
    CREATE TABLE stage.incidents (input_seq INTEGER, incident TEXT, bucket TEXT, category TEXT,
        hvci_related INTEGER, confidence TEXT, driver TEXT, count INTEGER, first_line INTEGER,
        last_line INTEGER, data TEXT)
"""
_INPUT_COLUMNS = "path, sha256, size, format, encoding, lines, diagnostics"
_INCIDENT_COLUMNS = (
    "incident, bucket, category, hvci_related, confidence, driver, count, first_line, last_line, data"
)


class StoreError(Exception):
    """The store cannot be used (not SQLite, made by a newer version, cannot be written); one line."""


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """A bucket as a baseline needs it: its key and aliases."""

    bucket: str
    aliases: tuple[str, ...]


def _retry_busy(step: Callable[[], None]) -> None:
    """Run ``step`` again while SQLite answers busy or locked, for up to :data:`BUSY_TIMEOUT`."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    pause = FIRST_RETRY_PAUSE
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as error:
            busy = error.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _version() -> str:
    try:
        return metadata.version("hvci-triage")
    except metadata.PackageNotFoundError:
        return "unknown"


class Store:
    """One open store; use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
            _retry_busy(self._prepare)
        except sqlite3.DatabaseError as error:
            raise StoreError(f"cannot use {self.path} as a results store: {error}") from None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def _prepare(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then see it done
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} was made by a newer hvci-triage (store schema {version}, this one knows "
                    f"{SCHEMA_VERSION}); upgrade hvci-triage"
                )
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------------------------------ writing

    def writer(self) -> RunWriter:
        """A run to be written as it streams; :meth:`RunWriter.commit` appends it."""
        return RunWriter(self._db, self.path)

    def record(self, batch: BatchResult, *, command: str, started: str | None = None) -> int:
        """Append a whole run (its results with their incidents) in one transaction; returns its id."""
        writer = self.writer()
        started = started or _now()
        try:
            for result in batch.results:
                writer.add(IncidentBatch(result.incidents))
                writer.add(result)
            return writer.commit(
                command=command,
                started=started,
                findings=group_findings(batch.report.incidents),
                incomplete=batch.report.incomplete,
            )
        finally:
            writer.close()

    # ------------------------------------------------------------------------------------------ reading

    def known(self, hashes: Iterable[str]) -> dict[str, int]:
        """Content hash -> the first run that read it, for the hashes already in the store."""
        found: dict[str, int] = {}
        for sha256 in set(hashes):
            row = self._db.execute("SELECT MIN(run_id) FROM inputs WHERE sha256 = ?", (sha256,)).fetchone()
            if row[0] is not None:
                found[sha256] = row[0]
        return found

    def last_run(self) -> int | None:
        return self._db.execute("SELECT MAX(id) FROM runs").fetchone()[0]  # type: ignore[no-any-return]

    def findings_of(self, run_id: int) -> list[StoredFinding]:
        """A run's buckets, for use as a baseline."""
        rows = self._db.execute(
            "SELECT bucket, aliases FROM findings WHERE run_id = ? ORDER BY rowid", (run_id,)
        )
        return [StoredFinding(bucket, tuple(json.loads(aliases))) for bucket, aliases in rows]

    def runs(self, since: str | None = None) -> list[RunRow]:
        rows = self._db.execute(
            "SELECT id, started, inputs, incidents, findings, command FROM runs WHERE started >= ? "
            "ORDER BY id",
            (since or "",),
        )
        return [RunRow(*row) for row in rows]

    def rollup(self, since: str | None = None) -> Rollup:
        """Per bucket and per driver across the runs started at or after ``since`` (ISO date or time)."""
        runs = self.runs(since)
        started = {r.id: r.started for r in runs}
        rows = self._db.execute(
            "SELECT f.run_id, f.bucket, f.aliases, f.category, f.driver, f.hvci_related, f.title, f.count "
            "FROM findings f JOIN runs r ON r.id = f.run_id WHERE r.started >= ? ORDER BY f.run_id, f.rowid",
            (since or "",),
        ).fetchall()
        joined = joined_buckets((bucket, tuple(json.loads(aliases))) for _, bucket, aliases, *_ in rows)
        per_bucket: dict[str, list[tuple[int, int, str | None, str | None, bool, str]]] = defaultdict(list)
        for run_id, bucket, _, category, driver, hvci, title, count in rows:
            per_bucket[joined.get(bucket, bucket)].append(
                (run_id, count, category, driver, bool(hvci), title)
            )
        last_runs = [r.id for r in runs][-TREND_RUNS:]
        buckets = sorted(
            (_bucket_row(bucket, seen, started, last_runs) for bucket, seen in per_bucket.items()),
            key=lambda b: (-b.count, b.bucket),
        )
        categories: dict[str, int] = defaultdict(int)
        for row in buckets:
            categories[row.category or "not HVCI-related"] += row.count
        return Rollup(
            store=self.path,
            since=since,
            runs=tuple(runs),
            buckets=tuple(buckets),
            drivers=_drivers(buckets),
            by_category=tuple(sorted(categories.items(), key=lambda item: (-item[1], item[0]))),
        )


def _bucket_row(
    bucket: str,
    seen: list[tuple[int, int, str | None, str | None, bool, str]],
    started: dict[int, str],
    last_runs: list[int],
) -> BucketRow:
    counts: dict[int, int] = defaultdict(int)
    for run_id, count, *_ in seen:
        counts[run_id] += count
    _, _, category, driver, hvci, title = seen[-1]
    return BucketRow(
        bucket=bucket,
        category=category,
        driver=driver,
        hvci_related=hvci,
        title=title,
        count=sum(counts.values()),
        runs=len(counts),
        first_seen=started[min(counts)],
        last_seen=started[max(counts)],
        trend=tuple(counts.get(run_id, 0) for run_id in last_runs),
    )


def _drivers(buckets: Sequence[BucketRow]) -> tuple[DriverRow, ...]:
    grouped: dict[str, list[BucketRow]] = defaultdict(list)
    for row in buckets:
        grouped[row.driver or "(unknown driver)"].append(row)
    drivers = [
        DriverRow(
            driver=name,
            count=sum(r.count for r in rows),
            buckets=len(rows),
            first_seen=min(r.first_seen for r in rows),
            last_seen=max(r.last_seen for r in rows),
        )
        for name, rows in grouped.items()
    ]
    return tuple(sorted(drivers, key=lambda d: (-d.count, d.driver)))


class RunWriter:
    """One run being written: :meth:`add` each part of the batch in order (:mod:`hvci.batch.work`), then
    :meth:`commit`. Nothing reaches the store before the commit (see the module docstring)."""

    def __init__(self, db: sqlite3.Connection, path: str) -> None:
        self._db = db
        self._path = path
        self._inputs = 0
        self._incidents = 0
        self._started = _now()
        try:
            db.execute("ATTACH DATABASE '' AS stage")
            for statement in _STAGE.split(";"):
                db.execute(statement)
        except sqlite3.DatabaseError as error:
            raise StoreError(f"cannot stage the run for {path}: {error}") from None

    def add(self, part: IncidentBatch | InputResult) -> None:
        try:
            if isinstance(part, IncidentBatch):
                self._add_incidents(part.incidents)
            else:
                self._add_input(part)
        except sqlite3.DatabaseError as error:  # the temporary database's disk is full
            raise StoreError(f"cannot stage the run for {self._path}: {error}") from None

    def _add_input(self, result: InputResult) -> None:
        info = result.info
        diagnostics = dumps([{"message": d.message, "severity": d.severity} for d in info.diagnostics])
        self._inputs += 1
        self._db.execute(
            f"INSERT INTO stage.inputs (seq, {_INPUT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self._inputs,
                info.path,
                result.sha256,
                result.size,
                info.format,
                info.encoding,
                info.lines,
                diagnostics,
            ),
        )

    def _add_incidents(self, incidents: Sequence[Incident]) -> None:
        """Incidents of the input being read (the next one :meth:`add` closes)."""
        self._incidents += len(incidents)
        seq = self._inputs + 1
        self._db.executemany(
            f"INSERT INTO stage.incidents (input_seq, {_INCIDENT_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    seq,
                    i.id,
                    i.bucket,
                    i.category,
                    int(i.hvci_related),
                    i.confidence,
                    i.driver,
                    i.count,
                    i.source.first_line,
                    i.source.last_line,
                    dumps(incident_dict(i)),
                )
                for i in incidents
            ),
        )

    def commit(
        self,
        *,
        command: str,
        findings: Sequence[FindingLike],
        incomplete: bool,
        started: str | None = None,
    ) -> int:
        """Append the run in one transaction; returns its id."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            run_id = self._insert_run(command, started or self._started, len(findings), incomplete)
            base = db.execute("SELECT COALESCE(MAX(id), 0) FROM inputs").fetchone()[0]
            db.execute(
                f"INSERT INTO inputs (id, run_id, {_INPUT_COLUMNS}) "
                f"SELECT ? + seq, ?, {_INPUT_COLUMNS} FROM stage.inputs ORDER BY seq",
                (base, run_id),
            )
            db.execute(
                f"INSERT INTO incidents (run_id, input_id, {_INCIDENT_COLUMNS}) "
                f"SELECT ?, ? + input_seq, {_INCIDENT_COLUMNS} FROM stage.incidents ORDER BY rowid",
                (run_id, base),
            )
            db.executemany(
                "INSERT INTO findings (run_id, bucket, aliases, category, driver, hvci_related, title, "
                "count, occurrences) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        run_id,
                        f.bucket,
                        json.dumps(list(f.aliases)),
                        f.incident.category,
                        f.incident.driver,
                        int(f.incident.hvci_related),
                        f.incident.title,
                        f.count,
                        f.size,
                    )
                    for f in findings
                ),
            )
            db.execute("COMMIT")
        except sqlite3.DatabaseError as error:
            db.execute("ROLLBACK")
            raise StoreError(f"cannot write the run to {self._path}: {error}") from None
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return run_id

    def _insert_run(self, command: str, started: str, findings: int, incomplete: bool) -> int:
        cursor = self._db.execute(
            "INSERT INTO runs (started, finished, tool_version, command, inputs, incidents, findings, "
            "incomplete) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (started, _now(), _version(), command, self._inputs, self._incidents, findings, int(incomplete)),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def close(self) -> None:
        """Drop the staging database (the store keeps what :meth:`commit` wrote)."""
        self._db.execute("DETACH DATABASE stage")
