"""The knowledge base: every data file validates, references resolve, and a broken file names itself."""

from __future__ import annotations

import importlib.util
import re

import pytest

from hvci.knowledge import kb
from parsers.base import LineCursor
from parsers.records import VerifierBannerRecord

SEVEN = (
    "execute-pool-type",
    "execute-page-protection",
    "execute-page-mapping",
    "execute-write-section",
    "section-alignment",
    "unsupported-relocs",
    "iat-in-executable-section",
)
OTHERS = (
    "execute-nx-memory",
    "write-readonly-memory",
    "secure-kernel-error",
    "hyperguard-violation",
    "secure-fault",
    "hvci-driver-block",
    "ci-load-failure",
)
#: The issue kinds parsers.records.VerifierBannerRecord documents.
BANNER_ISSUES = {
    "pool-type",
    "page-protection",
    "mdl-mapping",
    "wx-section",
    "alignment",
    "iat",
    "unsupported-relocs",
    "straddled-relocs",
}


@pytest.fixture(scope="module")
def base() -> kb.KnowledgeBase:
    return kb.load()


def test_load_is_cached(base: kb.KnowledgeBase) -> None:
    assert kb.load() is base


def test_category_ids_are_the_design_ones_in_order(base: kb.KnowledgeBase) -> None:
    assert tuple(base.categories) == SEVEN + OTHERS
    assert all(c.hvci_related for c in base.categories.values())
    names = [base.categories[c].name for c in SEVEN]
    assert names == [
        "Execute Pool Type",
        "Execute Page Protection",
        "Execute Page Mapping",
        "Execute-Write Section",
        "Section Alignment Failures",
        "Unsupported Relocs",
        "IAT in Executable Section",
    ]


@pytest.mark.parametrize("category_id", SEVEN + OTHERS)
def test_every_category_has_complete_remediation(base: kb.KnowledgeBase, category_id: str) -> None:
    category = base.categories[category_id]
    remedy = category.remediation
    for text in (remedy.what, remedy.why, remedy.fix, remedy.verify, category.summary):
        assert len(text.split()) >= 15, text
    assert any(link.url.startswith("https://learn.microsoft.com/") for link in remedy.links)
    if category_id in SEVEN:
        assert remedy.before and remedy.after and remedy.before != remedy.after
        assert "verifier" in remedy.verify and "0x02000000" in remedy.verify
    if remedy.code_language == "c" and remedy.before:
        for code in (remedy.before, remedy.after):  # C, not prose: statements and balanced braces
            assert ";" in code and "{" in code and code.count("{") == code.count("}"), code


def test_runtime_fixes_show_the_nx_spelling_in_the_after_code(base: kb.KnowledgeBase) -> None:
    """The after-code must actually contain the fix the category is about, and the before-code must not."""
    expectations = {
        "execute-pool-type": ("POOL_FLAG_NON_PAGED", "NonPagedPool,"),
        "execute-page-protection": ("PAGE_READWRITE", "PAGE_EXECUTE_READWRITE"),
        "execute-page-mapping": ("MdlMappingNoExecute", "NormalPagePriority)"),
        "iat-in-executable-section": ("/DRIVER", "/MERGE:.rdata=.text"),
        "section-alignment": ("0x1000", "/ALIGN:0x80"),
    }
    for category_id, (fixed, broken) in expectations.items():
        remedy = base.categories[category_id].remediation
        assert fixed in remedy.after and broken in remedy.before and broken not in remedy.after, category_id


def test_counters_map_to_categories_in_any_case(base: kb.KnowledgeBase) -> None:
    labels = [c.label for c in base.counters]
    assert labels == [
        "Execute Pool Type Count",
        "Execute Page Protection Count",
        "Execute Page Mapping Count",
        "Execute-Write Section Count",
        "Section Alignment Failures",
        "Unsupported Relocs Count",
        "IAT in Executable Section Count",
    ]
    for counter, category_id in zip(base.counters, SEVEN, strict=True):
        assert counter.category == category_id
        assert base.category_for_counter(counter.label) == category_id
        assert base.category_for_counter(counter.label.lower() + ":") == category_id
        assert base.category_for_counter("  " + counter.label.upper().replace(" ", "   ")) == category_id
    assert base.category_for_counter("execute pool type") == "execute-pool-type"
    assert base.category_for_counter("RaiseIrqls") is None
    assert base.categories["execute-write-section"].counter_labels == ("Execute-Write Section Count",)


