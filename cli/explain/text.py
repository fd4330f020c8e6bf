"""``explain`` in plain text: never colour or markup, so that it pastes into tickets and reads in a console.

Prose is re-flowed to 100 columns; numbered and bulleted steps and code stay as they are written.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable
from typing import TYPE_CHECKING

from cli.explain.topics import EVENT_IDS_PAGE, Topic
from hvci.knowledge.sources import public_sources

if TYPE_CHECKING:
    from hvci.knowledge import kb

_WIDTH = 100
_STEP = re.compile(r"(?:\d+\.|-|\*) ")


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
        from hvci.knowledge.decode import decode  # its tables only when a constant is shown

        executable = decode(table.key, entry.value).executable
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


def list_text(base: kb.KnowledgeBase) -> str:
    lines = ["Categories (hvci-triage explain ID):"]
    width = max(len(c.id) for c in base.categories.values())
    lines += [f"  {c.id:<{width}}  {c.name}" for c in base.categories.values()]
    return "\n".join(lines) + "\n"
