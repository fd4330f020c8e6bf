"""Where a command's output goes, and what happens when it cannot go there.

A report that could not be written is not a report: a full disk, a missing folder, a read-only file, a
closed or broken standard output all end the command with exit 2 and one line naming the destination and
the operating system's reason (never a traceback, and never exit 0 or 1, which a CI job reads as a
verdict). Data goes out as UTF-8 bytes whatever the console code page. Messages on stderr pass through
:func:`warn`, which shows control characters as escapes, so a file name cannot retitle or redraw the
terminal.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable

#: (a pattern compiled by the first message, through ``re``'s cache: most runs show none)
_CONTROL = r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"


class OutputError(Exception):
    """The report could not be written; ``str()`` is the one line to show."""


def printable(text: object) -> str:
    """``text`` on one line with control, bidi-override and line-separator characters as visible escapes."""
    return re.sub(
        _CONTROL,
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}",
        str(text),
    )


def warn(message: str, *, prefix: str = "hvci-triage") -> None:
    """One line on stderr; nothing when there is no stderr to write to."""
    stream = sys.stderr
    if stream is None:
        return
    try:
        stream.write(f"{prefix}: {printable(message)}\n")
        stream.flush()
    except (OSError, ValueError):
        pass  # a closed or broken stderr cannot carry the message either


def emit(text: str | Iterable[str], output: str | None = None) -> None:
    """Write ``text`` (or its pieces, one after the other as they are made) to the file ``output``, or to
    stdout when it is ``None`` or ``-``."""
    pieces = (text,) if isinstance(text, str) else text
    if output is not None and output != "-":
        try:
            with open(output, "wb") as handle:
                for piece in pieces:
                    handle.write(piece.encode("utf-8", errors="replace"))
        except OSError as error:
            raise OutputError(f"cannot write {printable(output)}: {error.strerror or error}") from None
        return
    stream = sys.stdout
    if stream is None:
        raise OutputError("cannot write the report: standard output is closed")
    try:
        stream.flush()
        for piece in pieces:
            stream.buffer.write(piece.encode("utf-8", errors="replace"))
        stream.buffer.flush()
    except (OSError, ValueError) as error:
        raise OutputError(f"cannot write stdout: {stdout_reason(error)}") from None


def stdout_reason(error: BaseException) -> str:
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return "standard output is closed"
