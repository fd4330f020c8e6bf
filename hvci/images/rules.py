"""Load-time HVCI rules over PE headers, shared by ``scan`` (``.sys`` files) and ``!dh`` dumps in logs.

The rules work on :class:`hvci.images.headers.ImageHeaders`, a small model that both a parsed image
(``symbols.pe.PeImage``) and a debugger header dump (``parsers.records.ImageHeaderRecord``) fill, so one
predicate judges both. The predicates are the ones Driver Verifier's ``VfCheckImageCompliance`` and
``ci.dll`` apply (hvci-domain.md §1.3, §6.1, §9.2); where they differ from BinSkim, the result says so.

Each result is tri-state plus one: ``pass``, ``fail``, ``not-applicable`` (nothing to check, e.g. no
relocations) and ``could-not-analyse`` (the input lacks what the rule needs; the reason is the message).
A rule never turns "could not tell" into "pass".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import get_args

import msgspec

from hvci.details import Level, Relocation, RuleFacts, RuleStatus, SectionDetail
from hvci.images.headers import ImageHeaders
from hvci.knowledge import decode, kb
from parsers.records import SectionHeader

PASS: RuleStatus = "pass"
FAIL: RuleStatus = "fail"
NOT_APPLICABLE: RuleStatus = "not-applicable"
COULD_NOT_ANALYSE: RuleStatus = "could-not-analyse"
STATUSES: tuple[RuleStatus, ...] = get_args(RuleStatus)

PAGE = 0x1000
# PE constants by their WINNT.H names, from constants.toml (the one table of them)
SCN_MEM_DISCARDABLE = kb.load().value("IMAGE_SCN_MEM_DISCARDABLE")
SCN_MEM_SHARED = kb.load().value("IMAGE_SCN_MEM_SHARED")
SCN_MEM_EXECUTE = kb.load().value("IMAGE_SCN_MEM_EXECUTE")
SCN_MEM_WRITE = kb.load().value("IMAGE_SCN_MEM_WRITE")
DLLCHAR_NX_COMPAT = kb.load().value("IMAGE_DLLCHARACTERISTICS_NX_COMPAT")
REL_BASED_ABSOLUTE = kb.load().value("IMAGE_REL_BASED_ABSOLUTE")
REL_BASED_HIGHLOW = kb.load().value("IMAGE_REL_BASED_HIGHLOW")
REL_BASED_DIR64 = kb.load().value("IMAGE_REL_BASED_DIR64")

#: Rule ids. The four load-time rules use the category id they report under; sub-cases get a
#: ``category/sub`` id (SARIF hierarchical rule ids) so a reader can filter them apart.
RULE_WX = "execute-write-section"
RULE_WX_INIT = "execute-write-section/init"
RULE_ALIGNMENT = "section-alignment"
RULE_IAT = "iat-in-executable-section"
RULE_RELOCS = "unsupported-relocs"
RULE_NX_COMPAT = "nx-compat"


class RuleResult(msgspec.Struct, frozen=True):
    """The verdict of one rule on one image.

    ``level`` is how much a ``fail`` matters (``error``, ``warning``, ``note``; ``none`` for other statuses):
    an RWX ``INIT`` is a warning, a missing NX_COMPAT bit a note. ``count`` is how many reports Driver
    Verifier would make for it (0x2004 comes once per section).
    """

    rule_id: str
    status: RuleStatus
    category: str | None
    message: str
    evidence: tuple[str, ...] = ()
    details: RuleFacts = RuleFacts()
    level: Level = "none"
    count: int = 1


def check_headers(h: ImageHeaders) -> list[RuleResult]:
    """All load-time rules on one image, in a stable order."""
    return [
        *check_execute_write(h),
        check_section_alignment(h),
        check_iat(h),
        check_relocations(h),
        check_nx_compat(h),
    ]


def _flags(characteristics: int) -> str:
    return "|".join(
        p.removeprefix("IMAGE_SCN_") for p in decode.section_characteristics(characteristics).parts
    )


def _describe(s: SectionHeader) -> str:
    return (
        f"section {s.name!r} at RVA 0x{s.virtual_address:x}, size 0x{s.virtual_size:x}, "
        f"characteristics 0x{s.characteristics:08x} ({_flags(s.characteristics)})"
    )


def _section_detail(s: SectionHeader) -> SectionDetail:
    return SectionDetail(
        s.name,
        s.virtual_address,
        s.virtual_size,
        s.characteristics,
        decode.section_characteristics(s.characteristics).parts,
    )


def _is_wx(s: SectionHeader) -> bool:
    return s.characteristics & (SCN_MEM_WRITE | SCN_MEM_EXECUTE) == SCN_MEM_WRITE | SCN_MEM_EXECUTE


def _wx_reasons(s: SectionHeader) -> list[str]:
    """Why ``ci.dll`` would care (its load-time reasons name non-discardable and shared W+X sections)."""
    reasons = []
    if s.characteristics & SCN_MEM_DISCARDABLE:
        reasons.append(
            "discardable: ci.dll's load-time reasons name only non-discardable W+X sections, so "
            "the load may be tolerated, but Driver Verifier still reports it (0xC4/0x2003)"
        )
    else:
        reasons.append(
            "non-discardable: ci.dll reason 'A non-discarable section is both writable and "
            "executable' (event 3073 in strict mode); Driver Verifier 0xC4/0x2003"
        )
    if s.characteristics & SCN_MEM_SHARED:
        reasons.append("shared: ci.dll reason 'A shared section is both writable and executable'")
    return reasons


def check_execute_write(h: ImageHeaders) -> list[RuleResult]:
    """W+X sections. ``INIT`` gets its own result: tolerated (Windows 10 strips W, the verifier skips it by
    name), but shown, because it marks an old toolchain."""
    if not h.sections:
        reason = "no section headers to check"
        return [
            RuleResult(RULE_WX, COULD_NOT_ANALYSE, RULE_WX, reason),
            RuleResult(RULE_WX_INIT, COULD_NOT_ANALYSE, RULE_WX, reason),
        ]
    wx = [s for s in h.sections if _is_wx(s) and s.name != "INIT"]
    init = [s for s in h.sections if s.name == "INIT"]
    results: list[RuleResult] = []
    if wx:
        evidence = tuple(f"{_describe(s)}; " + "; ".join(_wx_reasons(s)) for s in wx)
        names = ", ".join(s.name for s in wx)
        results.append(
            RuleResult(
                RULE_WX,
                FAIL,
                RULE_WX,
                f"{len(wx)} section(s) both writable and executable: {names}",
                evidence,
                RuleFacts(sections=tuple(_section_detail(s) for s in wx)),
                level="error",
                count=len(wx),
            )
        )
    else:
        results.append(
            RuleResult(
                RULE_WX,
                PASS,
                RULE_WX,
                "no section other than INIT is both writable and executable",
                (f"{len(h.sections)} section(s) checked",),
            )
        )
    init_wx = [s for s in init if _is_wx(s)]
    if init_wx:
        results.append(
            RuleResult(
                RULE_WX_INIT,
                FAIL,
                RULE_WX,
                "INIT is RWX: tolerated by Windows 10 which strips W, but rebuild with a current WDK",
                tuple(
                    f"{_describe(s)}; the current verifier skips a section named INIT (0xC4/0x2003 is not "
                    "raised for it); VS 2013-era toolchains marked INIT RWX"
                    for s in init_wx
                ),
                RuleFacts(sections=tuple(_section_detail(s) for s in init_wx)),
                level="warning",
                count=len(init_wx),
            )
        )
    elif init:
        results.append(
            RuleResult(
                RULE_WX_INIT,
                PASS,
                RULE_WX,
                "INIT is not writable and executable",
                tuple(_describe(s) for s in init),
            )
        )
    else:
        results.append(RuleResult(RULE_WX_INIT, NOT_APPLICABLE, RULE_WX, "no INIT section"))
    return results


def check_section_alignment(h: ImageHeaders) -> RuleResult:
    """SectionAlignment must be a non-zero multiple of 0x1000, and every section must start on a page.

    Reported once per image with the list of sections; Driver Verifier raises 0x2004 once per section.
    """
    if h.section_alignment is None:
        return RuleResult(
            RULE_ALIGNMENT, COULD_NOT_ANALYSE, RULE_ALIGNMENT, "the input does not show SectionAlignment"
        )
    bad_alignment = h.section_alignment == 0 or h.section_alignment % PAGE != 0
    if not h.sections and not bad_alignment:  # nothing looked at must not read as a pass
        return RuleResult(RULE_ALIGNMENT, COULD_NOT_ANALYSE, RULE_ALIGNMENT, "no section headers to check")
    unaligned = [s for s in h.sections if s.virtual_address % PAGE != 0]
    if not bad_alignment and not unaligned:
        return RuleResult(
            RULE_ALIGNMENT,
            PASS,
            RULE_ALIGNMENT,
            f"SectionAlignment 0x{h.section_alignment:x} and every section is page aligned",
            (f"{len(h.sections)} section(s) checked",),
        )
    evidence = []
    if bad_alignment:
        evidence.append(
            f"SectionAlignment is 0x{h.section_alignment:x}, not a non-zero multiple of 0x1000 "
            "(ci.dll reason 'Invalid section alignment', event 3072)"
        )
    if unaligned:
        listed = ", ".join(f"{s.name}@0x{s.virtual_address:x}" for s in unaligned)
        evidence.append(
            f"section(s) not at a page boundary: {listed} "
            "(ci.dll reason 'A section has an invalid alignment')"
        )
    reports = len(h.sections) if bad_alignment else len(unaligned)
    evidence.append(
        f"Driver Verifier reports 0xC4/0x2004 once per section: expect {reports} report(s) for this one image"
    )
    message = (
        f"SectionAlignment 0x{h.section_alignment:x} is not a multiple of 0x1000"
        if bad_alignment
        else f"{len(unaligned)} section(s) not page aligned"
    )
    return RuleResult(
        RULE_ALIGNMENT,
        FAIL,
        RULE_ALIGNMENT,
        message,
        tuple(evidence),
        RuleFacts(
            section_alignment=h.section_alignment,
            sections=tuple(_section_detail(s) for s in (h.sections if bad_alignment else unaligned)),
        ),
        level="error",
        count=max(reports, 1),
    )


def _containing(sections: Sequence[SectionHeader], rva: int) -> SectionHeader | None:
    for s in sections:
        if s.virtual_address <= rva < s.virtual_address + s.virtual_size:
            return s
    return None


def check_iat(h: ImageHeaders) -> RuleResult:
    """The IAT directory (index 12) must not lie in an executable section (e.g. after /MERGE:.rdata=.text)."""
    if h.iat is None or h.iat[0] == 0:
        if h.from_dump:
            return RuleResult(
                RULE_IAT, COULD_NOT_ANALYSE, RULE_IAT, "the dump does not show the IAT directory"
            )
        return RuleResult(RULE_IAT, NOT_APPLICABLE, RULE_IAT, "the image has no IAT directory (no imports)")
    if not h.sections:
        return RuleResult(RULE_IAT, COULD_NOT_ANALYSE, RULE_IAT, "no section headers to place the IAT in")
    rva, size = h.iat
    section = _containing(h.sections, rva)
    binskim = _binskim_note(h)
    if section is None:
        return RuleResult(
            RULE_IAT,
            COULD_NOT_ANALYSE,
            RULE_IAT,
            f"IAT RVA 0x{rva:x} lies in no section (ci.dll reason 'The Import Address Table "
            "location is invalid')",
            binskim,
            RuleFacts(iat_rva=rva, iat_size=size),
        )
    where = f"IAT at RVA 0x{rva:x} (size 0x{size:x}) lies in {_describe(section)}"
    details = RuleFacts(iat_rva=rva, iat_size=size, section=_section_detail(section))
    if section.characteristics & SCN_MEM_EXECUTE:
        return RuleResult(
            RULE_IAT,
            FAIL,
            RULE_IAT,
            f"the IAT is in executable section {section.name}",
            (
                where,
                "ci.dll reason 'The Import Address Table is within an executable section'; "
                "Driver Verifier 0xC4/0x2005 (0x2006 on older builds)",
                *binskim,
            ),
            details,
            level="error",
        )
    return RuleResult(
        RULE_IAT,
        PASS,
        RULE_IAT,
        f"the IAT is in non-executable section {section.name}",
        (where, *binskim),
        details,
    )


def _binskim_note(h: ImageHeaders) -> tuple[str, ...]:
    """BinSkim's BA2010 tests the import *directory* (index 1), not the IAT; say so when they disagree."""
    if h.import_directory is None or h.import_directory[0] == 0 or h.iat is None:
        return ()
    imports = _containing(h.sections, h.import_directory[0])
    iat = _containing(h.sections, h.iat[0])
    if imports is None or imports is iat:
        return ()
    if not imports.characteristics & SCN_MEM_EXECUTE:
        return ()
    return (
        f"note: the import directory (data directory 1, what BinSkim BA2010 tests) is at RVA "
        f"0x{h.import_directory[0]:x} in executable section {imports.name}; the verifier and ci.dll "
        "test the IAT (directory 12) only, and BinSkim skips kernel-mode images anyway",
    )


