"""The ``hvci-triage`` command line: one entry point, a subcommand per job, the TUI by default.

``hvci-triage [PATH ...]`` opens the triage view; ``analyze``, ``scan``, ``symbolize`` and ``explain`` run
headless. Each subcommand lives in its own module under ``cli.commands`` and is registered here with one
line, so that adding a command never touches another's code.
"""

from __future__ import annotations

import sys

import click

from cli.commands import COMMANDS
from cli.exitcodes import ExitCode


class _DefaultToOpen(click.Group):
    """A group that treats anything that is not a subcommand name as paths for the ``open`` command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h", "--version")):
            args = ["open", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultToOpen, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hvci-triage")
def cli() -> None:
    """Triage Windows memory-integrity (HVCI) driver violations.

    Run with log files (or - for stdin) to open the triage view, or use a subcommand.
    """


for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point; maps Ctrl+C to exit code 130 without a traceback."""
    try:
        cli.main(standalone_mode=True)
    except KeyboardInterrupt:
        sys.stderr.write("hvci-triage: interrupted\n")
        sys.exit(ExitCode.INTERRUPTED)


if __name__ == "__main__":
    main()
