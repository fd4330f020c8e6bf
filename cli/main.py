"""The ``hvci-triage`` command group and :func:`run`, which turns every way a command can end into an
exit code and at most one line on stderr.

``hvci-triage [PATH ...]`` opens the triage view; ``analyze``, ``scan``, ``symbolize`` and ``explain`` run
headless. Each subcommand lives in its own module under ``cli.commands`` and is registered there with one
line, so that adding a command never touches another's code.

Exit codes: 0 clean, 1 findings, 2 usage error or output that could not be written, 3 incomplete, 130
interrupted. click's own ending for Ctrl+C ("Aborted!", exit 1) would read as "findings" to a CI job, so
the group runs with ``standalone_mode=False`` and :func:`run` decides instead.
"""

from __future__ import annotations

import os
import sys

import click

from cli.commands import COMMANDS, load
from cli.exitcodes import ExitCode
from cli.output import OutputError, stdout_reason, warn


class _LazyGroup(click.Group):
    """Commands imported on use; anything that is not a command name is paths for ``open``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return load(cmd_name) if cmd_name in COMMANDS else None

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in COMMANDS and args[0] not in ("--help", "-h", "--version")):
            args = ["open", *args]
        return super().parse_args(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, summary) for name, (_, summary) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``: what ``click.version_option`` prints, looked up only when asked (that decorator looks
    up its translated texts when the module is imported, a locale search of every start)."""
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import version

    click.echo(f"hvci-triage, version {version('hvci-triage')}")
    ctx.exit()


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version and exit.",
)
def cli() -> None:
    """Triage Windows memory-integrity (HVCI) driver violations.

    Run with log files (or - for stdin) to open the triage view, or use a subcommand.
    """


def run(args: list[str]) -> int:
    """Run the command line on ``args``; the exit code (see the module docstring)."""
    try:
        code = _exit_code(cli.main(args, prog_name="hvci-triage", standalone_mode=False))
    except click.exceptions.Abort:
        return interrupted()
    except click.ClickException as error:
        error.show()
        code = ExitCode.USAGE
    except SystemExit as done:
        code = _exit_code(done.code)
    except OutputError as error:
        warn(str(error))
        code = ExitCode.USAGE
    except BrokenPipeError as error:  # a click.echo of data into a pipe whose reader left
        warn(f"cannot write stdout: {stdout_reason(error)}")
        code = ExitCode.USAGE
    return _flush_stdout(code)


def interrupted() -> int:
    warn("interrupted")
    return ExitCode.INTERRUPTED


def _exit_code(value: object) -> int:
    if value is None:
        return ExitCode.OK
    return value if isinstance(value, int) else ExitCode.USAGE


def _flush_stdout(code: int) -> int:
    """Flush what the command left buffered now, while a failure can still change the exit code; after a
    failure stdout points at the null device so the interpreter's own flush at exit stays silent."""
    if sys.stdout is None:
        return code
    try:
        sys.stdout.flush()
    except (OSError, ValueError) as error:
        warn(f"cannot write stdout: {stdout_reason(error)}")
        code = ExitCode.USAGE
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, sys.stdout.fileno())
            os.close(null)
        except (OSError, ValueError):
            pass
    return code
