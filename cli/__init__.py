"""The command line: the ``hvci-triage`` entry point and its subcommands, above the engine and the TUI.

:func:`entry` is the console script. It imports nothing but ``sys`` before its guard, so that a Ctrl+C at
any moment, during start-up included, ends with one line and exit 130 rather than a traceback.
"""

import sys


def entry() -> None:
    """Console-script entry point."""
    try:
        from cli.main import run

        code = run(sys.argv[1:])
    except KeyboardInterrupt:
        sys.stderr.write("hvci-triage: interrupted\n")
        code = 130
    sys.exit(code)
