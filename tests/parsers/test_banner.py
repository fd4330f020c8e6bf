"""The verifier's code-integrity banner: every message format of the domain reference §2.2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from parsers.banner import decode_message
from parsers.records import Span, VerifierBannerRecord
from parsers.stream import parse_text

TOP = "*********** Verifier Detected a Code Integrity Issue ************"
BOTTOM = "*****************************************************************"


def banner(message: str) -> str:
    return f"{TOP}\n**\n** {message}\n**\n{BOTTOM}\n"


def banners(text: str) -> list[VerifierBannerRecord]:
    records, _ = parse_text(text, "t")
    return [r for r in records if isinstance(r, VerifierBannerRecord)]


CASES = [
    (
        "The caller 0xFFFFF802DA2D33E8 specified an executable pool type 0x0 (tag 0x484d454d).",
        {"issue": "pool-type", "caller": 0xFFFFF802DA2D33E8, "value": 0, "tag": 0x484D454D},
    ),
    (
        "The caller 0xFFFFF80547B4A1C4 specified an executable pool type 0x0.",
        {"issue": "pool-type", "caller": 0xFFFFF80547B4A1C4, "value": 0, "tag": None},
    ),
    (
        "The caller 0x8D4A12C8 specified an executable pool type 0x20.",
        {"issue": "pool-type", "caller": 0x8D4A12C8, "value": 0x20},
    ),
    (
        "The caller 0xFFFFF80312A41187 specified an executable page protection 0x40.",
        {"issue": "page-protection", "caller": 0xFFFFF80312A41187, "value": 0x40},
    ),
    (
        "The caller 0xFFFFF802DA2D4A1D specified an executable MDL mapping (priority 0x10).",
        {"issue": "mdl-mapping", "caller": 0xFFFFF802DA2D4A1D, "value": 0x10},
    ),
    (
        "The image wxdrv.sys contains an executable and writable section 0xFFFFF8031C0F0238 (name .rwx).",
        {"issue": "wx-section", "image": "wxdrv.sys", "address": 0xFFFFF8031C0F0238, "section_name": ".rwx"},
    ),
    (
        "The image \\SystemRoot\\System32\\drivers\\Old Vendor\\Filter Driver.sys contains section "
        "0xFFFFF8031C2A0208 that is not page aligned (name .text).",
        {
            "issue": "alignment",
            "image": "\\SystemRoot\\System32\\drivers\\Old Vendor\\Filter Driver.sys",
            "address": 0xFFFFF8031C2A0208,
            "section_name": ".text",
        },
    ),
    (
        "The image iatdrv.sys contains an IAT, 0xFFFFF8031D4E0170 in executable section (name .text).",
        {"issue": "iat", "image": "iatdrv.sys", "address": 0xFFFFF8031D4E0170, "section_name": ".text"},
    ),
    (
        "The image relocdrv.sys contains unsupported relocs 0xFFFFF8031E2A4000 in reloc "
        "section FFFFF8031E2A6008.",
        {
            "issue": "unsupported-relocs",
            "image": "relocdrv.sys",
            "address": 0xFFFFF8031E2A4000,
            "reloc_section": 0xFFFFF8031E2A6008,
        },
    ),
    (
        "The image a b.sys contains straddled relocs 0xFFFFF80547B5E000 in reloc section FFFFF80547B5E7FC.",
        {
            "issue": "straddled-relocs",
            "image": "a b.sys",
            "address": 0xFFFFF80547B5E000,
            "reloc_section": 0xFFFFF80547B5E7FC,
        },
    ),
    (
        "The image x contains section 0x1 that contains section 0x2 that is not page aligned (name INIT).",
        {"issue": "alignment", "image": "x contains section 0x1 that", "address": 2, "section_name": "INIT"},
    ),
]


@pytest.mark.parametrize(("message", "expected"), CASES)
def test_each_message_format(message: str, expected: dict[str, object]) -> None:
    (record,) = banners("noise\n" + banner(message) + "more noise\n")
    assert record.span == Span("t", 2, 6)
    assert record.message == message
    for key, value in expected.items():
        assert getattr(record, key) == value, key


def test_unknown_message_is_kept_raw_with_the_caller_it_names() -> None:
    """A format we do not know still names its caller the usual way: that address is kept as evidence
    (the TUI and reports then show it rather than "the input gives no code address")."""
    (record,) = banners(banner("The caller 0xFFFF specified something new."))
    assert (record.issue, record.message, record.caller) == (
        "unknown",
        "The caller 0xFFFF specified something new.",
        0xFFFF,
    )
    (other,) = banners(banner("The image x.sys did something new."))
    assert (other.issue, other.caller) == ("unknown", None)
    (cut,) = banners(banner("The caller 0xFFFFF80C4A1E2F"))  # cut after the address: digits may be lost
    assert (cut.issue, cut.caller) == ("unknown", None)


def test_mangled_forum_banner() -> None:
    text = (
        "> **Verifier Detected a Code Integrity Issue**\n>\n"
        "> The caller 0xFFFFF8074B9852F0 specified an executable pool type 0x0 (tag 0x46414e31).\n"
        ">\nThanks!\n"
    )
    (record,) = banners(text)
    assert (record.issue, record.caller, record.tag) == ("pool-type", 0xFFFFF8074B9852F0, 0x46414E31)
    assert record.span == Span("t", 1, 3)


def test_banner_on_one_line() -> None:
    (record,) = banners(f"{TOP} ** The caller 0x10 specified an executable page protection 0x20. **\nx\n")
    assert (record.issue, record.value, record.span) == ("page-protection", 0x20, Span("t", 1, 1))


def test_truncated_banner_still_reports() -> None:
    (record,) = banners(f"{TOP}\n**\n")
    assert (record.issue, record.message) == ("unknown", "")


def test_consecutive_banners_are_separate() -> None:
    text = banner(CASES[0][0]) + banner(CASES[3][0])
    assert [(r.issue, r.span.first_line, r.span.last_line) for r in banners(text)] == [
        ("pool-type", 1, 5),
        ("page-protection", 6, 10),
    ]


def test_decode_message_is_the_shared_entry_point() -> None:
    assert decode_message(CASES[4][0])["issue"] == "mdl-mapping"
    assert decode_message("nonsense")["issue"] == "unknown"


def test_every_banner_format_of_the_knowledge_base_decodes_to_its_issue() -> None:
    """The knowledge base keeps the banner formats as data; parsers keep their own regexes (parsers may
    not import hvci). Render each printf format with sample values and check both agree."""
    import tomllib

    path = Path(__file__).resolve().parents[2] / "hvci" / "knowledge" / "verifier.toml"
    if not path.exists():
        pytest.skip("knowledge base not written yet")
    formats = tomllib.loads(path.read_text("utf-8")).get("banner_format", [])
    assert formats
    values = {"%p": "FFFFF80547B4A1C4", "%x": "2a", "%wZ": "Some Vendor Driver.sys", "%s": ".text"}
    for entry in formats:
        message = re.sub(r"%(?:wZ|p|x|s)", lambda m: values[m.group(0)], entry["format"])
        assert decode_message(message)["issue"] == entry["issue"], message
