"""Subcommands of ``hvci-triage``: one module each, defining ``command`` (a ``click.Command``).

A module is imported only when its command runs, so ``--help`` and a small ``explain`` or ``analyze``
start about as fast as click itself; ``open`` imports Textual inside its function besides. The one-line
summaries ``--help`` lists live here for the same reason (a test checks them against each command's
docstring). Adding a command is its module plus one line below.
"""

from __future__ import annotations

import gc
import importlib

import click

#: Command name -> (module under ``cli.commands``, the summary ``--help`` lists), in help order.
COMMANDS: dict[str, tuple[str, str]] = {
    "open": (
        "open",
        "Open the triage view on PATHS (log files, crash dumps, event logs, archives, folders, or - for "
        "stdin).",
    ),
    "analyze": (
        "analyze",
        "Analyse logs, dumps and event exports (files, folders, globs, archives, or - for stdin) and report "
        "every finding, HVCI-related ones first.",
    ),
    "report": (
        "report",
        "Roll up the runs of a results store: counts, first and last seen and trend per bucket and driver.",
    ),
    "diff": ("diff", "Compare two JSON reports: buckets that are new, gone or unchanged, with their counts."),
    "scan": (
        "scan",
        "Check driver images (.sys files, folders, globs) for memory-integrity problems, offline.",
    ),
    "symbolize": (
        "symbolize",
        "Resolve ADDRESSES (RVAs, or VAs with --base; stdin when none or -) in a driver image or PDB.",
    ),
    "explain": ("explain", "Explain a category, 0xC4 subcode, bug check, API, counter label or constant."),
    "debugger-script": (
        "debugger_script",
        "Print the path of the pykd or WinDbg JavaScript collector and the exact commands to paste.",
    ),
}


def load(name: str) -> click.Command:
    """The command ``name`` (a key of :data:`COMMANDS`), importing its module now.

    Start-up ends here: when :func:`cli.entry` turned the collector off, what was imported is moved out of
    its sight (``gc.freeze``, never traversed again) and it runs again for the command. A caller in-process
    (tests, another program) keeps its collector as it was."""
    command: click.Command = importlib.import_module(f"cli.commands.{COMMANDS[name][0]}").command
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
    return command
