"""The command line: the ``hvci-triage`` entry point and its subcommands, above the engine and the TUI.

:func:`entry` is the console script. It imports nothing but ``sys`` before its guard, so that a Ctrl+C at
any moment, during start-up included, ends with one line and exit 130 rather than a traceback.

The cyclic garbage collector is off while the command line and the command's module are imported: start-up
only creates objects that live as long as the process (modules, classes, click's parameters), so every
collection then is wasted work (a few ms of each short command). :func:`cli.commands.load` freezes what
was imported and turns the collector back on before the command runs, so a long analysis collects as ever.
"""

import gc
import sys


def entry() -> None:
    """Console-script entry point."""
    gc.disable()
    try:
        from cli.main import run

        code = run(sys.argv[1:])
    except KeyboardInterrupt:
        sys.stderr.write("hvci-triage: interrupted\n")
        code = 130
    sys.exit(code)
