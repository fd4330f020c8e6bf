"""What a query names: every topic of the knowledge base it can mean, most specific first.

TOPIC is looked up in this order: a category id or name, a ``!verifier`` / readiness counter label, an
affected API, a constant name (``NonPagedPool``), then a number. Numbers are hex as in the debugger
(``0x2001``, ``2001``, ``0xC4``, ``c4``, backticks allowed), and ``0xc4_2000`` (the ``BUGCHECK_STR`` form)
names a subcode. A number is everything it can be: an HVCI 0xC4 subcode (with all of its historic meanings),
a bug check, another 0xC4 subcode, a CodeIntegrity failure reason, and, when written as four decimal
digits, a CodeIntegrity event id.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from hvci.knowledge import kb

#: Microsoft's page that explains the CodeIntegrity event ids (the source of events.toml's explanations).
EVENT_IDS_PAGE = (
    "https://learn.microsoft.com/windows/security/application-security/application-control/"
    "app-control-for-business/operations/event-id-explanations"
)

_HEX = re.compile(r"(?:0x)?([0-9a-f`]+)h?", re.IGNORECASE)
_BUGCHECK_STR = re.compile(r"(?:0x)?c4[_/: ]+(?:0x)?([0-9a-f]+)", re.IGNORECASE)  # BUGCHECK_STR 0xc4_2000
_EVENT = re.compile(r"(?:event\s*(?:id)?\s*)?(\d{4})", re.IGNORECASE)


class Topic(NamedTuple):
    """One thing a query named; ``kind``: category, subcode, bugcheck, api, constant, event, ci-reason."""

    kind: str
    key: str
    payload: Any


def clean_query(text: str) -> str:
    """The query as one line without control characters (it is echoed back in messages)."""
    return "".join(ch if ch.isprintable() else "?" for ch in " ".join(text.split()))


def _number(text: str) -> int | None:
    match = _HEX.fullmatch(text.strip())
    if match is None:
        return None
    digits = match.group(1).replace("`", "")
    return int(digits, 16) if digits else None


def resolve(query: str, base: kb.KnowledgeBase) -> list[Topic]:
    """Every topic ``query`` names, most specific first; empty when it names nothing we know."""
    text = query.strip()
    lowered = text.lower()
    for category in base.categories.values():
        if lowered in (category.id, category.name.lower(), category.short.lower()):
            return [Topic("category", category.id, category)]
    counter = base.category_for_counter(text)
    if counter is not None:
        return [Topic("category", counter, base.categories[counter])]
    api = base.affected_api(text)
    if api is not None:
        return [Topic("api", api.name, api)]
    constant = base.constant(text)
    if constant is not None:
        return [Topic("constant", constant[1].name, constant)]
    topics: list[Topic] = []
    bugcheck_str = _BUGCHECK_STR.fullmatch(text)
    if bugcheck_str is not None:
        arg1 = int(bugcheck_str.group(1), 16)
        meanings = base.subcode(arg1)
        return [Topic("subcode", f"{arg1:#x}", meanings)] if meanings else []
    value = _number(text)
    if value is not None:
        meanings = base.subcode(value)
        hvci = [m for m in meanings if m.hvci_related]
        if hvci:
            topics.append(Topic("subcode", f"{value:#x}", meanings))
        info = base.bugcheck(value)
        if info is not None:
            topics.append(Topic("bugcheck", f"{value:#x}", info))
        if meanings and not hvci:
            topics.append(Topic("subcode", f"{value:#x}", meanings))
        reason = base.ci_reason(value)
        if reason is not None:
            topics.append(Topic("ci-reason", f"{value:#x}", reason))
    event_match = _EVENT.fullmatch(text)
    if event_match is not None:
        event = base.event(int(event_match.group(1)))
        if event is not None:
            topics.append(Topic("event", str(event.id), event))
    return topics


# ------------------------------------------------------------------------------------------- plain text
