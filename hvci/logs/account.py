"""An input's account in a report: what the reader learnt about it, and the read error that cut it short.

Shared by the whole-input pipeline (:mod:`hvci.logs.pipeline`) and the streamed one (:mod:`hvci.logs.final`),
which needs it even for an input without a single record, where the pipeline is never imported.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from parsers.records import Diagnostic, InputInfo, Span
from parsers.stream import Input


def read_error(inp: Input, error: OSError) -> Diagnostic:
    reason = error.strerror or str(error)
    return Diagnostic(Span(inp.path, 0, 0), f"cannot read {inp.path}: {reason}", "error")


def input_info(inp: Input, extra: Sequence[Diagnostic]) -> InputInfo:
    """The parser's account of the input (its diagnostics included) plus a read error, if one ended it."""
    info = inp.info()
    return msgspec.structs.replace(info, diagnostics=(*info.diagnostics, *extra)) if extra else info
