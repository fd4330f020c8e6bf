"""The JSON report: the versioned contract (``docs/report.schema.json``) that CI and other tools read.

Everything the schema names is here with the same names and types (numbers are JSON integers,
addresses and offsets lower-case ``0x`` hex strings). Beyond it, each incident carries ``title``, ``driver``,
``evidence`` (reason, span, weight), ``stack`` (parsed frames), ``count`` and, in ``caller``, ``inlined`` and
``note``; the top level carries the de-duplicated ``findings`` (one per bucket, with every occurrence) and a
``summary`` of counts; each input its ``lines`` and ``bytes``. Nothing here
reads the knowledge base or the symbols: the report is a pure rendering of :class:`hvci.model.Report`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from hvci.details import details_json
from hvci.findings import FindingLike, Occurrence, group_findings
from hvci.model import Baseline, Caller, Evidence, Incident, Report
from hvci.report.totals import Totals
from parsers.records import Diagnostic, InputInfo, Span, StackFrame


def hex_or_none(value: int | None) -> str | None:
    return None if value is None else f"{value:#x}"


def span_dict(span: Span | None) -> dict[str, Any] | None:
    if span is None:
        return None
    spanned = {"path": span.path, "first_line": span.first_line, "last_line": span.last_line}
    if span.offset is not None:
        spanned["offset"] = span.offset  # byte offset of the field in a binary input (a crash dump)
    return spanned


def diagnostic_dict(diagnostic: Diagnostic) -> dict[str, Any]:
    return {
        "message": diagnostic.message,
        "severity": diagnostic.severity,
        "span": span_dict(diagnostic.span),
    }


def input_dict(info: InputInfo) -> dict[str, Any]:
    return {
        "path": info.path,
        "format": info.format,
        "encoding": info.encoding,
        "lines": info.lines,
        "bytes": info.bytes_read,
        "diagnostics": [diagnostic_dict(d) for d in info.diagnostics],
    }


def caller_dict(caller: Caller | None) -> dict[str, Any] | None:
    if caller is None:
        return None
    return {
        "address": hex_or_none(caller.address),
        "module": caller.module,
        "offset": hex_or_none(caller.offset),
        "function": caller.function,
        "displacement": hex_or_none(caller.displacement),
        "file": caller.file,
        "line": caller.line,
        "inlined": list(caller.inlined),
        "resolved_by": caller.resolved_by,
        "note": caller.note,
    }


def evidence_dict(evidence: Evidence) -> dict[str, Any]:
    return {"reason": evidence.reason, "span": span_dict(evidence.span), "weight": evidence.weight}


def frame_dict(frame: StackFrame) -> dict[str, Any]:
    return {
        "index": frame.index,
        "line": frame.line,
        "text": frame.text,
        "module": frame.module,
        "function": frame.function,
        "offset": hex_or_none(frame.offset),
        "address": hex_or_none(frame.address),
        "return_address": hex_or_none(frame.return_address),
        "child_sp": hex_or_none(frame.child_sp),
        "source_file": frame.source_file,
        "source_line": frame.source_line,
        "inline": frame.inline,
    }


def jsonable(value: Any) -> Any:
    """Details are built from JSON types already; tuples become lists and mapping keys strings."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def incident_dict(incident: Incident) -> dict[str, Any]:
    bugcheck = incident.bugcheck
    return {
        "id": incident.id,
        "source": span_dict(incident.source),
        "kind": incident.kind,
        "title": incident.title,
        "bugcheck": None
        if bugcheck is None
        else {"code": bugcheck.code, "name": bugcheck.name, "args": list(bugcheck.args)},
        "category": incident.category,
        "hvci_related": incident.hvci_related,
        "confidence": incident.confidence,
        "driver": incident.driver,
        "caller": caller_dict(incident.caller),
        "details": details_json(incident.details),
        "evidence": [evidence_dict(e) for e in incident.evidence],
        "stack": [frame_dict(f) for f in incident.stack],
        "count": incident.count,
        "bucket": incident.bucket,
    }


