"""A crash's details: every argument with its meaning, decoded values and the names the input printed."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from hvci.details import NO_CRASH_DETAILS, Argument, CrashDetails, DecodedValue, NamedValue, Subcode
from hvci.knowledge import decode, kb
from hvci.logs.classify.context import Context, hex_or_none
from hvci.logs.correlate import CrashGroup, same_value
from hvci.model import BugCheck, Evidence
from parsers.records import BugCheckRecord, VerifierBannerRecord


@functools.lru_cache(maxsize=4096)
def _decode(kind: str, value: int) -> DecodedValue:
    """A decoded argument as report details (cached and shared: a log repeats the same few values many
    times, and the record is immutable)."""
    decoder = decode.DECODERS[kind]
    decoded = decoder(value)
    replacement = decode.safe_replacement(kind, value)
    return DecodedValue(
        decoded.value,
        decoded.name,
        decoded.executable,
        parts=decoded.parts if decoded.parts and decoded.parts != (decoded.name,) else None,
        note=decoded.note or None,
        safe_value=(
            NamedValue(replacement, decoder(replacement).name)
            if replacement is not None and replacement != decoded.value
            else None
        ),
    )


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


#: The crash details fields whose names the knowledge base gives (a ``detail_key`` of constants.toml, a
#: pointer kind of subcodes.toml) with their values; every such name is a field of CrashDetails (a test
#: checks), so a typo fails when the record is made.
_Named = dict[str, DecodedValue | str | None]


def _arguments(
    bc: BugCheckRecord, meaning: kb.SubcodeMeaning | None
) -> tuple[Subcode | None, tuple[Argument, ...]]:
    """The subcode (a 0xC4 code-integrity Arg1) and every other argument with what it means."""
    args = tuple(bc.args)
    info = kb.load().bugcheck(bc.code)
    meanings: Sequence[str] = ("", *meaning.args) if meaning is not None else (info.args if info else ())
    subcode = Subcode(args[0], meaning.description, meaning.era) if meaning is not None else None
    arguments = tuple(
        Argument(n + 1, value, meanings[n] if n < len(meanings) else None)
        for n, value in enumerate(args)
        if not (n == 0 and meaning is not None)
    )
    return subcode, arguments


def _decoded_values(
    args: Sequence[int], banner: VerifierBannerRecord | None, kinds: Sequence[str], named: _Named
) -> str | None:
    """Arg3 decoded by its kind (pool type, protection, priority) into ``named``, and Arg4 as a pool tag, or
    the values the banner printed when the bug check did not."""
    value = args[2] if len(args) > 2 else (banner.value if banner is not None else None)
    tag = args[3] if len(args) > 3 else (banner.tag if banner is not None else None)
    detail_key = decode.detail_key(kinds[1])
    if detail_key is not None and value is not None:
        named[detail_key] = _decode(kinds[1], value)
    if kinds[2] == "pool-tag" and tag:
        text = decode.pool_tag(tag)
        return text if text is not None else hex_or_none(tag)
    return None


def _banner_addresses(
    banner: VerifierBannerRecord, args: Sequence[int], kinds: Sequence[str], named: _Named
) -> str | None:
    """The addresses the banner printed (in a text log Arg2/Arg4 only point at them) into ``named``; the
    banner's caller when it is not the bug check's."""
    pointer_kinds = [k for k in kinds[1:] if k.endswith("-ptr") and k != "section-name-ptr"]
    if banner.reloc_section is not None:
        named["reloc_block"] = hex_or_none(banner.reloc_section)
        named["reloc_entry"] = hex_or_none(banner.address)
    elif banner.address is not None and pointer_kinds:
        named[pointer_kinds[0].removesuffix("-ptr").replace("-", "_")] = hex_or_none(banner.address)
    caller = banner.caller
    if caller is not None and len(args) > 1 and not same_value(caller, args[1]):
        return hex_or_none(caller)
    return None


def _names(
    banner: VerifierBannerRecord | None, args: Sequence[int], kinds: Sequence[str], context: Context
) -> tuple[str | None, str | None]:
    """The image and section: from the banner; without one, only where the user dereferenced Arg2 / Arg4
    (``dS`` / ``da``); !analyze's IMAGE_NAME here is the kernel's own checker, not the image."""
    if banner is not None:
        return banner.image or None, banner.section_name or None
    if kinds[0] != "unicode-string-ptr":
        return None, None
    image = context.strings.get(args[1]) if len(args) > 1 else None
    section = context.strings.get(args[3]) if len(args) > 3 and kinds[2] == "section-name-ptr" else None
    return (image.text if image is not None else None), (section.text if section is not None else None)


def crash_details(
    group: CrashGroup, bc: BugCheckRecord | None, meaning: kb.SubcodeMeaning | None, context: Context
) -> CrashDetails:
    """Every argument with its meaning, then the decoded value (pool type, protection, priority, tag) and
    the image/section names the banner printed (in a text log, Arg2/Arg4 are only pointers to them)."""
    subcode, arguments = _arguments(bc, meaning) if bc is not None else (None, None)
    if meaning is None:
        return CrashDetails(subcode, arguments) if bc is not None else NO_CRASH_DETAILS
    args = tuple(bc.args) if bc is not None else ()
    kinds = meaning.arg_kinds
    named: _Named = {}
    pool_tag = _decoded_values(args, group.banner, kinds, named)
    image, section = _names(group.banner, args, kinds, context)
    banner_caller = _banner_addresses(group.banner, args, kinds, named) if group.banner is not None else None
    return CrashDetails(
        subcode,
        arguments,
        pool_tag=pool_tag,
        image=image,
        section=section,
        banner_caller=banner_caller,
        **named,  # type: ignore[arg-type]  # names from the knowledge base, each a field (a test checks)
    )
