"""Debugger-side collectors (a pykd script and a WinDbg JavaScript script) that record a kernel-debugging
session into a session file (docs/session-format.md).

They run inside the debugger, not in this package: nothing here imports them (lint-imports checks it), and
``hvci-triage debugger-script`` only prints where they are.
"""