def check_relocations(h: ImageHeaders) -> RuleResult:
    """Base relocations that straddle a 4 KiB page, and types the pre-1703 loader check did not support."""
    if h.relocations is None:
        return RuleResult(
            RULE_RELOCS, COULD_NOT_ANALYSE, RULE_RELOCS, "the input does not show the base relocations"
        )
    real = [(rva, kind) for rva, kind in h.relocations if kind != REL_BASED_ABSOLUTE]
    if not real and h.relocations_complete:
        return RuleResult(RULE_RELOCS, NOT_APPLICABLE, RULE_RELOCS, "the image has no base relocations")
    plus = h.is_pe32_plus
    straddled, unsupported = _bad_relocations(real, bool(plus))
    scope = (
        "PE32+: types other than ABSOLUTE (0) and DIR64 (10) are unsupported"
        if plus
        else "PE32: only straddling is checked (inference: HIGHLOW past offset 0xFFC crosses the page)"
    )
    if not straddled and not unsupported and not h.relocations_complete:
        return RuleResult(
            RULE_RELOCS,
            COULD_NOT_ANALYSE,
            RULE_RELOCS,
            f"the base relocation directory is damaged: {len(real)} relocation(s) read, none straddles a "
            "page or has an unsupported type, the rest could not be read",
            (scope,),
            RuleFacts(relocations=len(real)),
        )
    if not straddled and not unsupported:
        return RuleResult(
            RULE_RELOCS,
            PASS,
            RULE_RELOCS,
            f"{len(real)} relocation(s), none straddles a page or has an unsupported type",
            (scope,),
            RuleFacts(relocations=len(real)),
        )
    parts = []
    if straddled:
        parts.append(f"{len(straddled)} straddling")
    if unsupported:
        parts.append(f"{len(unsupported)} of unsupported type")
    return RuleResult(
        RULE_RELOCS,
        FAIL,
        RULE_RELOCS,
        f"base relocations: {' and '.join(parts)}",
        (*_relocation_evidence(straddled, unsupported), scope, _RELOC_ERA),
        RuleFacts(
            straddled=tuple(Relocation(r, k) for r, k in straddled),
            unsupported=tuple(Relocation(r, k) for r, k in unsupported),
        ),
        level="warning",
        count=len(straddled) + len(unsupported),
    )


