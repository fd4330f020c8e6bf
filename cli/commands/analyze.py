"""``hvci-triage analyze PATH... | -``: the headless triage of logs, for CI and lab batch runs.

Folders expand to the files under them (recursively, sorted, hidden entries skipped), glob patterns are
expanded here (cmd and PowerShell do not), ``.zip``, ``.tar`` and ``.tar.gz`` archives are read in place
(members named ``lab.zip!host1/kd.log``) and ``.gz`` logs decompressed; crash dumps and event logs are
read, and a file that is none of these (an image, a PDB, other archives) is named with what to do about
it (:mod:`parsers.filetype`). Whatever cannot be read is named on stderr and in the report, never dropped,
and makes the analysis incomplete (exit 3), never clean.

Inputs are analysed by ``--jobs`` worker processes, each input in isolation (a crash or a hang costs that
input, as a diagnostic), or on a Dask cluster (``--scheduler``), or in this process for a single text log;
the report is the same whatever the parallelism (:mod:`hvci.batch.run`). Incidents stream from the
workers to the report and the ``--db`` store as they settle, so memory does not grow with their number
(:mod:`hvci.batch.streamed`). Data goes to stdout (or ``-o FILE``) as UTF-8 whatever the console
code page; the progress bar goes to stderr, only when stderr is a terminal and ``-q`` is not given;
``--stats`` adds one JSON line on stderr.

``--fail-on`` decides which incidents make the run fail (exit 1):

* ``hvci`` (default): any HVCI-related incident, whatever its confidence;
* ``certain`` / ``likely`` / ``possible``: HVCI-related incidents at or above that confidence;
* ``any``: any incident at all, HVCI-related or not (e.g. a 0xD1 crash in a lab run);
* ``never``: nothing fails the run (the same as ``--exit-zero``);
* ``new``: HVCI-related findings whose bucket is not in the baseline (``--baseline``/``--baseline-run``).

Exit codes: 0 nothing at or above the threshold; 1 findings; 2 usage error, or no input could be
read at all; 3 no findings but the analysis is incomplete (some input unreadable, skipped or read only in
part, or symbols/images were given and a blamed address could still not be symbolised); 130 interrupted.
``--exit-zero`` turns 1 into 0 (or into 3 when the analysis is incomplete) but keeps 2 and 3.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack, closing
from typing import TYPE_CHECKING

import click
import msgspec

from cli.exitcodes import ExitCode
from cli.lab import LabOptions, baseline_keys, before_run, open_store
from cli.output import OutputError, emit, warn
from cli.progress import BatchProgress
from cli.workers import jobs_option, timeout_option
from hvci.batch.cores import default_jobs
from hvci.batch.run import (
    BatchStats,
    ClusterError,
    UnitDone,
    default_timeout,
    stream_batch,
    unread,
)
from hvci.batch.spill import SpillError
from hvci.batch.streamed import StreamedReport
from hvci.batch.units import Unit, plan, total_bytes
from hvci.batch.work import IncidentBatch
from hvci.findings import compare
from hvci.logs.options import AnalyzeOptions
from hvci.model import CONFIDENCES, Baseline, Incident, confidence_rank
from hvci.report import FORMATS
from symbols.environment import symbol_path_from_environment

if TYPE_CHECKING:
    from hvci.batch.store import RunWriter

FAIL_ON = ("hvci", "any", "never", "new", *CONFIDENCES[:-1])


def fails(incident: Incident, fail_on: str) -> bool:
    """Whether an incident is at or above the ``--fail-on`` threshold (see the module docstring)."""
    if fail_on == "never":
        return False
    if fail_on == "any":
        return True
    if not incident.hvci_related:
        return False
    if fail_on == "hvci":
        return True
    return confidence_rank(incident.confidence) <= CONFIDENCES.index(fail_on)


def unresolved(incident: Incident) -> bool:
    """An HVCI incident whose blamed code address in a known module stayed unresolved (with symbols or
    images given, that makes the analysis incomplete)."""
    caller = incident.caller
    return (
        incident.hvci_related
        and caller is not None
        and caller.address is not None
        and caller.module is not None
        and caller.resolved_by in ("module", "none")
    )


class Verdict(msgspec.Struct):
    """What the exit code needs, kept as incidents stream by."""

    fail_on: str
    symbols_given: bool
    failing: bool = False
    unresolved: bool = False

    def add(self, incident: Incident) -> None:
        if self.fail_on != "new":  # decided by the findings, against the baseline
            self.failing = self.failing or fails(incident, self.fail_on)
        self.unresolved = self.unresolved or (self.symbols_given and unresolved(incident))

    def exit_code(self, report: StreamedReport, baseline: Baseline | None, *, exit_zero: bool) -> ExitCode:
        """0, 1 or 3 (see the module docstring); 2 is decided by the caller (nothing could be read)."""
        if self.fail_on == "new":
            states = baseline.states if baseline is not None else {}
            failing = any(f.incident.hvci_related and states.get(f.bucket) == "new" for f in report.findings)
        else:
            failing = self.failing
        if failing and not exit_zero:
            return ExitCode.FINDINGS
        if self.unresolved or report.incomplete:
            return ExitCode.INCOMPLETE
        return ExitCode.OK


def _warn_unread(report: StreamedReport) -> None:
    """One line per input with an error: one about the whole input (what it is, why it was not read: at its
    start) as is, one further in as what cut the reading short."""
    for result in report.results:
        errors = [d for d in result.info.diagnostics if d.severity == "error"]
        if not errors:
            continue
        first = errors[0]
        if first.span is None or first.span.first_line <= 1:
            warn(f"{result.info.path}: {first.message}")
        else:
            warn(f"{result.info.path}: read only in part ({first.message})")


class RunSettings(msgspec.Struct, frozen=True):
    quiet: bool
    jobs: int
    timeout: float | None  # None: the default per-input limit; 0: none
    scheduler: str | None

    def limit(self, unit: Unit) -> float | None:
        if self.timeout is None:
            return default_timeout(unit)
        return self.timeout or None


class _Run(msgspec.Struct):
    """A run in progress: where its parts go."""

    report: StreamedReport
    verdict: Verdict
    writer: RunWriter | None = None
    started: float = msgspec.field(default_factory=time.monotonic)

    def stats(self, units: Sequence[Unit], settings: RunSettings) -> BatchStats:
        return BatchStats(
            inputs=len(self.report.results),
            unread=sum(1 for r in self.report.results if unread(r)),
            bytes=total_bytes(units),
            incidents=self.report.totals.incidents,
            findings=len(self.report.findings),
            seconds=time.monotonic() - self.started,
            jobs=settings.jobs,
            engine="dask" if settings.scheduler is not None else "local",
        )


def _run(units: Sequence[Unit], options: AnalyzeOptions, settings: RunSettings, run: _Run) -> None:
    """Analyse the units, each part going to the report, the store and the verdict as it arrives."""
    events = stream_batch(
        units, options, jobs=settings.jobs, timeout=settings.limit, scheduler=settings.scheduler
    )
    with BatchProgress(not settings.quiet, units) as progress, closing(events):
        for event in events:
            if isinstance(event, UnitDone):
                if progress.enabled:
                    progress.advance(event.unit, event.incidents)
                continue
            run.report.add(event)
            if run.writer is not None:
                run.writer.add(event)
            if isinstance(event, IncidentBatch):
                for incident in event.incidents:
                    run.verdict.add(incident)


def _record(run: _Run) -> None:
    """Append the run to the store (before the report is written: the store keeps the run even when stdout
    is a closed pipe)."""
    import shlex

    from hvci.batch.store import StoreError

    assert run.writer is not None
    command = shlex.join(["hvci-triage", *sys.argv[1:]])
    try:
        run.writer.commit(command=command, findings=run.report.findings, incomplete=run.report.incomplete)
    except StoreError as error:
        raise click.UsageError(str(error)) from None


@click.command("analyze")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True, help="Report format."
)
@click.option("-o", "--output", metavar="FILE", help="Write the report to FILE instead of stdout.")
@click.option(
    "--symbols",
    "symbol_path",
    metavar="PATH",
    help="Symbol path in WinDbg syntax (srv*CACHE*URL;DIR); default: _NT_ALT_SYMBOL_PATH;_NT_SYMBOL_PATH.",
)
@click.option(
    "--images",
    "image_dirs",
    multiple=True,
    metavar="DIR",
    help="Folder with the driver images (.sys) and PDBs; repeatable.",
)
@click.option(
    "--module",
    "modules",
    multiple=True,
    metavar="NAME=BASE[:SIZE]",
    help="A module range (hex) for logs without an lm listing; repeatable.",
)
@click.option(
    "--fail-on",
    type=click.Choice(FAIL_ON),
    default="hvci",
    show_default=True,
    help="Which incidents make the exit code 1: hvci, any, never, new (HVCI findings not in the "
    "baseline), or a minimum confidence (certain, likely, possible) for HVCI-related incidents.",
)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings (2 and 3 still apply).")
@jobs_option("all cores")
@timeout_option(
    "Time limit per input (default: 300 s + 2 s per MB; 0: none). An input over it is a diagnostic."
)
@click.option(
    "--scheduler",
    metavar="tcp://HOST:PORT",
    help="Run on a Dask distributed cluster (pip install 'hvci-triage[dask]'); same report as a local run.",
)
@click.option(
    "--db",
    metavar="FILE",
    help="Append this run to a results store (SQLite); inputs it already holds are skipped (see --force).",
)
@click.option("--force", is_flag=True, help="With --db: analyse inputs the store already holds, too.")
@click.option(
    "--baseline",
    metavar="REPORT.json",
    help="Mark each finding new or unchanged against an earlier JSON report (see --fail-on new).",
)
@click.option(
    "--baseline-run",
    metavar="N|last",
    help="Like --baseline, against run N (or the last run) of the --db store.",
)
@click.option("--stats", is_flag=True, help="One JSON line on stderr: files, bytes, files/s, MB/s, seconds.")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no partial-read warnings on stderr.")
@click.pass_context
def command(
    ctx: click.Context,
    paths: tuple[str, ...],
    fmt: str,
    output: str | None,
    symbol_path: str | None,
    image_dirs: tuple[str, ...],
    modules: tuple[str, ...],
    fail_on: str,
    exit_zero: bool,
    jobs: int | None,
    timeout: float | None,
    scheduler: str | None,
    db: str | None,
    force: bool,
    baseline: str | None,
    baseline_run: str | None,
    stats: bool,
    quiet: bool,
) -> None:
    """Analyse logs, dumps and event exports (files, folders, globs, archives, or - for stdin) and report
    every finding, HVCI-related ones first.

    Repeats of one bucket are one finding with every occurrence; .zip/.tar/.tar.gz members and .gz logs are
    read in place.

    \b
    json   the versioned report (schema hvci-triage/1)
    jsonl  a "header" line (schema, inputs), "incident" and "finding" lines, a "summary" line
    sarif  SARIF 2.1.0 for code-scanning uploads
    Exit: 0 clean, 1 findings (see --fail-on), 2 usage/nothing readable, 3 incomplete, 130 interrupted."""
    if symbol_path is None:
        symbol_path = symbol_path_from_environment()  # the same default as every other command
    options = AnalyzeOptions(symbol_path=symbol_path or None, image_dirs=image_dirs, modules=modules)
    try:
        if modules:
            options.user_modules()  # checked before any input is read
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--module") from None
    lab = LabOptions(db, force, baseline, baseline_run)
    lab.check()
    if fail_on == "new" and baseline is None and baseline_run is None:
        raise click.UsageError("--fail-on new needs --baseline or --baseline-run")
    settings = RunSettings(quiet, jobs or default_jobs(), timeout, scheduler)
    symbols_given = options.symbol_path is not None or bool(options.image_dirs)
    with ExitStack() as stack:
        store = stack.enter_context(open_store(db)) if db is not None else None
        run = _Run(stack.enter_context(StreamedReport(fmt)), Verdict(fail_on, symbols_given))
        try:
            units = before_run(plan(paths, sys.stdin.buffer), lab, store, quiet=quiet)
            earlier = baseline_keys(lab, store)  # before this run is recorded: "last" is the one before
            if store is not None:
                run.writer = store.writer()
            _run(units, options, settings, run)
            if not quiet:
                _warn_unread(run.report)
            if all(unread(r) for r in run.report.results):
                ctx.exit(ExitCode.USAGE)
            marks = None if earlier is None else compare(run.report.findings, *earlier)
            if run.writer is not None:
                _record(run)
            emit(run.report.pieces(marks), output)
        except KeyboardInterrupt:
            warn("interrupted")
            ctx.exit(ExitCode.INTERRUPTED)
        except ClusterError as error:
            warn(str(error))
            ctx.exit(ExitCode.USAGE)
        except SpillError as error:
            raise OutputError(str(error)) from None
        if stats:
            import json

            click.echo(json.dumps(run.stats(units, settings).as_dict()), err=True)
        code = run.verdict.exit_code(run.report, marks, exit_zero=exit_zero)
    ctx.exit(code)
