"""Regular expressions compiled at their first use instead of at import.

A parser module holds a dozen patterns or more; compiling all of them when the registry is imported cost
about 20 ms of every command's start-up, although a short input (or one whose lines are all noise, which
the prefilter finds without them) uses few or none. :func:`deferred_compile` returns a stand-in with the
pattern's interface: the first method call compiles it, and then its bound methods are the stand-in's own
attributes, so a pattern in use costs what a compiled one does.
"""

from __future__ import annotations

import re
from typing import Any, AnyStr, cast

#: The methods a stand-in takes over from its compiled pattern at the first use.
_METHODS = ("match", "search", "fullmatch", "finditer", "findall", "sub", "subn", "split", "scanner")


class _Deferred:
    """A pattern source and flags, compiled by the first attribute they do not answer themselves."""

    def __init__(self, pattern: str | bytes, flags: int) -> None:
        self.pattern = pattern
        self.flags = flags

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy and pickle probes: not a use of the pattern
            raise AttributeError(name)
        compiled = re.compile(self.pattern, self.flags)
        for method in _METHODS:
            setattr(self, method, getattr(compiled, method))
        self.groups = compiled.groups
        self.groupindex = compiled.groupindex
        self.flags = compiled.flags  # with the implied ones (re.UNICODE for text), as a compiled pattern's
        return getattr(compiled, name)

    def __repr__(self) -> str:
        return f"deferred_compile({self.pattern!r})"


def deferred_compile(pattern: AnyStr, flags: int | re.RegexFlag = 0) -> re.Pattern[AnyStr]:
    """``re.compile(pattern, flags)``, done when the pattern is first used (see the module docstring)."""
    return cast("re.Pattern[AnyStr]", _Deferred(pattern, int(flags)))
