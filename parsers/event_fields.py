"""What an exported event is about, from its text or its XML: the module (``%2``: the file the event is
about), the process, the ``Status`` and the 3087 ``Failure bitmap``, taken from the event data when the
export carries it, otherwise from the message text. Shared by every event export format of
:mod:`parsers.events`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

from parsers.deferred import deferred_compile
from parsers.records import EventRecord, Span

_MODULE_PATTERNS = tuple(
    deferred_compile(p)
    for p in (
        r"attempted to load (?P<m>.+?) that (?:did not|is not|violated|has)",
        r"\b(?:kernel )?module (?P<m>.+?) (?:is not compatible|that did not|is loaded)",
        r"integrity of the file (?P<m>.+?) because",
        r"blocked file (?P<m>.+?) which",
    )
)
_PATH_SUFFIX = deferred_compile(r"\.(?:sys|dll|exe)\b", re.IGNORECASE)
_PROCESS = deferred_compile(r"a process \((?P<p>.+?)\) attempted")
_STATUS = deferred_compile(r"\bStatus\s*(?:=\s*)?(?P<s>0x[0-9a-fA-F]+|-?\d+)\b")
_BITMAP = deferred_compile(r"\bFailure bitmap\s*(?:=\s*)?(?P<b>0x[0-9a-fA-F]+|\d+)\b", re.IGNORECASE)

_MODULE_KEYS = ("filenamebuffer", "filename", "modulename", "imagename", "drivername", "file")
_PROCESS_KEYS = ("processnamebuffer", "processname", "process")
_STATUS_KEYS = ("status", "statuscode")
_BITMAP_KEYS = ("failurebitmap", "failurereasons", "failurereason")

_MAX_MESSAGE_SCAN = 4_096  # characters of a message searched for fields; CI messages are far shorter


def event_int(text: str) -> int | None:
    """A status or bitmap as exported: ``0xc0000428``, ``3221226536`` or the signed ``-1073740760``."""
    text = text.strip()
    try:
        value = int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None
    return value & 0xFFFFFFFF if value < 0 else value


def _path_in(text: str) -> str | None:
    """The first token ending in ``.sys``/``.dll``/``.exe``, found from the suffix backwards."""
    for suffix in _PATH_SUFFIX.finditer(text):
        start = suffix.start()
        while start > 0 and not text[start - 1].isspace() and text[start - 1] not in "\"'(),;":
            start -= 1
        if start < suffix.start():
            return text[start : suffix.end()]
    return None


@dataclass(frozen=True, slots=True)
class _Fields:
    module: str | None
    process: str | None
    status: int | None
    failure_bitmap: int | None


def _fields(message: str, data: dict[str, str]) -> _Fields:
    """Module, process, status and failure bitmap: event data first (exact), then the message text."""
    keyed = {re.sub(r"[^a-z0-9]", "", k.lower()): v.strip() for k, v in data.items()}

    def first(keys: tuple[str, ...]) -> str | None:
        return next((keyed[k] for k in keys if keyed.get(k)), None)

    text = message[:_MAX_MESSAGE_SCAN]
    module = first(_MODULE_KEYS)
    if module is None:
        for pattern in _MODULE_PATTERNS:
            found = pattern.search(text)
            if found:
                module = found.group("m").strip()
                break
        else:
            module = _path_in(text)
    process = first(_PROCESS_KEYS)
    if process is None and (found_process := _PROCESS.search(text)):
        process = found_process.group("p")
    status_text = first(_STATUS_KEYS)
    status = event_int(status_text) if status_text is not None else None
    if status is None and (found_status := _STATUS.search(text)):
        status = event_int(found_status.group("s"))
    bitmap_text = first(_BITMAP_KEYS)
    bitmap = event_int(bitmap_text) if bitmap_text is not None else None
    if bitmap is None and (found_bitmap := _BITMAP.search(text)):
        bitmap = event_int(found_bitmap.group("b"))
    return _Fields(module, process, status, bitmap)


def event_record(
    span: Span,
    provider: str,
    event_id: int,
    message: str,
    timestamp: str | None,
    data: dict[str, str] | None = None,
) -> EventRecord:
    found = _fields(message, data or {})
    return EventRecord(
        span=span,
        provider=provider,
        event_id=event_id,
        message=message,
        module=found.module,
        process=found.process,
        status=found.status,
        failure_bitmap=found.failure_bitmap,
        timestamp=timestamp,
    )


@dataclass(frozen=True, slots=True)
class XmlEvent:
    provider: str
    event_id: int | None
    timestamp: str | None
    message: str
    data: dict[str, str]


def has_dtd(text: str) -> bool:
    """Event XML never declares a DTD; one that does is refused before parsing (entity expansion)."""
    return "<!DOCTYPE" in text or "<!ENTITY" in text


def read_xml(text: str) -> XmlEvent | None:
    """The parts of one ``<Event>`` element that matter, or ``None`` when it is not well-formed."""
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        return None
    provider = ""
    event_id: int | None = None
    timestamp: str | None = None
    message = ""
    data: dict[str, str] = {}
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "Provider":
            provider = element.get("Name", provider) or provider
        elif tag == "EventID":
            event_id = event_int(element.text or "")
        elif tag == "TimeCreated":
            timestamp = element.get("SystemTime")
        elif tag == "Message":
            message = (element.text or "").strip()
        elif tag == "Data" and element.get("Name"):
            data[element.get("Name", "")] = (element.text or "").strip()
    for container in root:
        if container.tag.rsplit("}", 1)[-1] == "UserData":
            for element in container.iter():
                if len(element) == 0 and element is not container:
                    data.setdefault(element.tag.rsplit("}", 1)[-1], (element.text or "").strip())
    return XmlEvent(provider, event_id, timestamp, message, data)
