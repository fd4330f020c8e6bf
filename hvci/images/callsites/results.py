"""What the call-site analysis reports: call sites with their verdicts, and the imports they belong to."""

from __future__ import annotations

from typing import Literal

import msgspec

from hvci.details import CallVerdict
from symbols.resolve import SymbolSource

EXECUTABLE: CallVerdict = "executable"
SAFE: CallVerdict = "safe"
UNKNOWN: CallVerdict = "unknown"
BANNED: CallVerdict = "banned"


class FunctionName(msgspec.Struct, frozen=True):
    """Where a call site sits: the function (from the PDB, exports or ``.pdata``) and the source line."""

    name: str | None
    start: int | None
    resolved_by: SymbolSource
    file: str | None = None
    line: int | None = None


class CallSite(msgspec.Struct, frozen=True):
    """One call to an affected API and the verdict on its deciding argument."""

    rva: int
    api: str
    dll: str | None
    category: str
    how: str  # how the call reaches the API, e.g. "call [IAT]", "tail jump [IAT]", "call thunk 0x1200"
    instruction: str
    verdict: CallVerdict
    argument_index: int | None
    argument_kind: str
    values: tuple[int, ...]  # the argument's possible constant values (empty when unknown)
    decoded: tuple[str, ...]  # decoder names of those values
    reason: str  # how the value was obtained, or why it could not be
    replacement: int | None = None
    function: FunctionName = msgspec.field(default_factory=lambda: FunctionName(None, None, "none"))

    @property
    def displacement(self) -> int | None:
        return None if self.function.start is None else self.rva - self.function.start


class ImportedApi(msgspec.Struct, frozen=True):
    """An affected API the image imports, and how many call sites the analysis found for it."""

    api: str
    dll: str
    category: str
    iat_rva: int
    call_sites: int


class CallSiteAnalysis(msgspec.Struct, frozen=True):
    """The call-site analysis of one image. ``status`` is ``done``, ``partial`` (a cap was reached; see
    ``notes``), ``not-applicable`` (e.g. ARM64, header rules only) or ``could-not-analyse``."""

    status: Literal["done", "partial", "not-applicable", "could-not-analyse"]
    sites: tuple[CallSite, ...] = ()
    imported: tuple[ImportedApi, ...] = ()
    notes: tuple[str, ...] = ()
    instructions: int = 0  # decoded in detail
    code_bytes: int = 0  # decoded in detail
    scanned_bytes: int = 0  # read by the cheap first pass
