"""Command-line paths -> the files they name: folders recursively, glob patterns expanded by us.

Shared by ``analyze`` and ``scan`` so that both drop nothing silently. cmd and PowerShell pass ``*.log``
through unexpanded, so a path that does not exist but holds ``*``, ``?`` or ``[`` is a pattern (``**``
crosses folders). Folders are walked in sorted order with hidden entries (a leading dot) left out; links to
folders are not followed (a link cycle must not loop) but links to files are.

Every entry that cannot be read as a file comes back with a :attr:`Entry.problem` instead of being dropped:
a dangling link, a FIFO or socket (opening one blocks, or steals a writer's data), a device, a folder
without anything wanted, a pattern or path that matches nothing. Callers report these and must not call a
batch clean when one is there.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator

import msgspec

_PATTERN_CHARACTERS = frozenset("*?[")


class Entry(msgspec.Struct, frozen=True):
    """One path to read, or one that cannot be (``problem`` says why, in a few words)."""

    name: str
    problem: str | None = None


def _kind_problem(path: str, *, explicit: bool) -> str | None:
    """Why ``path`` is not a regular file we may open, or None. Named FIFOs given explicitly are allowed
    (``analyze <(cmd)`` passes one); found in a folder they are not (nobody asked to drain them)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError as error:
        return "a dangling link" if os.path.islink(path) else f"cannot read: {error.strerror}"
    except OSError as error:
        return f"cannot read: {error.strerror or error}"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return None if explicit else "a FIFO (named pipe), not read"
    if stat.S_ISSOCK(mode):
        return "a socket, not read"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return None if explicit else "a device, not read"
    return "not a regular file"


def _walk_folder(folder: str, wanted: Callable[[str], bool]) -> Iterator[Entry]:
    found = False
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or not wanted(name):
                continue
            found = True
            path = os.path.join(root, name)
            yield Entry(path, _kind_problem(path, explicit=False))
        for name in dirs:  # os.walk lists links to folders here and does not follow them
            path = os.path.join(root, name)
            if os.path.islink(path):
                found = True
                yield Entry(path, "a link to a folder, not followed (name the folder itself)")
    if not found:
        yield Entry(folder, "nothing to read in this folder")


def expand(paths: Iterable[str], wanted: Callable[[str], bool] = lambda name: True) -> Iterator[Entry]:
    """Every file the paths name, in order: each path as given, a folder as the wanted files below it
    (``wanted(file_name)``), a pattern as its sorted matches. ``-`` (stdin) passes through."""
    for given in paths:
        if given == "-":
            yield Entry(given)
        elif os.path.isdir(given):
            yield from _walk_folder(given, wanted)
        elif os.path.lexists(given) or not _PATTERN_CHARACTERS.intersection(given):
            yield Entry(given, _kind_problem(given, explicit=True))
        else:
            import glob  # for a pattern only (cmd and PowerShell pass them unexpanded): a path needs none

            matches = sorted(glob.glob(given, recursive=True))
            if not matches:
                yield Entry(given, "no file matches this pattern")
            for match in matches:
                if os.path.isdir(match):
                    yield from _walk_folder(match, wanted)
                else:
                    yield Entry(match, _kind_problem(match, explicit=False))
