"""Triage knowledge for every bug check, HVCI or not (``triage.toml``): which parameter holds the faulting
instruction's address, which images' frames are the kernel's own machinery, which kernel functions run the
code-integrity checks.

Kept apart from the other records: it answers where a report finds the caller and the driver to blame when
the input prints only the parameters or a stack. The file is read and checked with the others (and kept in
the start-up cache with them, :mod:`hvci.knowledge.cache`), so that a crash parses no TOML.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from hvci.knowledge.records import Record


class FaultArgument(Record, frozen=True):
    """One bug check (optionally one range of its Arg1 subcodes) and the parameter that is the address."""

    code: int
    argument: Literal[1, 2, 3, 4]
    what: str
    url: str
    arg1_min: int | None = None
    arg1_max: int | None = None

    def __post_init__(self) -> None:
        if (self.arg1_min is None) != (self.arg1_max is None):
            raise ValueError("arg1_min: arg1_min and arg1_max go together")
        if not self.what.strip():
            raise ValueError("what: must not be empty")
        if not self.url.startswith("https://"):
            raise ValueError(f"url: {self.url!r} is not an https URL")

    def applies(self, code: int, args: tuple[int, ...]) -> bool:
        if code != self.code or len(args) < self.argument:
            return False
        if self.arg1_min is None or self.arg1_max is None:
            return True
        return bool(args) and self.arg1_min <= args[0] <= self.arg1_max


class Triage(Record, frozen=True):
    faults: tuple[FaultArgument, ...] = msgspec.field(name="fault")
    kernel_frames: frozenset[str] = frozenset()
    ci_check_functions: frozenset[str] = frozenset()
    windows_images: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.kernel_frames or not self.ci_check_functions:
            raise ValueError("kernel_frames: kernel_frames and ci_check_functions must list names")
        for key in ("kernel_frames", "windows_images"):
            msgspec.structs.force_setattr(self, key, frozenset(n.lower() for n in getattr(self, key)))

    def retyped(self, name: str) -> str | None:
        """The Windows image a name typed off a screen stands for when "l" and "I" were confused
        (``Cl.dll`` -> ``CI.dll``), or ``None`` when the name is one already or matches none (or several)."""
        lower = name.strip().lower()
        if lower in self.windows_images:
            return None
        candidates = {lower.replace("l", "i")} | {lower.replace("i", "l")}
        at = [n for n, c in enumerate(lower) if c in "il"]
        candidates |= {lower[:n] + swap + lower[n + 1 :] for n in at for swap in "il"}
        found = sorted(c for c in candidates - {lower} if c in self.windows_images)
        if len(found) != 1:
            return None
        stem, dot, ext = found[0].partition(".")
        return (stem.upper() if len(stem) <= 3 else stem) + dot + ext

    def fault_argument(self, code: int, args: tuple[int, ...]) -> FaultArgument | None:
        """The entry that says which of ``args`` is the faulting address of bug check ``code``, if any."""
        return next((entry for entry in self.faults if entry.applies(code, args)), None)


def load() -> Triage:
    """``triage.toml``, validated (a mistake names the file and key): the knowledge base's."""
    from hvci.knowledge import kb

    return kb.load().triage
