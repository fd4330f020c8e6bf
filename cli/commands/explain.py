"""``hvci-triage explain TOPIC``: what a category, 0xC4 subcode, bug check, API, counter or constant means.

TOPIC is looked up in the knowledge base in this order: a category id or name, a ``!verifier`` /
readiness counter label, an affected API, a constant name (``NonPagedPool``), then a number. Numbers are
hex as in the debugger (``0x2001``, ``2001``, ``0xC4``, ``c4``, backticks allowed), and ``0xc4_2000`` (the
``BUGCHECK_STR`` form) names a subcode. A number is shown as everything it can be: an HVCI 0xC4 subcode
(with all of its historic meanings and how we tell them apart), a bug check, another 0xC4 subcode, a
CodeIntegrity failure reason, and, when written as four decimal digits, a CodeIntegrity event id.
Output is plain text (never colour or markup, so it pastes into tickets) or ``--format json``. An unknown
topic is a one-line error and exit code 2.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import click

from cli.exitcodes import ExitCode
from cli.output import emit, warn
from hvci.knowledge import decode, kb
from hvci.knowledge.sources import public_sources

#: Microsoft's page that explains the CodeIntegrity event ids (the source of events.toml's explanations).
EVENT_IDS_PAGE = (
    "https://learn.microsoft.com/windows/security/application-security/application-control/"
    "app-control-for-business/operations/event-id-explanations"
)

_HEX = re.compile(r"(?:0x)?([0-9a-f`]+)h?", re.IGNORECASE)
_BUGCHECK_STR = re.compile(r"(?:0x)?c4[_/: ]+(?:0x)?([0-9a-f]+)", re.IGNORECASE)  # BUGCHECK_STR 0xc4_2000
_EVENT = re.compile(r"(?:event\s*(?:id)?\s*)?(\d{4})", re.IGNORECASE)
_WIDTH = 100
_STEP = re.compile(r"(?:\d+\.|-|\*) ")


@dataclass(frozen=True, slots=True)
class Topic:
    """One thing a query named; ``kind``: category, subcode, bugcheck, api, constant, event, ci-reason."""

    kind: str
    key: str
    payload: Any = field(compare=False)


def _clean_query(text: str) -> str:
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


def _wrap(text: str, indent: str = "  ") -> list[str]:
    """Re-flow prose paragraphs but keep numbered/bulleted steps on their own lines."""
    lines: list[str] = []
    for paragraph in re.split(r"\n(?=\s*(?:\d+\.|-|\*) )|\n\s*\n", text.strip()):
        flat = " ".join(paragraph.split())
        marker = _STEP.match(flat)
        hanging = indent + " " * (len(marker.group(0)) if marker else 0)
        lines.extend(
            textwrap.wrap(flat, _WIDTH, initial_indent=indent, subsequent_indent=hanging) or [indent]
        )
    return lines


def _code(text: str) -> list[str]:
    return ["    " + line if line else "" for line in text.splitlines()]


def _category_lines(category: kb.Category, *, full: bool = True) -> list[str]:
    flag = "HVCI-related" if category.hvci_related else "not HVCI-related"
    lines = [f"{category.id}: {category.name} ({category.short}, {flag})", *_wrap(category.summary), ""]
    facts = []
    if category.subcodes:
        facts.append("0xC4 Arg1: " + ", ".join(f"{c:#x}" for c in category.subcodes))
    if category.bugchecks:
        facts.append("bug check: " + ", ".join(f"{c:#x}" for c in category.bugchecks))
    if category.counter_labels:
        facts.append("counter: " + ", ".join(category.counter_labels))
    if category.event_ids:
        facts.append("CodeIntegrity events: " + ", ".join(str(e) for e in category.event_ids))
    facts.append(
        f"detected at {category.detected}; "
        + (
            "the .sys file alone shows it (hvci-triage scan)"
            if category.static_check
            else "a .sys scan can only point at call sites"
        )
    )
    lines += ["Evidence", *(f"  {fact}" for fact in facts), ""]
    if not full:
        return lines
    remedy = category.remediation
    lines += [
        "What happened",
        *_wrap(remedy.what),
        "",
        "Why memory integrity forbids it",
        *_wrap(remedy.why),
        "",
        "Fix",
        *_wrap(remedy.fix),
        "",
    ]
    if remedy.before:
        lines += ["Before", *_code(remedy.before), ""]
    if remedy.after:
        lines += ["After", *_code(remedy.after), ""]
    lines += ["Verify", *_wrap(remedy.verify), "", "Sources"]
    lines += [f"  {link.title}: {link.url}" for link in remedy.links]
    linked = {link.url for link in remedy.links}
    lines += [f"  {url}" for url in public_sources(category.sources) if url not in linked]
    return lines + [""]


def _arg_lines(names: Iterable[str], meanings: Iterable[str], indent: str = "  ") -> list[str]:
    return [f"{indent}{name}: {meaning}" for name, meaning in zip(names, meanings, strict=True) if meaning]


def _subcode_lines(key: str, meanings: tuple[kb.SubcodeMeaning, ...], base: kb.KnowledgeBase) -> list[str]:
    value = int(key, 16)
    count = len(meanings)
    title = f"Bug check 0xC4 DRIVER_VERIFIER_DETECTED_VIOLATION, Arg1 {value:#x}"
    lines = [title + (f": {count} meanings, the number alone does not decide" if count > 1 else "")]
    for i, meaning in enumerate(meanings, 1):
        label = base.categories[meaning.category].name if meaning.category else "not HVCI-related"
        span = (
            f" (one of {meaning.arg1:#x}-{meaning.arg1_last:#x})" if meaning.arg1_last != meaning.arg1 else ""
        )
        lines += [
            "",
            f"[{i}] {meaning.era}: {label}" + (f" ({meaning.category})" if meaning.category else "") + span,
        ]
        described = {
            "capture": "!analyze Arg1 text",
            "docs": "!analyze Arg1 text (from the docs)",
            "old-docs": "old docs text",
            "ours": "meaning",
        }[meaning.description_source]
        lines += _wrap(f"{described}: {meaning.description}", "    ")
        lines += _arg_lines(("Arg2", "Arg3", "Arg4"), meaning.args, "    ")
        lines += [f"    verifier banner: {text}" for text in meaning.banner_formats]
        lines += _wrap(f"era: {meaning.era_note}", "    ")
        if count > 1:
            lines += _wrap(f"how to tell: {meaning.identify_by}", "    ")
        if public := public_sources(meaning.sources):
            lines += _wrap("sources: " + "; ".join(public), "    ")
    if count > 1:
        lines += ["", "How hvci-triage decides", *_wrap(base.subcode_policy)]
    lines.append("")
    for category_id in dict.fromkeys(m.category for m in meanings if m.category):
        lines += _category_lines(base.categories[category_id])
    return lines


def _bugcheck_lines(info: kb.BugCheckInfo, base: kb.KnowledgeBase) -> list[str]:
    lines = [f"Bug check 0x{info.code:X} {info.name}" + (" (HVCI-related)" if info.hvci_related else "")]
    if info.analyze_text:
        lines += _wrap(info.analyze_text)
    lines += _arg_lines(("Arg1", "Arg2", "Arg3", "Arg4"), info.args)
    if info.hvci_note:
        lines += _wrap(info.hvci_note)
    if info.decided_by_subcode:
        lines += ["", "Code-integrity subcodes (Arg1)"]
        for meaning in (m for m in base.subcodes if m.hvci_related):
            lines.append(f"  {meaning.arg1:#x} ({meaning.era}): {meaning.category}")
        lines += _wrap("Run hvci-triage explain 0x2000 (or another subcode) for its arguments and fix.")
    more = [url for url in public_sources(info.sources) if url != info.url]
    lines += ["", "Sources", f"  {info.url}", *(f"  {url}" for url in more), ""]
    if info.category:
        lines += _category_lines(base.categories[info.category])
    return lines


def _api_lines(api: kb.AffectedApi, base: kb.KnowledgeBase) -> list[str]:
    lines = [f"{api.name}: module {api.module}, group {api.group}", *_wrap(api.note), ""]
    lines.append(f"  prototype: {api.name}{api.prototype}")
    if api.argument_index is None:
        lines.append("  deciding argument: none; no argument makes the memory non-executable")
    else:
        lines.append(f"  deciding argument: index {api.argument_index} (0-based), kind {api.argument_kind}")
        if api.implicit_args:
            lines.append(
                f"  in the compiled call: argument slot {api.binary_argument_index} "
                f"({api.implicit_args} hidden argument(s) come first)"
            )
    listed = (
        " and ".join(api.lists)
        if api.lists
        else "neither Microsoft list (hooked by the verifier or a wrapper)"
    )
    lines += [f"  listed in: {listed}", ""]
    return lines + _category_lines(base.categories[api.category])


def _constant_lines(constant: tuple[kb.ConstantTable, kb.ConstantEntry]) -> list[str]:
    table, entry = constant
    lines = [f"{entry.name} = {entry.value:#x} ({table.title}, {entry.role})"]
    if entry.aliases:
        lines.append("  also named: " + ", ".join(entry.aliases))
    executable: bool | None = None
    if entry.role == "value":
        executable = decode.decode(table.key, entry.value).executable
        verdict = {True: "executable", False: "non-executable", None: "not decided by this value"}[executable]
        lines.append(f"  memory: {verdict}")
    elif table.executable_if_any is not None and entry.value & table.executable_if_any:
        executable = True
        lines.append("  memory: this flag asks for executable memory")
    elif table.nx_if_any is not None and entry.value & table.nx_if_any:
        lines.append("  memory: this flag makes the memory non-executable")
    if executable and entry.replacement:
        replacement = table.entry(entry.replacement)
        if replacement is not None:
            lines.append(f"  use instead: {replacement.name} ({replacement.value:#x})")
    if entry.note:
        lines += _wrap(entry.note)
    lines += ["", "Sources", *(f"  {url}" for url in public_sources([entry.source or table.source])), ""]
    return lines


def _event_lines(event: kb.EventInfo, base: kb.KnowledgeBase) -> list[str]:
    lines = [f"{event.provider} event {event.id}" + (" (audit)" if event.audit else "")]
    if event.template:
        lines += _wrap(f"message: {event.template}")
    if event.template_v0:
        lines += _wrap(f"older message (v0): {event.template_v0}")
    if event.explanation:
        lines += _wrap(f"Microsoft: {event.explanation}")
    lines += ["", "Sources", f"  {EVENT_IDS_PAGE}", ""]
    if event.category:
        lines += _category_lines(base.categories[event.category])
    return lines


def _reason_lines(reason: kb.CiReason, base: kb.KnowledgeBase) -> list[str]:
    lines = [
        f"CodeIntegrity failure reason {reason.id:#x}: {reason.text}",
        *_wrap("Very likely a decoded bit of event 3087's failure bitmap (mapping unconfirmed)."),
        "",
        "Sources",
        f"  {EVENT_IDS_PAGE}",
        "",
    ]
    if reason.category:
        lines += _category_lines(base.categories[reason.category])
    return lines


def render_text(topics: list[Topic], base: kb.KnowledgeBase) -> str:
    lines: list[str] = []
    for topic in topics:
        if lines:
            lines += ["-" * 40, ""]
        if topic.kind == "category":
            lines += _category_lines(topic.payload)
        elif topic.kind == "subcode":
            lines += _subcode_lines(topic.key, topic.payload, base)
        elif topic.kind == "bugcheck":
            lines += _bugcheck_lines(topic.payload, base)
        elif topic.kind == "api":
            lines += _api_lines(topic.payload, base)
        elif topic.kind == "constant":
            lines += _constant_lines(topic.payload)
        elif topic.kind == "event":
            lines += _event_lines(topic.payload, base)
        else:
            lines += _reason_lines(topic.payload, base)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ JSON


def _category_json(category: kb.Category) -> dict[str, Any]:
    remedy = category.remediation
    return {
        "id": category.id,
        "name": category.name,
        "short": category.short,
        "hvci_related": category.hvci_related,
        "counter_labels": list(category.counter_labels),
        "subcodes": list(category.subcodes),
        "bugchecks": list(category.bugchecks),
        "event_ids": list(category.event_ids),
        "detected": category.detected,
        "static_check": category.static_check,
        "summary": category.summary,
        "sources": public_sources(category.sources),
        "remediation": {
            "what": remedy.what,
            "why": remedy.why,
            "fix": remedy.fix,
            "before": remedy.before,
            "after": remedy.after,
            "code_language": remedy.code_language,
            "verify": remedy.verify,
            "links": [{"title": link.title, "url": link.url} for link in remedy.links],
        },
    }


def _meaning_json(meaning: kb.SubcodeMeaning) -> dict[str, Any]:
    return {
        "arg1": meaning.arg1,
        "arg1_last": meaning.arg1_last,
        "era": meaning.era,
        "era_note": meaning.era_note,
        "category": meaning.category,
        "hvci_related": meaning.hvci_related,
        "description": meaning.description,
        "description_source": meaning.description_source,
        "args": list(meaning.args),
        "arg_kinds": list(meaning.arg_kinds),
        "banner_formats": list(meaning.banner_formats),
        "identify_by": meaning.identify_by,
        "sources": public_sources(meaning.sources),
    }


def _topic_json(topic: Topic, base: kb.KnowledgeBase) -> dict[str, Any]:
    result: dict[str, Any] = {"kind": topic.kind, "key": topic.key}
    payload = topic.payload
    category_id: str | None = None
    if topic.kind == "category":
        category_id = payload.id
    elif topic.kind == "subcode":
        result["meanings"] = [_meaning_json(m) for m in payload]
        result["categories"] = [
            _category_json(base.categories[c])
            for c in dict.fromkeys(m.category for m in payload if m.category)
        ]
    elif topic.kind == "bugcheck":
        result.update(
            code=payload.code,
            name=payload.name,
            hvci_related=payload.hvci_related,
            category=payload.category,
            decided_by_subcode=payload.decided_by_subcode,
            args=list(payload.args),
            analyze_text=payload.analyze_text or None,
            hvci_note=payload.hvci_note or None,
            url=payload.url,
            sources=public_sources(payload.sources),
        )
        category_id = payload.category
    elif topic.kind == "api":
        result.update(
            name=payload.name,
            module=payload.module,
            category=payload.category,
            argument_index=payload.argument_index,
            argument_kind=payload.argument_kind,
            implicit_args=payload.implicit_args,
            binary_argument_index=payload.binary_argument_index,
            group=payload.group,
            lists=list(payload.lists),
            prototype=payload.prototype,
            note=payload.note,
        )
        category_id = payload.category
    elif topic.kind == "constant":
        table, entry = payload
        result.update(
            table=table.key,
            title=table.title,
            name=entry.name,
            value=entry.value,
            role=entry.role,
            aliases=list(entry.aliases),
            replacement=entry.replacement,
            note=entry.note or None,
            source=entry.source or table.source,
        )
    elif topic.kind == "event":
        result.update(
            id=payload.id,
            provider=payload.provider,
            category=payload.category,
            template=payload.template or None,
            template_v0=payload.template_v0 or None,
            explanation=payload.explanation or None,
            audit=payload.audit,
        )
        category_id = payload.category
    else:
        result.update(id=payload.id, text=payload.text, category=payload.category)
        category_id = payload.category
    if category_id is not None:
        result["category_info"] = _category_json(base.categories[category_id])
    return result


def render_json(query: str, topics: list[Topic], base: kb.KnowledgeBase) -> str:
    document = {"query": query, "topics": [_topic_json(t, base) for t in topics]}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _list_text(base: kb.KnowledgeBase) -> str:
    lines = ["Categories (hvci-triage explain ID):"]
    width = max(len(c.id) for c in base.categories.values())
    lines += [f"  {c.id:<{width}}  {c.name}" for c in base.categories.values()]
    return "\n".join(lines) + "\n"


@click.command("explain", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("topic", nargs=-1)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Plain text or JSON.",
)
@click.option("--list", "list_topics", is_flag=True, help="List the category ids.")
def command(topic: tuple[str, ...], fmt: str, list_topics: bool) -> None:
    """Explain a category, 0xC4 subcode, bug check, API, counter label or constant.

    TOPIC is a category id (execute-pool-type), a number in hex (0x2001, 2001, 0xC4, c4), an API name
    (MmMapIoSpace), a counter label (Execute Pool Type Count), a constant (NonPagedPool) or a CodeIntegrity
    event id (3087).
    """
    base = kb.load()
    if list_topics:
        emit(_list_text(base))
        return
    query = _clean_query(" ".join(topic))
    if not query:
        warn(
            "give a topic (a category id, 0x2000, 0xC4, an API name or a counter label), or --list",
            prefix="hvci-triage explain",
        )
        click.get_current_context().exit(ExitCode.USAGE)
    topics = resolve(query, base)
    if not topics:
        warn(
            f"unknown topic {query!r} (try a category id, 0x2000, 0xC4, an API name, a counter label, "
            "or --list)",
            prefix="hvci-triage explain",
        )
        click.get_current_context().exit(ExitCode.USAGE)
    emit(render_json(query, topics, base) if fmt == "json" else render_text(topics, base))
