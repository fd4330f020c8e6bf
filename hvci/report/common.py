"""What the human-readable writers (text, Markdown, HTML) share: ordering, wording and safe text.

Log text is data: anything copied from an input goes through :func:`plain` first, which turns control
characters (terminal escapes included) into visible ``\\x1b`` escapes, so no writer can let a log line
drive a terminal, a Markdown renderer or a browser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from hvci.details import CrashDetails, JsonValue, details_json
from hvci.findings import Finding, Occurrence, group_findings
from hvci.knowledge import kb
from hvci.model import Baseline, Caller, Incident, Report, confidence_rank
from parsers.deferred import deferred_compile
from parsers.records import Span

_PATH_CONTROL = deferred_compile(r"[\t\n]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def plain(text: object) -> str:
    """Text safe to print: control, bidi-override and line-separator characters shown as escapes."""
    return _CONTROL.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}",
        str(text),
    )


def verdict(incident: Incident) -> str:
    """The verdict word: the category id, else whether the incident is HVCI-related at all (a verifier
    banner cut short is code integrity of a kind the input no longer tells, not "not HVCI-related")."""
    if incident.category is not None:
        return incident.category
    return "code integrity, kind unknown" if incident.hvci_related else "not HVCI-related"


def one_line(text: object) -> str:
    """:func:`plain` and on one line (tabs and newlines become spaces)."""
    return plain(str(text).replace("\r", " ").replace("\n", " ").replace("\t", " "))


def ordered(report: Report) -> tuple[list[Incident], list[Incident]]:
    """HVCI-related incidents first (strongest confidence first, then input order), then the others."""
    hvci = sorted(report.hvci_incidents, key=lambda i: confidence_rank(i.confidence))
    others = [i for i in report.incidents if not i.hvci_related]
    return hvci, others


def ordered_findings(report: Report) -> tuple[list[Finding], list[Finding]]:
    """The de-duplicated findings (:mod:`hvci.findings`), HVCI-related first by their representative's
    confidence, then the others, each in order of first occurrence."""
    findings = group_findings(report.incidents)
    hvci = sorted(
        (f for f in findings if f.incident.hvci_related), key=lambda f: confidence_rank(f.incident.confidence)
    )
    return hvci, [f for f in findings if not f.incident.hvci_related]


def occurrence_text(occurrence: Occurrence) -> str:
    """``crash.log:12-40`` with ``x3`` when it stands for several reports and the time when known."""
    text = where(occurrence.source)
    if occurrence.count != 1:
        text += f" x{occurrence.count}"
    if occurrence.timestamp:
        text += f" ({occurrence.timestamp})"
    return text


def repeat_lines(finding: Finding) -> list[tuple[str, str]]:
    """What a repeated finding adds to its representative incident: the total, first and last seen, and
    where every occurrence is. Nothing for a finding seen once."""
    if len(finding.occurrences) == 1:
        return []
    return [
        ("Occurrences", f"{finding.count} report(s) in {len(finding.occurrences)} incident(s)"),
        ("First seen", occurrence_text(finding.first_seen)),
        ("Last seen", occurrence_text(finding.last_seen)),
        ("Seen at", ", ".join(occurrence_text(o) for o in finding.occurrences)),
    ]


def baseline_state(finding: Finding, baseline: Baseline | None) -> tuple[str, str] | None:
    """``("Baseline", "new")`` or ``unchanged`` when the report was compared with a baseline."""
    if baseline is None:
        return None
    return "Baseline", baseline.states.get(finding.bucket, "new")


def baseline_summary(baseline: Baseline | None) -> str | None:
    """One line: what the report was compared with and how many findings are new, unchanged, absent."""
    if baseline is None:
        return None
    return (
        f"Compared with {one_line(baseline.source)}: {baseline.count('new')} new, "
        f"{baseline.count('unchanged')} unchanged, {len(baseline.absent)} no longer seen"
    )


def where(span: Span | None) -> str:
    """``path:line`` or ``path:first-last``, on one line whatever the file name holds: a newline or an
    escape in a name must not split a report line or inject Markdown, so every control character,
    tabs and newlines included, is shown as an escape."""
    if span is None:
        return "-"
    path = _PATH_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", plain(span.path))
    if span.offset is not None:
        return f"{path}@0x{span.offset:x}"
    if span.first_line == span.last_line == 0:
        return path
    if span.first_line == span.last_line:
        return f"{path}:{span.first_line}"
    return f"{path}:{span.first_line}-{span.last_line}"


def bugcheck_text(incident: Incident) -> str | None:
    bugcheck = incident.bugcheck
    if bugcheck is None:
        return None
    args = ", ".join(f"{a:#x}" for a in bugcheck.args)
    name = f" {bugcheck.name}" if bugcheck.name else ""
    return f"{bugcheck.code:#x}{name} ({args})"


def caller_text(caller: Caller | None) -> str | None:
    """``IntelHaxm.sys+0x52f0 AllocateBuffer+0x12 (src/alloc.c:42) [pdb]``."""
    if caller is None:
        return None
    parts: list[str] = []
    if caller.module is not None:
        parts.append(caller.module if caller.offset is None else f"{caller.module}+{caller.offset:#x}")
    elif caller.address is not None:
        parts.append(f"{caller.address:#x}")
    if caller.function is not None:
        displacement = f"+{caller.displacement:#x}" if caller.displacement else ""
        parts.append(f"{caller.function}{displacement}")
    if caller.file is not None:
        parts.append(f"({caller.file}:{caller.line})" if caller.line is not None else f"({caller.file})")
    if caller.address is not None and caller.module is not None:
        parts.append(f"at {caller.address:#x}")
    parts.append(f"[{caller.resolved_by}]")
    if caller.note:
        parts.append(f"- {caller.note}")
    return " ".join(parts)


def value_text(value: JsonValue) -> str:
    """A details value in words: ``{"value": 0, "name": "NonPagedPool", ...}`` -> ``NonPagedPool (0x0)``."""
    if isinstance(value, Mapping):
        if "name" in value and "value" in value:
            number = value["value"]
            text = f"{value['name']} ({number:#x})" if isinstance(number, int) else str(value["name"])
            extras = [f"{k}: {value_text(v)}" for k, v in value.items() if k not in ("name", "value")]
            return text + (f" [{'; '.join(extras)}]" if extras else "")
        return "; ".join(f"{k}: {value_text(v)}" for k, v in value.items())
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ", ".join(value_text(v) for v in value)
    if isinstance(value, int):
        return f"{value:#x}" if value > 9 else str(value)
    return str(value)


def detail_lines(incident: Incident) -> list[tuple[str, str]]:
    """Details as (label, text): each bug check argument on its own line (``Arg2``), then the rest."""
    lines: list[tuple[str, str]] = []
    details = incident.details
    rest = details_json(details)
    if isinstance(details, CrashDetails):
        subcode = details.subcode
        if subcode is not None:
            lines.append(("Arg1", f"{subcode.value:#x} {subcode.meaning} ({subcode.era} meaning)"))
        for argument in details.arguments or ():
            meaning = f" {argument.meaning}" if argument.meaning else ""
            lines.append((f"Arg{argument.index}", f"{argument.value:#x}{meaning}"))
        rest.pop("subcode", None)
        rest.pop("arguments", None)
    lines.extend((key, value_text(value)) for key, value in rest.items())
    return lines


_STEP = deferred_compile(r"^\s*\d+\.\s+")


def first_step(text: str) -> str:
    """The first numbered step of a remediation text (or its first paragraph), on one line."""
    taken: list[str] = []
    for number, line in enumerate(text.strip().splitlines()):
        if not line.strip() or (number > 0 and _STEP.match(line)):
            break
        taken.append(_STEP.sub("", line, count=1) if number == 0 else line)
    return " ".join(" ".join(taken).split())


def fix_summary(category: str | None) -> str | None:
    """The first step of the knowledge base's fix for a category, on one line, with where to read more."""
    if category is None:
        return None
    entry = kb.load().categories.get(category)
    if entry is None or not entry.remediation.fix.strip():
        return None
    return f"{first_step(entry.remediation.fix)} (all steps: hvci-triage explain {category})"


def category_name(category: str | None) -> str | None:
    if category is None:
        return None
    entry = kb.load().categories.get(category)
    return entry.name if entry is not None else category
