"""``hvci-triage analyze PATH... | -``: the headless triage of logs, for CI and lab batch runs.

Folders expand to the files under them (recursively, sorted, hidden entries skipped), so a lab can point
it at a folder of collected crash logs, dumps and event logs; a file that is none of these (an archive, an
image) is named with what to do about it and makes the analysis incomplete (exit 3), never clean. Data
goes to stdout (or ``-o FILE``) as UTF-8 whatever the console code page; progress goes to stderr, only
when stderr is a terminal and ``-q`` is not given.

``--fail-on`` decides which incidents make the run fail (exit 1):

* ``hvci`` (default): any HVCI-related incident, whatever its confidence;
* ``certain`` / ``likely`` / ``possible``: HVCI-related incidents at or above that confidence;
* ``any``: any incident at all, HVCI-related or not (e.g. a 0xD1 crash in a lab run);
* ``never``: nothing fails the run (the same as ``--exit-zero``).

Exit codes: 0 nothing at or above the threshold; 1 findings; 2 usage error, or no input could be
read at all; 3 no findings but the analysis is incomplete (some input unreadable or read only in part, or
symbols/images were given and a blamed address could still not be symbolised); 130 interrupted.
``--exit-zero`` turns 1 into 0 (or into 3 when the analysis is incomplete) but keeps 2 and 3.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import click

from cli.exitcodes import ExitCode
from cli.output import emit, warn
from hvci.logs.pipeline import AnalyzeOptions, analyze_inputs
from hvci.model import CONFIDENCES, Incident, Report
from hvci.report import FORMATS, render
from parsers.filetype import TEXT
from parsers.stream import Input, open_input

FAIL_ON = ("hvci", "any", "never", *CONFIDENCES[:-1])


def expand_paths(paths: Sequence[str]) -> Iterator[str]:
    """Each path as given; a folder becomes its files, recursively, in sorted order (hidden entries
    skipped). What each file is gets decided when it is read (:mod:`parsers.filetype`): a crash dump or an
    event log is read, an archive or an image is named in a diagnostic, never silently left out."""
    for given in paths:
        path = Path(given)
        if given == "-" or not path.is_dir():
            yield given
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                candidate = Path(root) / name
                if not name.startswith(".") and candidate.is_file():
                    yield str(candidate)


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
    rank = {c: i for i, c in enumerate(CONFIDENCES)}
    return rank.get(incident.confidence, len(rank)) <= rank[fail_on]


def symbols_incomplete(report: Report, options: AnalyzeOptions) -> bool:
    """Symbols or images were given, yet a blamed code address in a known module stayed unresolved."""
    if options.symbol_path is None and not options.image_dirs:
        return False
    return any(
        i.caller is not None
        and i.caller.address is not None
        and i.caller.module is not None
        and i.caller.resolved_by in ("module", "none")
        for i in report.hvci_incidents
    )


def exit_code(
    report: Report, fail_on: str, *, exit_zero: bool, unreadable: int, incomplete: bool
) -> ExitCode:
    """0, 1 or 3 (see the module docstring); 2 is decided before any analysis runs."""
    findings = not exit_zero and any(fails(i, fail_on) for i in report.incidents)
    if findings:
        return ExitCode.FINDINGS
    if unreadable or incomplete or report.incomplete:
        return ExitCode.INCOMPLETE
    return ExitCode.OK


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


class _Progress:
    """One self-overwriting status line on stderr, only when stderr is a terminal."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled and stderr_is_terminal()
        self.total = total

    def show(self, number: int, inp: Input) -> None:
        if self.enabled:
            path = inp.path
            shown = path if len(path) <= 60 else "..." + path[-57:]
            sys.stderr.write(f"\rhvci-triage: {number}/{self.total} {shown}\x1b[K")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _open_all(paths: Sequence[str]) -> tuple[list[Input], int]:
    inputs: list[Input] = []
    unreadable = 0
    for path in paths:
        try:
            # fail here, with the OS's reason, rather than half-way through; a FIFO or a device is not
            # opened to check, which would consume it (and kill the writer of a FIFO)
            if path != "-" and stat.S_ISREG(os.stat(path).st_mode):
                with open(path, "rb"):
                    pass
            inputs.append(open_input(path))
        except OSError as error:
            unreadable += 1
            warn(f"cannot read {path}: {error.strerror or error}")
    return inputs, unreadable


def _warn_unread(report: Report, inputs: Sequence[Input]) -> None:
    """One line per input not read in full: what a non-text input is, or what cut a log short."""
    named: dict[str, str] = {}
    for inp in inputs:
        try:
            if inp.file_type() != TEXT:
                named[inp.path] = inp.file_type().message
        except OSError:
            continue  # its read error is in the report already
    for info in report.inputs:
        errors = [d.message for d in info.diagnostics if d.severity == "error"]
        if errors and named.get(info.path) == errors[0]:
            warn(f"{info.path}: {errors[0]}")
        elif errors:
            warn(f"{info.path}: read only in part ({errors[0]})")


@click.command("analyze")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True, help="Report format."
)
@click.option("-o", "--output", metavar="FILE", help="Write the report to FILE instead of stdout.")
@click.option(
    "--symbols",
    "symbol_path",
    envvar="_NT_SYMBOL_PATH",
    metavar="PATH",
    help="Symbol path in WinDbg syntax (srv*CACHE*URL;DIR); defaults to _NT_SYMBOL_PATH.",
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
    help="Which incidents make the exit code 1: hvci, any, never, or a minimum confidence "
    "(certain, likely, possible) for HVCI-related incidents.",
)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings (2 and 3 still apply).")
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
    quiet: bool,
) -> None:
    """Analyse debugger logs, verifier output, readiness reports and event exports (PATH may be - for
    stdin, or a folder) and report every incident, HVCI-related ones first.

    \b
    json   the versioned report (schema hvci-triage/1)
    jsonl  a "header" line (schema, inputs), one "incident" line each, a "summary" line
    sarif  SARIF 2.1.0 for code-scanning uploads
    Exit: 0 clean, 1 findings (see --fail-on), 2 usage/nothing readable, 3 incomplete, 130 interrupted."""
    options = AnalyzeOptions(symbol_path=symbol_path or None, image_dirs=image_dirs, modules=modules)
    try:
        options.user_modules()
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--module") from None
    try:
        inputs, unreadable = _open_all(list(expand_paths(paths)))
        if not inputs:
            if not unreadable:
                warn("no files found in the given folder(s)")
            ctx.exit(ExitCode.USAGE)
        progress = _Progress(not quiet, len(inputs))
        report = analyze_inputs(inputs, options, progress=progress.show if progress.enabled else None)
        progress.done()
        emit(render(report, fmt), output)
    except KeyboardInterrupt:
        warn("interrupted")
        ctx.exit(ExitCode.INTERRUPTED)
    if not quiet:
        _warn_unread(report, inputs)
    code = exit_code(
        report,
        fail_on,
        exit_zero=exit_zero,
        unreadable=unreadable,
        incomplete=symbols_incomplete(report, options),
    )
    ctx.exit(code)