def test_verifier_flag_and_rule_class(base: kb.KnowledgeBase) -> None:
    assert base.verifier.flag == 0x02000000 and base.verifier.flag_bit == 25
    assert base.verifier.rule_class == 26
    assert (
        base.verifier.commands["enable"].format(driver="x.sys")
        == "verifier.exe /flags 0x02000000 /driver x.sys"
    )


def test_subcode_0x2000_has_both_historic_meanings(base: kb.KnowledgeBase) -> None:
    current, storport = base.subcode(0x2000)
    assert current.category == "execute-pool-type" and current.era == "current"
    assert current.description == (
        "Code Integrity Issue: The caller specified an executable pool type. (Expected: NonPagedPoolNx)"
    )
    assert current.arg_kinds == ("code-address", "pool-type", "pool-tag")
    assert current.banner_formats == (
        "The caller 0x%p specified an executable pool type 0x%x.",
        "The caller 0x%p specified an executable pool type 0x%x (tag 0x%x).",
    )
    assert storport.category is None and not storport.hvci_related and storport.era == "pre-2020-docs"
    assert "StorPortInitialize" in storport.description


def test_subcode_0x2005_and_0x2006_meanings(base: kb.KnowledgeBase) -> None:
    iat, relocs = base.subcode(0x2005)
    assert (iat.era, iat.category) == ("current", "iat-in-executable-section")
    assert (relocs.era, relocs.category) == ("older-build", "unsupported-relocs")
    assert set(relocs.banner_issues) == {"unsupported-relocs", "straddled-relocs"}
    assert relocs.arg_kinds[1:] == ("reloc-block-ptr", "reloc-entry-ptr")
    (older_iat,) = base.subcode(0x2006)
    assert (older_iat.era, older_iat.category) == ("older-build", "iat-in-executable-section")
    assert "IAT" in older_iat.banner_formats[0]


@pytest.mark.parametrize(
    ("arg1", "category"),
    [
        (0x2001, "execute-page-protection"),
        (0x2002, "execute-page-mapping"),
        (0x2003, "execute-write-section"),
        (0x2004, "section-alignment"),
    ],
)
def test_single_meaning_subcodes(base: kb.KnowledgeBase, arg1: int, category: str) -> None:
    (meaning,) = base.subcode(arg1)
    assert meaning.category == category and meaning.description.startswith("Code Integrity Issue: ")


def test_other_subcodes_are_named_but_not_hvci(base: kb.KnowledgeBase) -> None:
    for arg1 in (
        0x00,
        0x01,
        0x02,
        0x10,
        0x17,
        0x51,
        0x59,
        0x60,
        0x62,
        0x1000,
        0x100B,
        0x1010,
        0xA001,
        0x20005,
    ):
        meanings = base.subcode(arg1)
        assert meanings and not any(m.hvci_related for m in meanings), hex(arg1)
    assert base.subcode(0x2007) == () and base.subcode(0x18) == ()
    hvci = sorted({m.arg1 for m in base.subcodes if m.hvci_related})
    assert hvci == [0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006]


