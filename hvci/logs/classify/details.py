"""A crash's details: every argument with its meaning, decoded values and the names the input printed."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from hvci.knowledge import decode, kb
from hvci.logs.classify.context import Context, hex_or_none
from hvci.logs.correlate import CrashGroup, same_value
from hvci.model import BugCheck, Evidence
from parsers.records import BugCheckRecord, VerifierBannerRecord


def _fresh(value: Any) -> Any:
    """A copy of cached details (dicts, lists and scalars) that an incident can own."""
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fresh(v) for v in value]
    return value


@functools.lru_cache(maxsize=4096)
def _decode(kind: str, value: int) -> dict[str, Any]:
    """A decoded argument as report details (cached: a log repeats the same few values many times; callers
    get a copy, the cache keeps the original)."""
    decoder = decode.DECODERS[kind]
    return _decoded(decoder(value), decode.safe_replacement(kind, value), decoder)


def _decoded(
    value: decode.Decoded, replacement: int | None, decoder: Callable[[int], decode.Decoded]
) -> dict[str, Any]:
    out: dict[str, Any] = {"value": value.value, "name": value.name, "executable": value.executable}
    if value.parts and value.parts != (value.name,):
        out["parts"] = list(value.parts)
    if value.note:
        out["note"] = value.note
    if replacement is not None and replacement != value.value:
        out["safe_value"] = {"value": replacement, "name": decoder(replacement).name}
    return out


def bugcheck_model(bc: BugCheckRecord | None) -> BugCheck | None:
    """The report's bug check, named by the knowledge base when the input did not name it."""
    if bc is None:
        return None
    name = bc.name
    if name is None:
        info = kb.load().bugcheck(bc.code)
        name = info.name if info is not None else None
    return BugCheck(bc.code, name, tuple(bc.args))


def printed_names(
    group: CrashGroup, bc: BugCheckRecord | None, meaning: kb.SubcodeMeaning | None, context: Context
) -> list[Evidence]:
    """Where the image and section names of an image-compliance 0xC4 came from when no banner printed
    them: the ``dS``/``da`` output for Arg2 / Arg4."""
    if group.banner is not None or bc is None or meaning is None:
        return []
    if meaning.arg_kinds[0] != "unicode-string-ptr":
        return []
    found = []
    for index, what in ((1, "image name"), (3, "section name")):
        printed = context.strings.get(bc.args[index]) if len(bc.args) > index else None
        if printed is not None:
            command = f"{printed.command} Arg{index + 1} {bc.args[index]:#x}"
            found.append(Evidence(f"{command} printed the {what} {printed.text!r}", printed.span))
    return found


def _argument_details(bc: BugCheckRecord, meaning: kb.SubcodeMeaning | None) -> dict[str, Any]:
    """The subcode (a 0xC4 code-integrity Arg1) and every other argument with what it means."""
    details: dict[str, Any] = {}
    args = tuple(bc.args)
    info = kb.load().bugcheck(bc.code)
    meanings: Sequence[str] = ("", *meaning.args) if meaning is not None else (info.args if info else ())
    if meaning is not None:
        details["subcode"] = {"value": args[0], "meaning": meaning.description, "era": meaning.era}
    details["arguments"] = [
        {"index": n + 1, "value": value, "meaning": meanings[n] if n < len(meanings) else None}
        for n, value in enumerate(args)
        if not (n == 0 and meaning is not None)
    ]
    return details


def _decoded_values(
    args: Sequence[int], banner: VerifierBannerRecord | None, kinds: Sequence[str]
) -> dict[str, Any]:
    """Arg3 decoded by its kind (pool type, protection, priority) and Arg4 as a pool tag, or the values the
    banner printed when the bug check did not."""
    details: dict[str, Any] = {}
    value = args[2] if len(args) > 2 else (banner.value if banner is not None else None)
    tag = args[3] if len(args) > 3 else (banner.tag if banner is not None else None)
    detail_key = decode.detail_key(kinds[1])
    if detail_key is not None and value is not None:
        details[detail_key] = _fresh(_decode(kinds[1], value))
    if kinds[2] == "pool-tag" and tag:
        text = decode.pool_tag(tag)
        details["pool_tag"] = text if text is not None else hex_or_none(tag)
    return details


def _banner_details(
    banner: VerifierBannerRecord, args: Sequence[int], kinds: Sequence[str]
) -> dict[str, Any]:
    """The image, section and addresses the banner printed (in a text log Arg2/Arg4 only point at them)."""
    details: dict[str, Any] = {}
    if banner.image:
        details["image"] = banner.image
    if banner.section_name:
        details["section"] = banner.section_name
    pointer_kinds = [k for k in kinds[1:] if k.endswith("-ptr") and k != "section-name-ptr"]
    if banner.reloc_section is not None:
        details["reloc_block"] = hex_or_none(banner.reloc_section)
        details["reloc_entry"] = hex_or_none(banner.address)
    elif banner.address is not None and pointer_kinds:
        details[pointer_kinds[0].removesuffix("-ptr").replace("-", "_")] = hex_or_none(banner.address)
    if banner.caller is not None and len(args) > 1 and not same_value(banner.caller, args[1]):
        details["banner_caller"] = hex_or_none(banner.caller)
    return details


def _dereferenced_names(args: Sequence[int], kinds: Sequence[str], context: Context) -> dict[str, Any]:
    """No banner: the names are only where the user dereferenced Arg2 / Arg4 (``dS`` / ``da``); !analyze's
    IMAGE_NAME here is the kernel's own checker, not the image."""
    details: dict[str, Any] = {}
    for key, index in (("image", 1), ("section", 3)):
        printed = context.strings.get(args[index]) if len(args) > index else None
        if printed is not None and (key == "image" or kinds[index - 1] == "section-name-ptr"):
            details[key] = printed.text
    return details


def crash_details(
    group: CrashGroup, bc: BugCheckRecord | None, meaning: kb.SubcodeMeaning | None, context: Context
) -> dict[str, Any]:
    """Every argument with its meaning, then the decoded value (pool type, protection, priority, tag) and
    the image/section names the banner printed (in a text log, Arg2/Arg4 are only pointers to them)."""
    details = _argument_details(bc, meaning) if bc is not None else {}
    if meaning is None:
        return details
    args = tuple(bc.args) if bc is not None else ()
    kinds = meaning.arg_kinds
    details.update(_decoded_values(args, group.banner, kinds))
    if group.banner is not None:
        details.update(_banner_details(group.banner, args, kinds))
    elif kinds[0] == "unicode-string-ptr":
        details.update(_dereferenced_names(args, kinds, context))
    return details
