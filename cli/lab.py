"""What ``analyze`` does around a batch for a lab: the results store (``--db``, ``--force``) and the baseline
(``--baseline REPORT.json``, ``--baseline-run N|last``), between planning, running and rendering.

Order matters for the store: known inputs are dropped before the run (so they cost a hash, not an
analysis), the baseline run is looked up before this one is recorded (``--baseline-run last`` is the run
before this one), and the run is recorded after the analysis, in one transaction, before the report is
written (the store keeps the run even when stdout is a closed pipe).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click
import msgspec
from msgspec.structs import replace

from cli.output import warn
from hvci.batch.units import Unit, skip_known

if TYPE_CHECKING:  # the store (sqlite3) and the baseline reader are imported by the runs that use them
    from hvci.batch.baseline import Keyed
    from hvci.batch.store import Store


class LabOptions(msgspec.Struct, frozen=True):
    db: str | None = None
    force: bool = False
    baseline: str | None = None
    baseline_run: str | None = None

    def check(self) -> None:
        if self.baseline_run is not None and self.db is None:
            raise click.UsageError("--baseline-run needs --db (the store holding that run)")
        if self.baseline is not None and self.baseline_run is not None:
            raise click.UsageError("give --baseline or --baseline-run, not both")


def open_store(path: str) -> Store:
    from hvci.batch.store import Store, StoreError

    try:
        return Store(path)
    except StoreError as error:
        raise click.UsageError(str(error)) from None


def before_run(units: Sequence[Unit], lab: LabOptions, store: Store | None, *, quiet: bool) -> list[Unit]:
    """The units to run: without those the store already has, unless ``--force`` (one line says how many
    were left out, unless ``-q``). Without a store, no file's SHA-256 is computed."""
    if store is None:
        return [replace(unit, hashed=False) for unit in units]
    if lab.force:
        return list(units)
    kept = skip_known(units, store.known)
    skipped = sum(1 for before, after in zip(units, kept, strict=True) if before is not after)
    if skipped and not quiet:
        warn(f"{skipped} input(s) already in {store.path}, not read again (--force reads them)")
    return kept


def baseline_keys(lab: LabOptions, store: Store | None) -> tuple[list[Keyed], str] | None:
    """The earlier buckets and where they came from, or None without a baseline."""
    if lab.baseline is not None:
        from hvci.batch.baseline import BaselineError, entries, keys, load_report

        try:
            return keys(entries(load_report(lab.baseline))), lab.baseline
        except BaselineError as error:
            raise click.UsageError(str(error)) from None
    if lab.baseline_run is None or store is None:
        return None
    run = store.last_run() if lab.baseline_run == "last" else _run_number(lab.baseline_run)
    if run is None:
        raise click.UsageError(f"{store.path} holds no run yet to compare with")
    found = store.findings_of(run)
    return [(f.bucket, f.aliases) for f in found], f"run {run} of {store.path}"


def _run_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise click.UsageError(f"--baseline-run takes a run number or 'last', not {text!r}") from None
