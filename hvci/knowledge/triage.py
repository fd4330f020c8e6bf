"""Triage knowledge for every bug check, HVCI or not (``triage.toml``): which parameter holds the faulting
instruction's address, which images' frames are the kernel's own machinery, which kernel functions run the
code-integrity checks.

Kept apart from :mod:`hvci.knowledge.kb`: it answers where a report finds the caller and the driver to
blame when the input prints only the parameters or a stack.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass

from hvci.knowledge.kb import KNOWLEDGE_DIR, KnowledgeError

_KEYS = {"code", "argument", "arg1_min", "arg1_max", "what", "url"}


@dataclass(frozen=True, slots=True)
class FaultArgument:
    """One bug check (optionally one range of its Arg1 subcodes) and the parameter that is the address."""

    code: int
    argument: int  # 1..4
    what: str
    url: str
    arg1_min: int | None = None
    arg1_max: int | None = None

    def applies(self, code: int, args: tuple[int, ...]) -> bool:
        if code != self.code or len(args) < self.argument:
            return False
        if self.arg1_min is None or self.arg1_max is None:
            return True
        return bool(args) and self.arg1_min <= args[0] <= self.arg1_max


def _entry(raw: object, index: int) -> FaultArgument:
    where = f"triage.toml: fault #{index + 1}"
    if not isinstance(raw, dict):
        raise KnowledgeError(f"{where}: not a table")
    unknown = set(raw) - _KEYS
    if unknown:
        raise KnowledgeError(f"{where}: unknown keys {sorted(unknown)}")
    code, argument = raw.get("code"), raw.get("argument")
    if not isinstance(code, int) or not isinstance(argument, int) or not 1 <= argument <= 4:
        raise KnowledgeError(f"{where}: needs an integer code and an argument 1..4")
    low, high = raw.get("arg1_min"), raw.get("arg1_max")
    paired = (low is None and high is None) or (isinstance(low, int) and isinstance(high, int))
    if not paired:
        raise KnowledgeError(f"{where}: arg1_min and arg1_max go together, as integers")
    what, url = raw.get("what"), raw.get("url")
    if not isinstance(what, str) or not what or not isinstance(url, str) or not url.startswith("https://"):
        raise KnowledgeError(f"{where}: needs a description (what) and an https url")
    return FaultArgument(code, argument, what, url, low, high)


@dataclass(frozen=True, slots=True)
class Triage:
    faults: tuple[FaultArgument, ...]
    kernel_frames: frozenset[str]
    ci_check_functions: frozenset[str]

    def fault_argument(self, code: int, args: tuple[int, ...]) -> FaultArgument | None:
        """The entry that says which of ``args`` is the faulting address of bug check ``code``, if any."""
        return next((entry for entry in self.faults if entry.applies(code, args)), None)


def _names(doc: dict[str, object], key: str) -> frozenset[str]:
    value = doc.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise KnowledgeError(f"triage.toml: {key} must be a list of names")
    return frozenset(value)


@functools.cache
def load() -> Triage:
    """``triage.toml``, validated (a mistake names the entry)."""
    with (KNOWLEDGE_DIR / "triage.toml").open("rb") as handle:
        doc = tomllib.load(handle)
    if set(doc) != {"fault", "kernel_frames", "ci_check_functions"} or not isinstance(doc["fault"], list):
        raise KnowledgeError("triage.toml: expected kernel_frames, ci_check_functions and [[fault]] tables")
    return Triage(
        faults=tuple(_entry(raw, n) for n, raw in enumerate(doc["fault"])),
        kernel_frames=frozenset(name.lower() for name in _names(doc, "kernel_frames")),
        ci_check_functions=_names(doc, "ci_check_functions"),
    )