REQUIRED_BUGCHECKS = {
    0x0A: "IRQL_NOT_LESS_OR_EQUAL",
    0x1A: "MEMORY_MANAGEMENT",
    0x1E: "KMODE_EXCEPTION_NOT_HANDLED",
    0x3B: "SYSTEM_SERVICE_EXCEPTION",
    0x50: "PAGE_FAULT_IN_NONPAGED_AREA",
    0x7E: "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED",
    0x7F: "UNEXPECTED_KERNEL_MODE_TRAP",
    0x9F: "DRIVER_POWER_STATE_FAILURE",
    0xA0: "INTERNAL_POWER_ERROR",
    0xBE: "ATTEMPTED_WRITE_TO_READONLY_MEMORY",
    0xC1: "SPECIAL_POOL_DETECTED_MEMORY_CORRUPTION",
    0xC2: "BAD_POOL_CALLER",
    0xC4: "DRIVER_VERIFIER_DETECTED_VIOLATION",
    0xC5: "DRIVER_CORRUPTED_EXPOOL",
    0xC9: "DRIVER_VERIFIER_IOMANAGER_VIOLATION",
    0xCE: "DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS",
    0xD1: "DRIVER_IRQL_NOT_LESS_OR_EQUAL",
    0xD5: "DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL",
    0xD6: "DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION",
    0xE6: "DRIVER_VERIFIER_DMA_VIOLATION",
    0xEF: "CRITICAL_PROCESS_DIED",
    0xFC: "ATTEMPTED_EXECUTE_OF_NOEXECUTE_MEMORY",
    0x101: "CLOCK_WATCHDOG_TIMEOUT",
    0x116: "VIDEO_TDR_FAILURE",
    0x119: "VIDEO_SCHEDULER_INTERNAL_ERROR",
    0x124: "WHEA_UNCORRECTABLE_ERROR",
    0x133: "DPC_WATCHDOG_VIOLATION",
    0x139: "KERNEL_SECURITY_CHECK_FAILURE",
    0x13A: "KERNEL_MODE_HEAP_CORRUPTION",
    0x154: "UNEXPECTED_STORE_EXCEPTION",
    0x18B: "SECURE_KERNEL_ERROR",
    0x18C: "HYPERGUARD_VIOLATION",
    0x18D: "SECURE_FAULT_UNHANDLED",
    0x1C4: "DRIVER_VERIFIER_DETECTED_VIOLATION_LIVEDUMP",
    0x1C8: "MANUALLY_INITIATED_POWER_BUTTON_HOLD",
}


def test_bugcheck_names(base: kb.KnowledgeBase) -> None:
    for code, name in REQUIRED_BUGCHECKS.items():
        info = base.bugcheck(code)
        assert info is not None and info.name == name, hex(code)
        assert info.url.startswith("https://learn.microsoft.com/")
    assert base.bugcheck(0x12345) is None


def test_hvci_bugchecks_name_their_category(base: kb.KnowledgeBase) -> None:
    related = {code: info.category for code, info in base.bugchecks.items() if info.hvci_related}
    assert related == {
        0xBE: "write-readonly-memory",
        0xFC: "execute-nx-memory",
        0x18B: "secure-kernel-error",
        0x18C: "hyperguard-violation",
        0x18D: "secure-fault",
    }
    c4 = base.bugcheck(0xC4)
    assert c4 is not None and c4.decided_by_subcode and c4.category is None
    fc = base.bugcheck(0xFC)
    assert fc is not None and fc.args[0] == "Virtual address for the attempted execute."
    assert fc.analyze_text.startswith("An attempt was made to execute non-executable memory.")


def test_events_and_ci_reasons(base: kb.KnowledgeBase) -> None:
    expected = {
        3072: "section-alignment",
        3073: "execute-write-section",
        3087: "hvci-driver-block",
        3111: "hvci-driver-block",
        3033: "ci-load-failure",
        3077: "ci-load-failure",
        3004: "ci-load-failure",
    }
    for event_id, category in expected.items():
        event = base.event(event_id)
        assert (
            event is not None
            and event.category == category
            and event.provider == "Microsoft-Windows-CodeIntegrity"
        )
    reason = base.ci_reason(0xF0000006)
    assert reason is not None and reason.category == "iat-in-executable-section"


def test_banner_formats(base: kb.KnowledgeBase) -> None:
    assert {f.issue for f in base.banner_formats} == BANNER_ISSUES
    for banner_format in base.banner_formats:
        assert banner_format.category in base.categories
        assert banner_format.subcodes
        for arg1 in banner_format.subcodes:
            assert any(banner_format.format in m.banner_formats for m in base.subcode(arg1)), (
                banner_format.format
            )


