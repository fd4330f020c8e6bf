"""``explain --format json``: the same topics as the text, every field by name, for tools."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from cli.explain.topics import Topic
from hvci.knowledge.sources import public_sources

if TYPE_CHECKING:
    from hvci.knowledge import kb


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
