"""``hvci-triage [PATH ...]``: the interactive triage view (the default command).

Paths are log files, crash dumps, event logs or folders of them (expanded as ``analyze`` does), or ``-`` for
standard input. Standard input is read to the end first, as bytes; then
the keyboard is re-attached to the terminal so the view can run: on POSIX ``/dev/tty`` is opened onto file
descriptor 0, on Windows ``CONIN$`` is (the C runtime's ``dup2`` onto 0 also resets the process's standard
input handle, which is what Textual's Windows driver reads). Without paths the view opens on the paste
screen.

Textual and the ``tui`` package are imported inside the command, so the engine stays importable (and
``analyze`` stays fast) without them.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from typing import TYPE_CHECKING

import click

from cli.exitcodes import ExitCode
from cli.output import warn

if TYPE_CHECKING:
    from tui.loading import Source

STDIN = "-"


def read_stdin() -> bytes:
    """All of standard input, as bytes (the parsers sniff the encoding)."""
    return sys.stdin.buffer.read()


def reattach_keyboard() -> str | None:
    """Point file descriptor 0 at the terminal after stdin was a pipe; the reason when that is impossible."""
    terminal = "CONIN$" if os.name == "nt" else "/dev/tty"
    try:
        fd = os.open(terminal, os.O_RDWR)
    except OSError as error:
        return f"cannot open {terminal} for the keyboard: {error.strerror or error}"
    try:
        os.dup2(fd, 0)
    finally:
        os.close(fd)
    return None


@click.command("open")
@click.argument("paths", nargs=-1, type=click.Path(allow_dash=True))
@click.option("--follow", "-f", is_flag=True, help="Keep reading the files as a debugger appends to them.")
@click.option("--symbols", "symbol_path", metavar="PATH", help="Symbol path (WinDbg syntax) for PDB lookup.")
@click.option(
    "--images",
    "image_dirs",
    multiple=True,
    type=click.Path(file_okay=False, exists=True),
    help="Folder with the driver images (.sys) and PDBs; repeatable.",
)
@click.option(
    "--module", "modules", multiple=True, metavar="NAME=BASE[:SIZE]", help="Module range; repeatable."
)
def command(
    paths: tuple[str, ...],
    follow: bool,
    symbol_path: str | None,
    image_dirs: tuple[str, ...],
    modules: tuple[str, ...],
) -> None:
    """Open the triage view on PATHS (log files, crash dumps, event logs, archives, folders, or - for stdin).

    Without PATHS the view opens on the paste screen: paste debugger output and press F5 or Ctrl+S.
    Keys: ? or F1 lists them; ctrl+p opens the command palette (export, copy, symbols, filters).
    Remap keys in a TOML keymap file (see the help screen), or the file named by $HVCI_TRIAGE_KEYMAP.
    """
    from hvci.logs.options import AnalyzeOptions
    from parsers.walk import expand
    from symbols.environment import symbol_path_from_environment

    if paths.count(STDIN) > 1:
        raise click.UsageError("standard input (-) can be given only once")
    if follow and STDIN in paths:
        raise click.UsageError("--follow needs files: standard input cannot be followed")
    if symbol_path is None:
        symbol_path = symbol_path_from_environment()  # the same default as every other command
    options = AnalyzeOptions(symbol_path=symbol_path, image_dirs=image_dirs, modules=modules)
    try:
        options.user_modules()
    except ValueError as error:
        raise click.UsageError(str(error)) from error

    from tui.loading import Source

    sources: list[Source] = []
    for entry in expand(paths):
        if entry.name == STDIN:
            sources.append(Source.memory(read_stdin(), "<stdin>"))
        elif entry.problem is not None and not (follow and not os.path.lexists(entry.name)):
            warn(f"{entry.name}: {entry.problem}")
            sys.exit(ExitCode.USAGE)
        else:
            sources.extend(_sources(entry.name, follow))
    if STDIN in paths or not sys.stdin.isatty():
        problem = reattach_keyboard()
        if problem is not None:
            warn(f"{problem}; use 'hvci-triage analyze' for batch output")
            sys.exit(ExitCode.USAGE)

    from tui.engine_feed import PipelineFeed, start_ahead

    # The analysis children start before Textual and the view are imported (~0.3 s that their first look
    # at the input overlaps), and end with the command however the view ends.
    with start_ahead(sources, options, follow) as started:
        from tui.app import make_app

        make_app(
            sources, options=options, follow=follow, feed_factory=partial(PipelineFeed, started=started)
        ).run()


def _sources(path: str, follow: bool) -> list[Source]:
    """A file, or the members of an archive read into memory, as ``analyze`` reads them. A member that
    cannot be read ends the command as any unreadable path does: the view never shows it as clean."""
    from hvci.batch.members import archive_members
    from tui.loading import Source

    members = None if follow else archive_members(path)
    if members is None:
        return [Source.file(path)]
    sources: list[Source] = []
    for name, content in members:
        if isinstance(content, str):
            warn(f"{name}: {content}")
            sys.exit(ExitCode.USAGE)
        sources.append(Source.memory(content, name))
    return sources
