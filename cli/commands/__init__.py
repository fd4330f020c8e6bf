"""Subcommands of ``hvci-triage``; each module defines one ``click.Command`` named ``command``.

``open`` imports Textual inside its function, so the engine and the headless commands never load it.
"""

from __future__ import annotations

import click

from cli.commands import analyze, explain, scan, symbolize
from cli.commands import open as open_view

#: One entry per subcommand (``--help`` lists them alphabetically).
COMMANDS: list[click.Command] = [
    open_view.command,
    analyze.command,
    scan.command,
    symbolize.command,
    explain.command,
]