def occurrence_dict(occurrence: Occurrence) -> dict[str, Any]:
    return {
        "incident": occurrence.incident_id,
        "source": span_dict(occurrence.source),
        "count": occurrence.count,
        "timestamp": occurrence.timestamp,
    }


def finding_dict(finding: FindingLike, baseline: Baseline | None = None) -> dict[str, Any]:
    """One de-duplicated bucket (see :mod:`hvci.findings`): the representative incident by id, the total
    count, first and last seen, every occurrence, and with a baseline whether it is new."""
    head = _finding_head(finding, baseline)
    head["occurrences"] = [occurrence_dict(o) for o in finding.occurrences]
    return head


def _finding_head(finding: FindingLike, baseline: Baseline | None) -> dict[str, Any]:
    """:func:`finding_dict` with an empty ``occurrences`` list (in its place: keys keep their order)."""
    state = {} if baseline is None else {"baseline": baseline.states.get(finding.bucket, "new")}
    return {
        "bucket": finding.bucket,
        "aliases": list(finding.aliases),
        "incident": finding.incident.id,
        "category": finding.incident.category,
        "hvci_related": finding.incident.hvci_related,
        "driver": finding.incident.driver,
        "count": finding.count,
        "first_seen": occurrence_dict(finding.first_seen),
        "last_seen": occurrence_dict(finding.last_seen),
        "occurrences": [],
        **state,
    }


def baseline_dict(baseline: Baseline | None) -> dict[str, Any]:
    """``{"baseline": {...}}`` for a report compared with a baseline, else nothing."""
    if baseline is None:
        return {}
    return {
        "baseline": {
            "source": baseline.source,
            "new": baseline.count("new"),
            "unchanged": baseline.count("unchanged"),
            "absent": list(baseline.absent),
        }
    }


def summary_dict(report: Report) -> dict[str, Any]:
    totals = Totals()
    for incident in report.incidents:
        totals.add(incident)
    return totals.summary(report.incomplete)


def to_json_dict(report: Report) -> dict[str, Any]:
    return {
        "schema": report.schema,
        "inputs": [input_dict(i) for i in report.inputs],
        "incidents": [incident_dict(i) for i in report.incidents],
        "findings": [finding_dict(f, report.baseline) for f in group_findings(report.incidents)],
        "summary": summary_dict(report),
        **baseline_dict(report.baseline),
    }


#: Characters that JSON may carry raw but that reorder or hide text when a consumer prints it (C1 controls,
#: line separators, bidi overrides): written as ``\uXXXX`` escapes, which decode to the same string.
_INVISIBLE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def dumps(value: Any, *, indent: int | None = None) -> str:
    """JSON as UTF-8-friendly text (non-ASCII kept readable) with invisible controls escaped. Of those, only
    DEL is ASCII: an ASCII text without it is returned as it is (one memchr-speed test instead of a search
    through the ~2 KB of every incident, issue 16)."""
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    if text.isascii() and "\x7f" not in text:
        return text
    return _INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def render_json(report: Report) -> str:
    return "".join(iter_json(report))


def iter_json(report: Report) -> Iterator[str]:
    """The JSON report (exactly ``dumps(to_json_dict(report), indent=2)``) in pieces: one per incident and
    per occurrence, so that writing it needs memory for one incident at a time, not for the whole tree."""
    return json_document(
        report.schema,
        report.inputs,
        incident_pieces(report.incidents, "json"),
        group_findings(report.incidents),
        summary_dict(report),
        report.baseline,
    )


def render_jsonl(report: Report) -> str:
    return "".join(iter_jsonl(report))


def iter_jsonl(report: Report) -> Iterator[str]:
    """JSON Lines for streaming consumers: a ``header`` line (schema, inputs), one ``incident`` line per
    incident (the same object as in the JSON report), one ``finding`` line per bucket, then a ``summary``
    line. Every line has ``type``; each is made when it is written."""
    return jsonl_document(
        report.schema,
        report.inputs,
        incident_pieces(report.incidents, "jsonl"),
        group_findings(report.incidents),
        summary_dict(report),
        report.baseline,
    )


