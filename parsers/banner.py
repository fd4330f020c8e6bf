"""The verifier's ``Verifier Detected a Code Integrity Issue`` banner and its message (domain ref. §2.2).

The kernel prints (``ViCiPreprocessOptions``)::

    *********** Verifier Detected a Code Integrity Issue ************
    **
    ** The caller 0x%p specified an executable pool type 0x%x (tag 0x%x).
    **
    *****************************************************************

The message formats are matched here with regexes of our own (``parsers`` may not import the knowledge
base); ``%wZ`` image names may hold spaces and paths, so the image is everything up to the *last*
`` contains <kind>`` phrase. Forum copies lose or double the ``**`` prefixes, add ``> `` quote markers or
indentation: the banner is read line by line after stripping those.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from parsers.base import Line, LineCursor
from parsers.deferred import deferred_compile
from parsers.records import Record, Span, VerifierBannerRecord

_HEADER = "Verifier Detected a Code Integrity Issue"
_P = r"(?:0x)?(?P<{name}>[0-9a-fA-F`]+)"
_CALLER = _P.format(name="caller")
_ADDRESS = _P.format(name="address")
_VALUE = r"0x(?P<value>[0-9a-fA-F]+)"
_IMAGE = r"The image (?P<image>.+)"
_SECTION = r"\(name (?P<section>.*)\)"

#: issue kind -> message regex, matched against the whole message
MESSAGES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (issue, deferred_compile(pattern + r"\s*\.?\s*$"))
    for issue, pattern in (
        ("pool-type", rf"The caller {_CALLER} specified an executable pool type {_VALUE}"
                      r"(?: \(tag 0x(?P<tag>[0-9a-fA-F]+)\))?"),
        ("page-protection", rf"The caller {_CALLER} specified an executable page protection {_VALUE}"),
        ("mdl-mapping", rf"The caller {_CALLER} specified an executable MDL mapping \(priority {_VALUE}\)"),
        ("wx-section", rf"{_IMAGE} contains an executable and writable section {_ADDRESS} {_SECTION}"),
        ("alignment", rf"{_IMAGE} contains section {_ADDRESS} that is not page aligned {_SECTION}"),
        ("iat", rf"{_IMAGE} contains an IAT, {_ADDRESS} in executable section {_SECTION}"),
        ("unsupported-relocs", rf"{_IMAGE} contains unsupported relocs {_ADDRESS} in reloc section"
                               r" (?:0x)?(?P<reloc>[0-9a-fA-F`]+)"),
        ("straddled-relocs", rf"{_IMAGE} contains straddled relocs {_ADDRESS} in reloc section"
                             r" (?:0x)?(?P<reloc>[0-9a-fA-F`]+)"),
    )
)
_MESSAGE_START = deferred_compile(r"The (?:caller|image) ")
#: A message of a format we do not know may still name the caller the usual way; that address is evidence
#: when words follow it (a message cut right after the address may have lost some of its digits).
_ANY_CALLER = deferred_compile(rf"The caller {_CALLER}\s+\w")
_STARS = deferred_compile(r"^\*{10,}$")
_MAX_LINES = 12


def _clean(text: str) -> str:
    """A banner line without quote markers, indentation, ``*`` prefixes/suffixes or bold markers."""
    text = re.sub(r"^(?:\s*>)+", "", text).strip()
    if _STARS.match(text):
        return text
    return text.strip("* \t")


def _hex(text: str | None) -> int | None:
    return int(text.replace("`", ""), 16) if text else None


def decode_message(message: str) -> dict[str, object]:
    """The issue kind and values of a banner message (``issue="unknown"`` when no format matches)."""
    for issue, pattern in MESSAGES:
        match = pattern.match(message)
        if match is None:
            continue
        groups = match.groupdict()
        return {
            "issue": issue,
            "caller": _hex(groups.get("caller")),
            "value": _hex(groups.get("value")),
            "tag": _hex(groups.get("tag")),
            "image": groups.get("image"),
            "address": _hex(groups.get("address")),
            "section_name": groups.get("section"),
            "reloc_section": _hex(groups.get("reloc")),
        }
    caller = _ANY_CALLER.match(message)
    return {"issue": "unknown", "caller": _hex(caller.group("caller")) if caller else None}


class BannerParser:
    name = "banner"
    trigger = r"^[\s>*]*Verifier Detected a Code Integrity Issue"

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        last = first.number
        message_parts: list[str] = []
        after_header = first.text.split(_HEADER, 1)[1] if _HEADER in first.text else ""
        inline = _MESSAGE_START.search(after_header)  # a forum joined the banner onto one line
        if inline:
            message_parts.append(_clean(after_header[inline.start() :]))
        for _ in range(_MAX_LINES):
            if message_parts and inline:
                break
            line = cursor.next()
            if line is None:
                break
            text = _clean(line.text)
            raw = line.text.strip().lstrip(">").strip()
            if _STARS.match(text):
                last = line.number
                if message_parts:
                    break
                continue
            if not text:
                if message_parts and not raw.startswith("*"):
                    cursor.push_back(line)
                    break
                last = line.number
                continue
            if raw.startswith("*") or (not message_parts and _MESSAGE_START.match(text)):
                message_parts.append(text)
                last = line.number
                continue
            cursor.push_back(line)
            break
        message = " ".join(message_parts)
        yield VerifierBannerRecord(Span(cursor.path, first.number, last), message=message,
                                   **decode_message(message))  # type: ignore[arg-type]


PARSER = BannerParser()