_RELOC_ERA = (
    "only matters before Windows 10 1703 (straddling relocations are supported from 1703 on; "
    "the older loader check walked PE32+ images only)"
)


def _bad_relocations(
    relocations: Sequence[tuple[int, int]], pe32_plus: bool
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The relocations that straddle a page, and (PE32+) those of a type the old loader check refused."""
    straddled: list[tuple[int, int]] = []
    unsupported: list[tuple[int, int]] = []
    for rva, kind in relocations:
        offset = rva & 0xFFF
        if (kind == REL_BASED_DIR64 and offset > 0xFF8) or (kind == REL_BASED_HIGHLOW and offset > 0xFFC):
            straddled.append((rva, kind))
        elif pe32_plus and kind != REL_BASED_DIR64:
            unsupported.append((rva, kind))
    return straddled, unsupported


def _relocation_evidence(
    straddled: Sequence[tuple[int, int]], unsupported: Sequence[tuple[int, int]]
) -> list[str]:
    """One line per bad relocation (the first 20 of each kind)."""
    return [
        *(
            f"{_reloc_name(kind)} relocation at RVA 0x{rva:x} (page offset 0x{rva & 0xFFF:x}) straddles "
            f"the 4 KiB page boundary ('straddled relocs')"
            for rva, kind in straddled[:20]
        ),
        *(
            f"relocation type {kind} ({_reloc_name(kind)}) at RVA 0x{rva:x} is not supported by the "
            "loader check ('unsupported relocs')"
            for rva, kind in unsupported[:20]
        ),
    ]


def _reloc_name(kind: int) -> str:
    """``HIGHLOW`` for 3 (constants.toml names it), ``type 6`` for a number it does not name."""
    name = decode.reloc_type(kind).name
    return name.removeprefix("IMAGE_REL_BASED_") if name.startswith("IMAGE_REL_BASED_") else f"type {kind}"


def check_nx_compat(h: ImageHeaders) -> RuleResult:
    """NX_COMPAT is informational: no Microsoft HVCI page states that code integrity requires it."""
    if h.dll_characteristics is None:
        return RuleResult(
            RULE_NX_COMPAT, COULD_NOT_ANALYSE, None, "the input does not show DllCharacteristics"
        )
    value = f"DllCharacteristics 0x{h.dll_characteristics:04x}"
    if h.dll_characteristics & DLLCHAR_NX_COMPAT:
        return RuleResult(
            RULE_NX_COMPAT, PASS, None, "the image is marked NX compatible (NX_COMPAT)", (value,)
        )
    return RuleResult(
        RULE_NX_COMPAT,
        FAIL,
        None,
        "the image is not marked NX compatible (NX_COMPAT missing)",
        (
            value,
            "informational: Microsoft does not state that memory integrity requires NX_COMPAT; the linker "
            "sets it by default (/NXCOMPAT), so its absence points at an old toolchain or /NXCOMPAT:NO",
        ),
        RuleFacts(dll_characteristics=h.dll_characteristics),
        level="note",
    )