def test_every_reference_names_an_existing_category(base: kb.KnowledgeBase) -> None:
    referenced = (
        [m.category for m in base.subcodes if m.category]
        + [c.category for c in base.counters]
        + [a.category for a in base.affected_apis]
        + [f.category for f in base.banner_formats]
        + [b.category for b in base.bugchecks.values() if b.category]
        + [e.category for e in base.events.values() if e.category]
    )
    assert referenced and set(referenced) <= set(base.categories)


# ------------------------------------------------------------------------------------------ affected APIs

#: (name, argument_index, argument_kind), checked against the WDK prototypes.
API_INDEXES = [
    ("ExAllocatePool", 0, "pool-type"),
    ("ExAllocatePoolWithTag", 0, "pool-type"),
    ("ExAllocatePoolWithQuotaTag", 0, "pool-type"),
    ("ExAllocatePoolWithTagPriority", 0, "pool-type"),
    ("ExAllocatePool2", 0, "pool-flags"),
    ("ExAllocatePool3", 0, "pool-flags"),
    ("ExAllocatePoolZero", 0, "pool-type"),
    ("ExInitializeNPagedLookasideList", 3, "lookaside-flags"),
    ("ExInitializeLookasideListEx", 3, "pool-type"),
    ("MmAllocateContiguousNodeMemory", 4, "page-protection"),
    ("MmAllocateContiguousMemorySpecifyCache", 4, "cache-type"),
    ("MmMapIoSpaceEx", 2, "page-protection"),
    ("MmProtectMdlSystemAddress", 1, "page-protection"),
    ("MmMapLockedPagesSpecifyCache", 5, "mdl-priority"),
    ("MmGetSystemAddressForMdlSafe", 1, "mdl-priority"),
    ("ZwAllocateVirtualMemory", 5, "page-protection"),
    ("ZwProtectVirtualMemory", 3, "page-protection"),
    ("ZwCreateSection", 4, "page-protection"),
    ("ZwMapViewOfSection", 9, "page-protection"),
    ("ClfsCreateMarshallingArea", 1, "pool-type"),
    ("FltAllocatePoolAlignedWithTag", 1, "pool-type"),
    ("FltAllocateContext", 3, "pool-type"),
    ("WdfMemoryCreate", 1, "pool-type"),
    ("PcNewDmaChannel", 2, "pool-type"),
    ("MmMapIoSpace", None, "none"),
    ("MmMapLockedPages", None, "none"),
    ("MmAllocateContiguousMemory", None, "none"),
]


@pytest.mark.parametrize(("name", "index", "kind"), API_INDEXES)
def test_affected_api_argument_index(base: kb.KnowledgeBase, name: str, index: int | None, kind: str) -> None:
    api = base.affected_api(name)
    assert api is not None
    assert (api.argument_index, api.argument_kind) == (index, kind)
    assert base.affected_api(name.upper()) is api


_PARAM_OF_KIND = {
    "pool-type": r"\b(?:VP_)?POOL_TYPE\b",
    "pool-flags": r"\bPOOL_FLAGS\b",
    "page-protection": r"\bULONG \w*Protect(?:ion)?\b",
    "mdl-priority": r"\bULONG Priority\b",
    "lookaside-flags": r"\bULONG Flags\b",
    "cache-type": r"\bMEMORY_CACHING_TYPE\b",
}


def test_every_argument_index_points_at_a_parameter_of_its_kind(base: kb.KnowledgeBase) -> None:
    """The index is counted in the documented prototype, so the parameter there must have the right type."""
    for api in base.affected_apis:
        if api.argument_index is None:
            assert api.argument_kind == "none" and api.binary_argument_index is None
            continue
        params = [p.strip() for p in api.prototype.strip("()").split(",")]
        assert re.search(_PARAM_OF_KIND[api.argument_kind], params[api.argument_index]), (api.name, params)
        assert api.binary_argument_index == api.argument_index + api.implicit_args


