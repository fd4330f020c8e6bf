"""A bug check printed in pieces (``Arg`` lines alone, a blue screen's stop code name) made whole.

The parsers keep what the text says; the code, when the text does not print it, comes from the knowledge
base: the stop code's name (``ATTEMPTED_WRITE_TO_READONLY_MEMORY`` is 0xBE), or the arguments' descriptions
(``Code Integrity Issue: The image contains an executable and writable section.`` is a 0xC4 subcode's,
``Exception code that caused the bugcheck`` with ``Address of the context record ...`` is 0x3B's) when
exactly one bug check's descriptions match. Nothing is invented: without a code there is no bug check.
"""

from __future__ import annotations

from hvci.knowledge import kb
from hvci.logs.wording import text_matches
from parsers.records import BugCheckRecord, PartialBugCheckRecord


def _code_by_name(name: str) -> int | None:
    wanted = name.strip().upper()
    base = kb.load()
    for code, info in base.bugchecks.items():
        if info.name == wanted:
            return code
        if wanted == info.name + "_M":
            return code | kb.M_VARIANT
    return None


def _code_by_descriptions(texts: tuple[str, ...]) -> int | None:
    """The one bug check whose parameter descriptions the printed ones match (at least one, none against)."""
    base = kb.load()
    if texts and texts[0] and any(text_matches(texts[0], m.description) for m in base.subcodes):
        return 0xC4
    found: set[int] = set()
    for code, info in base.bugchecks.items():
        printed = [(text, known) for text, known in zip(texts, info.args, strict=False) if text and known]
        if printed and all(text_matches(text, known) for text, known in printed):
            found.add(code)
    return found.pop() if len(found) == 1 else None


def complete(record: PartialBugCheckRecord) -> BugCheckRecord | None:
    """The bug check the pieces make, or ``None`` when no code can be told."""
    code = record.code
    if code is None and record.name:
        code = _code_by_name(record.name)
    if code is None:
        code = _code_by_descriptions(record.arg_texts)
    if code is None:
        return None
    return BugCheckRecord(
        record.span,
        record.form,
        code,
        tuple(value if value is not None else 0 for value in record.args),
        name=record.name,
        arg_texts=record.arg_texts,
        pointer_bits=record.pointer_bits,
        missing=tuple(n for n, value in enumerate(record.args) if value is None),
        blamed=record.blamed,
    )
