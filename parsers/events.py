"""Windows events (Microsoft-Windows-CodeIntegrity, Microsoft-Windows-DeviceGuard, ...) as users export them.

The export shapes read, each event becoming one :class:`EventRecord`:

- ``wevtutil qe LOG /f:text``: ``Event[N]:`` then indented ``Key: value`` lines and the message after
  ``Description:``;
- ``Get-WinEvent ... | Format-List``: ``TimeCreated``/``ProviderName``/``Id``/``Message`` (or
  ``Format-List *``) with wrapped values indented under the value column, one blank line between events;
- XML: ``wevtutil qe /f:xml`` (one ``<Event xmlns=...>`` per line), ``/f:RenderedXml``, Event Viewer's
  "Save as XML" (``<Events>`` with many events, possibly on one line) and the pretty-printed "XML View".
  Parsed with the standard library, but only after refusing DTDs/entities and bounding the size; a
  malformed or truncated event still yields what simple patterns can read, with a diagnostic;
- Event Viewer CSV (``Level,Date and Time,Source,Event ID,Task Category`` then rows whose sixth field is the
  quoted, possibly multi-line message);
- Event Viewer's "Copy details as text" (``Log Name:`` ... ``Description:`` ... ``Event Xml:``), the usual
  paste into a bug report, read as one event together with its XML;
- plain ``Get-WinEvent`` output (a ``ProviderName:`` group over a ``TimeCreated Id LevelDisplayName Message``
  table), whose messages PowerShell cuts at the console width; a diagnostic says so.

The module (``%2``: the file the event is about), the process, the ``Status`` and the 3087 ``Failure bitmap``
are taken from the event data when the export carries it, otherwise from the message text. Paths are kept as
printed (``\\Device\\HarddiskVolume3\\...``).
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterator

from parsers import rebooted
from parsers.base import Line, LineCursor
from parsers.deferred import deferred_compile
from parsers.event_fields import event_int, event_record, has_dtd, read_xml
from parsers.kernelpower import bugcheck_from_data
from parsers.records import Diagnostic, EventRecord, Record, Span

_WEVTUTIL_START = deferred_compile(r"^Event\[\d+\]:")
_WEVTUTIL_FIELD = deferred_compile(r"^\s+(?P<key>[A-Za-z][A-Za-z ]*?)\s*:\s?(?P<value>.*)$")
_FL_FIELD = deferred_compile(r"^(?P<key>[A-Za-z][A-Za-z0-9]*)\s*: ?(?P<value>.*)$")
_FL_START = deferred_compile(r"^(?:TimeCreated|ProviderName|Message)\s+: ")
_CSV_HEADER = deferred_compile(r"^\ufeff?Level,Date and Time,Source,Event ID,Task Category")
_XML_OPEN = deferred_compile(r"<Event(?=[\s>/])")
_XML_CLOSE = "</Event>"
_XML_TRAILER = deferred_compile(r"^\s*</Events>\s*$")
_COPIED_START = deferred_compile(r"^Log Name:\s+\S")
_COPIED_FIELD = deferred_compile(r"^(?P<key>[A-Za-z][A-Za-z ]*?):\s*(?P<value>.*)$")
_COPIED_XML = deferred_compile(r"^Event Xml:\s*$")
_TABLE_GROUP = deferred_compile(r"^\s+ProviderName: (?P<provider>\S.*)$")
_TABLE_HEADER = deferred_compile(r"^TimeCreated\s+Id\s+LevelDisplayName\s+Message\s*$")
_TABLE_RULE = deferred_compile(r"^-+[\s-]*$")
_TRUNCATED = ("...", "\u2026")

_MAX_EVENT_LINES = 5_000
_MAX_XML_EVENT = 1_048_576
_MAX_SALVAGE = 65_536
_MAX_CSV_ROW_LINES = 1_000


def _push_back(cursor: LineCursor, lines: list[Line]) -> None:
    for line in reversed(lines):
        cursor.push_back(line)


class EventsParser:
    """Reads one exported event (text, Format-List, XML) or a whole Event Viewer CSV table."""

    name = "events"
    trigger = (
        r"^Event\[\d+\]:|^\s*<Event(?:\s+xmlns\s*=|>)|^\s*<Events>[^\n]*<Event[\s>]"
        r"|^\s*<\?xml\b[^\n]*<Event[\s>]|^\ufeff?Level,Date and Time,Source,Event ID,Task Category"
        r"|^(?:TimeCreated|ProviderName|Message)\s+: |^Log Name:\s+\S|^\s+ProviderName: \S"
    )

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        for record in self._records(first, cursor):
            bugcheck = None
            if isinstance(record, EventRecord) and record.event_id == 1001:
                bugcheck = rebooted.bugcheck_in(record.message.splitlines(), record.span)
            yield record if bugcheck is None else bugcheck  # event 1001 of a crash: its bug check

    def _records(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        if _WEVTUTIL_START.match(first.text):
            yield from self._wevtutil(first, cursor)
        elif _CSV_HEADER.match(first.text):
            yield from self._csv(first, cursor)
        elif _XML_OPEN.search(first.text):
            yield from self._xml(first, cursor)
        elif _COPIED_START.match(first.text):
            yield from self._copied(first, cursor)
        elif _TABLE_GROUP.match(first.text):
            yield from self._format_table(first, cursor)
        else:
            yield from self._format_list(first, cursor)

    # -- wevtutil /f:text ---------------------------------------------------------------------------------

    def _wevtutil(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        fields: dict[str, str] = {}
        description: list[str] = []
        in_description = False
        last = first.number
        for _ in range(_MAX_EVENT_LINES):
            line = cursor.next()
            if line is None:
                break
            if _WEVTUTIL_START.match(line.text) or (in_description and not line.text.strip()):
                cursor.push_back(line)
                break
            if in_description:
                description.append(line.text.rstrip())
            elif found := _WEVTUTIL_FIELD.match(line.text):
                key = found.group("key").strip().lower()
                fields[key] = found.group("value").strip()
                if key == "description":
                    in_description = True
                    if fields[key]:
                        description.append(fields[key])
            else:
                cursor.push_back(line)
                break
            last = line.number
        span = Span(cursor.path, first.number, last)
        event_id = event_int(fields.get("event id", ""))
        if event_id is None:
            yield Diagnostic(span, "events: wevtutil event without a readable Event ID")
            return
        yield event_record(
            span, fields.get("source", ""), event_id, "\n".join(description), fields.get("date")
        )

    # -- Get-WinEvent | Format-List -----------------------------------------------------------------------

    def _format_list(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        fields: dict[str, str] = {}
        order: list[str] = []
        taken: list[Line] = [first]

        def add(line: Line) -> bool:
            if line.text[:1].isspace() and order:
                fields[order[-1]] = f"{fields[order[-1]]} {line.text.strip()}".strip()
                return True
            found = _FL_FIELD.match(line.text)
            if not found:
                return False
            key = found.group("key")
            order.append(key)
            fields[key] = found.group("value").strip()
            return True

        add(first)
        for _ in range(_MAX_EVENT_LINES):
            line = cursor.next()
            if line is None:
                break
            if not line.text.strip() or not add(line):
                cursor.push_back(line)
                break
            taken.append(line)
        event_id = event_int(fields.get("Id", ""))
        if event_id is None or not ("ProviderName" in fields or "Message" in fields):
            # Some other object's Format-List: not ours; leave its lines to the other parsers.
            _push_back(cursor, taken[1:])
            return
        span = Span(cursor.path, first.number, taken[-1].number)
        yield event_record(
            span,
            fields.get("ProviderName", fields.get("LogName", "")),
            event_id,
            fields.get("Message", ""),
            fields.get("TimeCreated"),
        )

    # -- Event Viewer CSV ---------------------------------------------------------------------------------

    def _csv(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        while True:
            row_lines: list[Line] = []
            quotes = 0
            while len(row_lines) < _MAX_CSV_ROW_LINES:
                line = cursor.next()
                if line is None:
                    break
                row_lines.append(line)
                quotes += line.text.count('"')
                if quotes % 2 == 0:
                    break
            if not row_lines:
                return
            span = Span(cursor.path, row_lines[0].number, row_lines[-1].number)
            if quotes % 2:
                if len(row_lines) >= _MAX_CSV_ROW_LINES:
                    # An unbalanced quote swallowed too much: give the lines back past the first.
                    _push_back(cursor, row_lines[1:])
                    span = Span(cursor.path, row_lines[0].number, row_lines[0].number)
                yield Diagnostic(span, "events: CSV row with an unterminated quoted message")
                return
            try:
                row = next(csv.reader(io.StringIO("\n".join(line.text for line in row_lines))), [])
            except csv.Error:
                row = []
            event_id = event_int(row[3]) if len(row) >= 5 else None
            if event_id is None:
                _push_back(cursor, row_lines)
                return
            message = ",".join(row[5:])  # an unquoted message with commas spreads over several fields
            yield event_record(
                span, row[2].strip(), event_id, message.replace("\r", ""), row[1].strip() or None
            )

    # -- XML ----------------------------------------------------------------------------------------------

    def _xml(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        pending: list[str] | None = None  # pieces of the event being read, from its "<Event" on
        pending_size = 0
        pending_first = first.number
        line = first
        while True:
            text, pos = line.text, 0
            while True:
                if pending is None:
                    opened = _XML_OPEN.search(text, pos)
                    if not opened:
                        break
                    pending, pending_size, pending_first, pos = [], 0, line.number, opened.start()
                end = text.find(_XML_CLOSE, pos)
                piece = text[pos:] if end < 0 else text[pos : end + len(_XML_CLOSE)]
                pending.append(piece)
                pending_size += len(piece)
                if end < 0:
                    break
                yield from self._xml_event("\n".join(pending), Span(cursor.path, pending_first, line.number))
                pending, pos = None, end + len(_XML_CLOSE)
            if pending is not None and (pending_size > _MAX_XML_EVENT or len(pending) > _MAX_EVENT_LINES):
                yield Diagnostic(
                    Span(cursor.path, pending_first, line.number),
                    "events: XML event larger than the size limit; skipped",
                )
                return
            following = cursor.next()
            if following is None:
                break
            if pending is None:
                # Between events: go on only if another event (or the closing </Events>) follows.
                held: list[Line] = []
                while following is not None and not following.text.strip():
                    held.append(following)
                    following = cursor.next()
                if following is None or not (
                    _XML_OPEN.search(following.text) or _XML_TRAILER.match(following.text)
                ):
                    if following is not None:
                        cursor.push_back(following)
                    _push_back(cursor, held)
                    return
            line = following
        if pending is not None:
            yield from self._xml_event(
                "\n".join(pending), Span(cursor.path, pending_first, line.number), truncated=True
            )

    def _xml_event(self, text: str, span: Span, truncated: bool = False) -> Iterator[Record]:
        if has_dtd(text):
            yield Diagnostic(span, "events: XML event with a DTD or entity declaration; not parsed", "error")
            return
        event = None if truncated else read_xml(text)
        if event is None:
            yield from self._xml_by_patterns(text, span, truncated)
            return
        if event.event_id is None:
            yield Diagnostic(span, "events: XML event without an EventID")
            return
        message = event.message or "; ".join(f"{k}: {v}" for k, v in event.data.items())
        if (bugcheck := bugcheck_from_data(event.event_id, event.data, span)) is not None:
            yield bugcheck  # Kernel-Power 41 with a bug check: the bug check is the incident
            return
        yield event_record(span, event.provider, event.event_id, message, event.timestamp, event.data)

    def _xml_by_patterns(self, text: str, span: Span, truncated: bool) -> Iterator[Record]:
        """Salvage what a malformed or cut-off event shows, and say that it was not well-formed."""
        problem = "truncated" if truncated else "malformed"
        text = text[:_MAX_SALVAGE]  # the System part and the event data come first
        event_id_match = re.search(r"<EventID[^>]*>\s*(\d+)\s*<", text)
        yield Diagnostic(
            span, f"events: {problem} XML event" + ("" if event_id_match else "; no EventID could be read")
        )
        if not event_id_match:
            return
        provider = re.search(r"<Provider\s[^>]*?Name=['\"]([^'\"]*)['\"]", text)
        timestamp = re.search(r"<TimeCreated\s[^>]*?SystemTime=['\"]([^'\"]*)['\"]", text)
        message = re.search(r"<Message>([^<]*)", text)
        data = dict(re.findall(r"<Data Name=['\"]([^'\"]+)['\"]>([^<]*)</Data>", text))
        data = {k: html.unescape(v) for k, v in data.items()}
        message_text = (
            html.unescape(message.group(1)).strip()
            if message
            else "; ".join(f"{k}: {v}" for k, v in data.items())
        )
        if (bugcheck := bugcheck_from_data(int(event_id_match.group(1)), data, span)) is not None:
            yield bugcheck
            return
        yield event_record(
            span,
            provider.group(1) if provider else "",
            int(event_id_match.group(1)),
            message_text,
            timestamp.group(1) if timestamp else None,
            data,
        )

    # -- Event Viewer: Copy > Copy details as text -----------------------------------------------------------

    def _copied(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        """``Log Name:`` ... ``Description:`` + message, usually followed by ``Event Xml:`` and the event's
        XML, whose data (file name, status) is exact; that XML is read here so it is not a second event."""
        fields: dict[str, str] = {}
        found = _COPIED_FIELD.match(first.text)
        if found:
            fields[found.group("key").lower()] = found.group("value").strip()
        description: list[str] = []
        xml_lines: list[str] = []
        state = "fields"
        last = first.number
        for _ in range(_MAX_EVENT_LINES):
            line = cursor.next()
            if line is None:
                break
            text = line.text
            if state == "fields":
                found = _COPIED_FIELD.match(text)
                if not found:
                    cursor.push_back(line)
                    break
                key = found.group("key").lower()
                fields[key] = found.group("value").strip()
                if key == "description":
                    state = "description"
            elif state == "description":
                if _COPIED_XML.match(text):
                    state = "xml"
                elif not text.strip():
                    following = cursor.peek()
                    if following is None or not _COPIED_XML.match(following.text):
                        cursor.push_back(line)
                        break
                else:
                    description.append(text.rstrip())
            else:
                if not xml_lines and not _XML_OPEN.search(text):
                    cursor.push_back(line)
                    break
                xml_lines.append(text)
                if _XML_CLOSE in text:
                    last = line.number
                    break
            last = line.number
        span = Span(cursor.path, first.number, last)
        xml_text = "\n".join(xml_lines)
        event = None if not xml_lines or has_dtd(xml_text) else read_xml(xml_text)
        if xml_lines and event is None:
            yield Diagnostic(
                span, "events: the copied event's XML is not well-formed; read from its text only"
            )
        event_id = event_int(fields.get("event id", ""))
        if event_id is None and event is not None:
            event_id = event.event_id
        if event_id is None:
            yield Diagnostic(span, "events: copied event details without a readable Event ID")
            return
        message = "\n".join(description) or (event.message if event else "")
        provider = fields.get("source") or (event.provider if event else "")
        yield event_record(
            span, provider, event_id, message, fields.get("date"), event.data if event else None
        )

    # -- Get-WinEvent default (table) output ----------------------------------------------------------------

    def _format_table(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        """``   ProviderName: X`` then a ``TimeCreated Id LevelDisplayName Message`` table. Columns are cut at
        the header's positions; PowerShell cuts long messages to the console width: said, not hidden."""
        group = _TABLE_GROUP.match(first.text)
        provider = group.group("provider").strip() if group else ""
        header: str | None = None
        taken: list[Line] = []
        truncated = 0
        last = first.number
        for _ in range(_MAX_EVENT_LINES):
            line = cursor.next()
            if line is None:
                break
            text = line.text.rstrip()
            if header is None:
                if not text:
                    taken.append(line)
                    continue
                if not _TABLE_HEADER.match(text):
                    cursor.push_back(line)
                    break
                header = text
            elif _TABLE_RULE.match(text):
                pass
            elif not text:
                cursor.push_back(line)
                break
            else:
                record = self._table_row(header, text, provider, Span(cursor.path, line.number, line.number))
                if record is None:
                    cursor.push_back(line)
                    break
                truncated += record.message.endswith(_TRUNCATED)
                yield record
            last = line.number
        if header is None:
            _push_back(cursor, taken)  # not a Get-WinEvent table after all
            return
        if truncated:
            yield Diagnostic(
                Span(cursor.path, first.number, last),
                f"events: {truncated} message(s) cut short by PowerShell's table view; "
                "Format-List or wevtutil shows them in full",
                "info",
            )

    @staticmethod
    def _table_row(header: str, text: str, provider: str, span: Span) -> EventRecord | None:
        level_at = header.index("LevelDisplayName")
        message_at = header.index("Message")
        left = text[:level_at].rstrip().rsplit(None, 1)
        event_id = event_int(left[1]) if len(left) == 2 else None
        if event_id is None:
            return None
        return event_record(span, provider, event_id, text[message_at:].strip(), left[0].strip() or None)


PARSER = EventsParser()