# ------------------------------------------------------------------------------ documents made in pieces
# Shared by the writers above (a whole Report) and by hvci.batch.spool (a batch streamed through a file): the
# incidents arrive as text already (each incident's piece), the findings as FindingLike whose occurrences are
# read as they are written.


class IncidentPieces:
    """Each incident's text as it appears in the document, separators included; :meth:`end` closes the
    incident list (JSON) or is empty (JSON Lines)."""

    def __init__(self, fmt: str) -> None:
        self._json = fmt == "json"
        self._count = 0

    def piece(self, incident: Incident) -> str:
        self._count += 1
        if not self._json:
            return dumps({"type": "incident", **incident_dict(incident)}) + "\n"
        return (
            ("[" if self._count == 1 else ",")
            + "\n    "
            + _nested(dumps(incident_dict(incident), indent=2), 4)
        )

    def end(self) -> str:
        if not self._json:
            return ""
        return "\n  ]" if self._count else "[]"


def incident_pieces(incidents: Iterable[Incident], fmt: str) -> Iterator[str]:
    pieces = IncidentPieces(fmt)
    for incident in incidents:
        yield pieces.piece(incident)
    yield pieces.end()


def json_document(
    schema: str,
    inputs: Iterable[InputInfo],
    incidents: Iterable[str],
    findings: Iterable[FindingLike],
    summary: dict[str, Any],
    baseline: Baseline | None,
) -> Iterator[str]:
    """The JSON report from its parts; ``incidents`` are the pieces :class:`IncidentPieces` made."""
    yield "{\n  " + dumps("schema") + ": " + dumps(schema)
    yield ',\n  "inputs": ' + _nested(dumps([input_dict(i) for i in inputs], indent=2), 2)
    yield ',\n  "incidents": '
    yield from incidents
    yield ',\n  "findings": '
    empty = True
    for finding in findings:
        yield ("[" if empty else ",") + "\n    "
        yield from (_nested(piece, 4) for piece in _finding_pieces(finding, baseline, indent=2))
        empty = False
    yield "[]" if empty else "\n  ]"
    tail = {"summary": summary, **baseline_dict(baseline)}
    for key, value in tail.items():
        yield f",\n  {dumps(key)}: " + _nested(dumps(value, indent=2), 2)
    yield "\n}\n"


def jsonl_document(
    schema: str,
    inputs: Iterable[InputInfo],
    incidents: Iterable[str],
    findings: Iterable[FindingLike],
    summary: dict[str, Any],
    baseline: Baseline | None,
) -> Iterator[str]:
    """The JSON Lines report from its parts; ``incidents`` are the lines :class:`IncidentPieces` made."""
    yield dumps({"type": "header", "schema": schema, "inputs": [input_dict(i) for i in inputs]}) + "\n"
    yield from incidents
    for finding in findings:
        yield from _finding_pieces(finding, baseline, indent=None, head={"type": "finding"})
        yield "\n"
    yield dumps({"type": "summary", **summary, **baseline_dict(baseline)}) + "\n"


def _finding_pieces(
    finding: FindingLike, baseline: Baseline | None, *, indent: int | None, head: dict[str, Any] | None = None
) -> Iterator[str]:
    """``dumps(finding_dict(finding, baseline), indent=indent)`` with its occurrences made one by one (a
    finding of a dense log lists hundreds of thousands)."""
    text = dumps({**(head or {}), **_finding_head(finding, baseline)}, indent=indent)
    before, after = text.split(_NO_OCCURRENCES, 1)  # a key, never a value's text: quotes there are escaped
    yield before + '"occurrences": '
    empty = True
    for occurrence in finding.occurrences:
        item = dumps(occurrence_dict(occurrence), indent=indent)
        if indent is None:
            yield ("[" if empty else ", ") + item
        else:
            yield ("[" if empty else ",") + "\n    " + _nested(item, 4)
        empty = False
    yield ("[]" if empty else "]" if indent is None else "\n  ]") + after


_NO_OCCURRENCES = '"occurrences": []'


def _nested(text: str, depth: int) -> str:
    """``text`` (indented JSON) as it appears ``depth`` spaces deep in an enclosing document."""
    return text.replace("\n", "\n" + " " * depth)
