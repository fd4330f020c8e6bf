"""Process exit codes, the contract CI gates on (README "Exit codes", docs/architecture.md)."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  #: nothing at or above the threshold
    FINDINGS = 1  #: findings at or above the threshold
    USAGE = 2  #: usage error or unreadable input
    INCOMPLETE = 3  #: some input or symbol could not be read, and no findings
    INTERRUPTED = 130