def test_wdf_and_com_methods_have_a_hidden_first_argument(base: kb.KnowledgeBase) -> None:
    wdf = [a for a in base.affected_apis if a.group == "WDF"]
    com = [a for a in base.affected_apis if "::" in a.name]
    assert len(wdf) == 8 and len(com) == 5
    assert all(a.implicit_args == 1 for a in wdf + com)
    assert all(a.implicit_args == 0 for a in base.affected_apis if a.module == "ntoskrnl.exe")


def test_microsoft_lists_are_covered(base: kb.KnowledgeBase) -> None:
    names = {a.name for a in base.affected_apis}
    both = {
        "ExAllocatePoolWithQuota",
        "MmCopyMemory",
        "NtCreateSection",
        "NtMapViewOfSection",
        "StorPortGetSystemAddress",
        "StorPortGetDataInBufferSystemAddress",
        "ChangerClassAllocatePool",
        "DxgkCbMapMemory",
        "VideoPortAllocatePool",
        "IMiniportDMus::NewStream",
        "IMiniportMidi::NewStream",
        "IMiniportWaveCyclic::NewStream",
        "IPortWavePci::NewMasterDmaChannel",
        "IMiniportWavePci::NewStream",
        "PcNewResourceList",
        "PcNewResourceSublist",
        "WdfLookasideListCreate",
        "WdfDeviceAllocAndQueryProperty",
        "WdfDeviceAllocAndQueryPropertyEx",
        "WdfFdoInitAllocAndQueryProperty",
        "WdfFdoInitAllocAndQueryPropertyEx",
        "WdfIoTargetAllocAndQueryTargetProperty",
        "WdfRegistryQueryMemory",
        "MmAllocateContiguousMemorySpecifyCacheNode",
    }
    assert both <= names
    ndis = {a.name: a for a in base.affected_apis if a.module == "ndis.sys"}
    assert ndis["NdisAllocateMemory"].lists == ("2015",)
    assert ndis["NdisAllocateMemoryWithTagPriority"].lists == ("current",)


# -------------------------------------------------------------------------------------------- constants


def test_constants_have_no_duplicate_names(base: kb.KnowledgeBase) -> None:
    for table in base.constants.values():
        names = [n for e in table.entries for n in (e.name, *e.aliases)]
        assert len(names) == len(set(names)), table.key


def test_constant_tables_needed_by_the_decoders(base: kb.KnowledgeBase) -> None:
    for key in (
        "pool_type",
        "pool_flags",
        "page_protection",
        "mdl_priority",
        "lookaside_flags",
        "cache_type",
        "section_characteristics",
        "dll_characteristics",
        "reloc_type",
    ):
        assert key in base.constants
    pool = base.constants["pool_type"]
    values = {e.name: e.value for e in pool.entries if e.role == "value"}
    assert values["NonPagedPool"] == 0 and values["NonPagedPoolNx"] == 512
    assert values["NonPagedPoolNxCacheAligned"] == 516 and values["NonPagedPoolSessionNx"] == 544
    no_write = base.constants["mdl_priority"].entry("MdlMappingNoWrite")
    assert no_write is not None and no_write.value == 0x80000000 and "third-party" in no_write.source
    assert base.constant("PAGE_TARGETS_NO_UPDATE") is not None
    assert base.constant("page_execute_readwrite") is not None


def test_documented_executability_agrees_with_each_table_rule(base: kb.KnowledgeBase) -> None:
    """A value entry's `executable` (from the docs) must match the table's rule (the verifier's test)."""
    from hvci.knowledge import decode

    checked = 0
    for table in base.constants.values():
        for entry in table.entries:
            if entry.executable is None or not table.has_rule:
                continue
            assert decode.decode(table.key, entry.value).executable is entry.executable, entry.name
            checked += 1
    assert checked > 20


def test_replacements_are_non_executable(base: kb.KnowledgeBase) -> None:
    for table in base.constants.values():
        for entry in table.entries:
            if entry.replacement:
                replacement = table.entry(entry.replacement)
                assert replacement is not None and replacement.executable is False, entry.name


