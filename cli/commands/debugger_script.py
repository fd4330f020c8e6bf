"""``hvci-triage debugger-script pykd|js``: where the debugger-side collector is, and what to paste.

The collectors (``collectors/``, docs/session-format.md) run inside WinDbg, not here: this command only
finds the shipped file, without importing it, and prints the exact debugger commands that load and run it
with a session file beside it, then the command that follows that session live.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import click

#: The file of each collector inside the ``collectors`` package.
SCRIPTS = {"pykd": "pykd_collector.py", "js": "windbg_collector.js"}


def script_path(kind: str) -> Path:
    """The shipped collector script (found through the package's location; nothing is imported)."""
    spec = importlib.util.find_spec("collectors")
    if spec is None or not spec.submodule_search_locations:
        raise click.ClickException("the collectors package is not installed with hvci-triage")
    return Path(next(iter(spec.submodule_search_locations))).resolve() / SCRIPTS[kind]


def _quoted(path: Path | str) -> str:
    """A path as WinDbg's command line takes it (quotes around anything with a space)."""
    text = str(path)
    return f'"{text}"' if " " in text else text


def instructions(kind: str, script: Path, session: str) -> list[str]:
    """The lines to print: the script, what to paste into the debugger, and how to watch the session."""
    if kind == "pykd":
        steps = [".load pykd", f"!py {_quoted(script)} {_quoted(session)}"]
    else:
        literal = session.replace("\\", "\\\\").replace('"', '\\"')
        steps = [f".scriptload {_quoted(script)}", f'dx @$scriptContents.collect("{literal}")']
    return [
        f"collector: {script}",
        "",
        "In WinDbg, with the target broken in (after the verifier stop or bug check), paste:",
        *(f"    {step}" for step in steps),
        "",
        "Each command and its output is appended to the session file as it runs. Meanwhile, or later:",
        f"    hvci-triage --follow {_quoted(session)}",
        f"    hvci-triage analyze {_quoted(session)}",
    ]


@click.command("debugger-script")
@click.argument("kind", type=click.Choice(sorted(SCRIPTS)))
@click.option(
    "--session",
    "session",
    default=None,
    help="Session file the debugger should write (default: hvci-session-<time>.jsonl in this folder).",
)
def command(kind: str, session: str | None) -> None:
    """Print the path of the pykd or WinDbg JavaScript collector and the exact commands to paste."""
    script = script_path(kind)
    if not script.is_file():
        raise click.ClickException(f"the {kind} collector is missing from this installation: {script}")
    chosen = session or str(Path.cwd() / time.strftime("hvci-session-%Y%m%d-%H%M%S.jsonl"))
    for line in instructions(kind, script, chosen):
        click.echo(line)