# -------------------------------------------------------------------- banner formats vs. parsers.banner

_SAMPLES = {
    "caller": (0xFFFFF8074B9852F0, "%p"),
    "value": (0x40, "%x"),
    "tag": (0x484D454D, "%x"),
    "image": ("\\SystemRoot\\System32\\drivers\\My Driver.sys", "%wZ"),
    "address": (0xFFFFF8074B960208, "%p"),
    "section_name": (".text", "%s"),
    "reloc_section": (0xFFFFF8074B97A000, "%p"),
}


def _printf(fmt: str, fields: tuple[str, ...]) -> str:
    """Render a DbgPrintEx format the way the kernel prints it (%p: 16 upper-case hex digits on x64)."""
    values = iter(fields)

    def substitute(match: re.Match[str]) -> str:
        value, _ = _SAMPLES[next(values)]
        conversion = match.group(0)
        if conversion == "%p":
            return f"{value:016X}"
        if conversion == "%x":
            return f"{value:x}"
        return str(value)

    return re.sub(r"%(?:wZ|[psx])", substitute, fmt)


def test_every_banner_format_decodes_to_its_issue_kind(base: kb.KnowledgeBase) -> None:
    if importlib.util.find_spec("parsers.banner") is None:
        pytest.skip("parsers/banner.py (engineer P1) does not exist yet")
    from parsers.banner import PARSER

    for banner_format in base.banner_formats:
        message = _printf(banner_format.format, banner_format.fields)
        text = "\n".join(
            [
                base.verifier.banner_header,
                "**",
                base.verifier.banner_prefix + message,
                "**",
                base.verifier.banner_footer,
            ]
        )
        cursor = LineCursor.from_text(text, "banner.log")
        first = cursor.next()
        assert first is not None
        records = list(PARSER.parse(first, cursor))
        assert len(records) == 1, banner_format.format
        record = records[0]
        assert isinstance(record, VerifierBannerRecord)
        assert record.issue == banner_format.issue, (banner_format.format, record)
        for name in banner_format.fields:
            assert getattr(record, name) == _SAMPLES[name][0], (banner_format.format, name, record)


def test_an_m_variant_bugcheck_is_named_after_its_base_code() -> None:
    base = kb.load()
    info = base.bugcheck(0x1000007E)
    assert info is not None and info.code == 0x1000007E
    assert info.name == base.bugchecks[0x7E].name + "_M"
    assert info.args == base.bugchecks[0x7E].args
    assert base.bugcheck(0x10000001) is None  # no base entry: still unknown, not invented


def test_incident_titles_come_from_the_category_table(base: kb.KnowledgeBase) -> None:
    pool = base.categories["execute-pool-type"]
    details = {"pool_type": {"name": "NonPagedPool", "value": 0}, "pool_tag": "MEMH"}
    assert pool.title_for("d.sys", details) == "d.sys allocated executable pool (NonPagedPool, tag MEMH)"
    assert pool.title_for("d.sys", {"pool_tag": "MEMH"}) == "d.sys allocated executable pool (tag MEMH)"
    assert pool.title_for("A driver", {}) == "A driver allocated executable pool"
    mapping = base.categories["execute-page-mapping"]
    assert mapping.title_for("d.sys", {"priority": {"name": "NormalPagePriority"}}).endswith(
        "(priority NormalPagePriority)"
    )
    assert all(base.categories[c].incident_title for c in SEVEN)


def test_subcode_blocks_and_caller_subcodes_are_data(base: kb.KnowledgeBase) -> None:
    assert base.is_code_integrity_subcode(0x2000) and base.is_code_integrity_subcode(0x20FF)
    assert not base.is_code_integrity_subcode(0x2100) and not base.is_code_integrity_subcode(0x62)
    assert base.caller_subcodes == {0x2000, 0x2001, 0x2002}  # Arg2 is the driver's code address
    assert base.image_rules["nx-compat"].level == "note"
    assert base.value("IMAGE_SCN_MEM_EXECUTE") == 0x20000000
