"""Classification: category, confidence and evidence from everything a crash printed, never Arg1 alone."""

from __future__ import annotations

from hvci.details import CrashDetails, NamedValue
from hvci.logs.classify import Context, classify
from hvci.logs.correlate import CounterGroup, CrashGroup, EventGroup, ImageGroup, ReadinessGroup
from hvci.model import Incident
from parsers.records import (
    AnalyzeRecord,
    BugCheckRecord,
    CounterSet,
    EventRecord,
    ImageHeaderRecord,
    ModuleEntry,
    ReadinessRecord,
    SectionHeader,
    Span,
    StackFrame,
    StackRecord,
    SymbolLineRecord,
    VerifierBannerRecord,
    VerifierStatusRecord,
)
from symbols.modules import ModuleMap

P = "c.log"
BASE = 0xFFFFF8074B980000
CALLER = BASE + 0x52F0
POOL_TEXT = "Code Integrity Issue: The caller specified an executable pool type. (Expected: NonPagedPoolNx)"
IAT_TEXT = "Code Integrity Issue: The image contains an IAT located in an executable section."
STORPORT_TEXT = (
    "The Storport miniport driver passed a bad argument (a NULL pointer) to the StorPortInitialize routine."
)
MODULES = ModuleMap.from_entries([ModuleEntry(90, "IntelHaxm", BASE, BASE + 0x43000)])


def span(first: int, last: int | None = None) -> Span:
    return Span(P, first, last if last is not None else first)


def bc(
    *args: int, code: int = 0xC4, texts: tuple[str, ...] = (), form: str = "fatal-system-error"
) -> BugCheckRecord:
    return BugCheckRecord(span(20, 21), form, code, tuple(args), arg_texts=texts)


def pool_banner(caller: int = CALLER) -> VerifierBannerRecord:
    message = f"The caller {caller:#X} specified an executable pool type 0x0 (tag 0x484d454d)."
    return VerifierBannerRecord(span(10, 14), "pool-type", message, caller=caller, value=0, tag=0x484D454D)


def one(group: CrashGroup, context: Context | None = None) -> Incident:
    (incident,) = classify(group, context or Context())
    return incident


POOL_ARGS = (0x2000, CALLER, 0, 0x484D454D)


def test_banner_and_analyze_text_make_it_certain_with_decoded_details() -> None:
    analyze = AnalyzeRecord(span(30, 80), bc(*POOL_ARGS, texts=(POOL_TEXT,), form="analyze"))
    incident = one(
        CrashGroup(banner=pool_banner(), bugchecks=(bc(*POOL_ARGS),), analyze=analyze), Context(MODULES)
    )
    assert (incident.category, incident.hvci_related, incident.confidence) == (
        "execute-pool-type",
        True,
        "certain",
    )
    assert incident.bugcheck is not None and incident.bugcheck.args == POOL_ARGS
    assert incident.bugcheck.name == "DRIVER_VERIFIER_DETECTED_VIOLATION"
    details = incident.details
    assert isinstance(details, CrashDetails) and details.pool_type is not None
    assert details.pool_type.name == "NonPagedPool" and details.pool_type.executable
    assert details.pool_type.safe_value == NamedValue(0x200, "NonPagedPoolNx")
    assert details.pool_tag == "MEMH"
    assert incident.caller is not None and (incident.caller.module, incident.caller.offset) == (
        "IntelHaxm",
        0x52F0,
    )
    assert incident.driver == "IntelHaxm"
    assert incident.title == "IntelHaxm allocated executable pool (NonPagedPool, tag MEMH)"
    assert incident.bucket == "execute-pool-type:intelhaxm+0x52f0"
    weights = {e.weight for e in incident.evidence}
    assert "deciding" in weights and all(e.span is not None for e in incident.evidence)


def test_a_number_alone_is_only_possible_and_says_why() -> None:
    incident = one(CrashGroup(bugchecks=(bc(*POOL_ARGS),)))
    assert (incident.category, incident.confidence) == ("execute-pool-type", "possible")
    assert any("not code integrity" in e.reason and "guess" in e.reason for e in incident.evidence)


def test_numbers_plus_arg2_inside_a_loaded_driver_is_likely() -> None:
    incident = one(CrashGroup(bugchecks=(bc(*POOL_ARGS),)), Context(MODULES))
    assert incident.confidence == "likely"
    assert any("inside IntelHaxm" in e.reason for e in incident.evidence)


def test_storport_text_for_0x2000_is_not_hvci() -> None:
    analyze = AnalyzeRecord(span(30, 80), bc(0x2000, 0, 0, 0, texts=(STORPORT_TEXT,), form="analyze"))
    incident = one(CrashGroup(analyze=analyze))
    assert (incident.category, incident.hvci_related, incident.confidence) == (None, False, "none")
    assert incident.bucket.startswith("0xc4")


def test_0x2005_banner_relocs_beats_newer_debugger_text() -> None:
    banner = VerifierBannerRecord(
        span(5, 9),
        "unsupported-relocs",
        "The image PackedIo.sys contains unsupported relocs ...",
        image="PackedIo.sys",
        address=0xFFFFF8003F4A6012,
        reloc_section=0xFFFFF8003F4A6000,
    )
    args = (0x2005, 0xFFFFE0016A2C1F58, 0xFFFFF8003F4A6000, 0xFFFFF8003F4A6012)
    analyze = AnalyzeRecord(span(30, 60), bc(*args, texts=(IAT_TEXT,), form="analyze"))
    incident = one(CrashGroup(banner=banner, bugchecks=(bc(*args),), analyze=analyze))
    assert incident.category == "unsupported-relocs" and incident.confidence == "likely"
    assert any(e.weight == "conflicting" for e in incident.evidence)
    assert isinstance(incident.details, CrashDetails) and incident.details.reloc_entry == "0xfffff8003f4a6012"
    assert incident.driver == "PackedIo.sys"
    assert incident.caller is None


def test_0x2005_numbers_only_is_iat_with_the_older_meaning_in_evidence() -> None:
    incident = one(CrashGroup(bugchecks=(bc(0x2005, 1, 2, 3),)))
    assert (incident.category, incident.confidence) == ("iat-in-executable-section", "possible")
    assert any("unsupported-relocs" in e.reason for e in incident.evidence)


def test_0x2005_with_iat_text_is_likely() -> None:
    analyze = AnalyzeRecord(span(30, 60), bc(0x2005, 1, 2, 3, texts=(IAT_TEXT,), form="analyze"))
    incident = one(CrashGroup(analyze=analyze))
    assert (incident.category, incident.confidence) == ("iat-in-executable-section", "likely")


def test_banner_without_crash_is_certain_and_a_verifier_banner_incident() -> None:
    incident = one(CrashGroup(banner=pool_banner()), Context(MODULES))
    assert (incident.kind, incident.category, incident.confidence) == (
        "verifier-banner",
        "execute-pool-type",
        "certain",
    )
    assert incident.bugcheck is None and incident.caller is not None and incident.caller.offset == 0x52F0


def test_other_bug_checks_are_never_given_an_hvci_category() -> None:
    for code in (0xD1, 0x50, 0x1E, 0x7F, 0x12345):
        incident = one(CrashGroup(bugchecks=(bc(1, 2, 3, 4, code=code),)))
        assert (incident.category, incident.hvci_related, incident.confidence) == (None, False, "none")
        assert incident.bucket == f"{code:#x}"
    not_ci = one(CrashGroup(bugchecks=(bc(0x62, 1, 2, 3),)))
    assert not not_ci.hvci_related


def test_hvci_related_bug_checks_get_their_ids() -> None:
    expected = {
        0xFC: "execute-nx-memory",
        0xBE: "write-readonly-memory",
        0x18B: "secure-kernel-error",
        0x18C: "hyperguard-violation",
        0x18D: "secure-fault",
    }
    for code, category in expected.items():
        incident = one(CrashGroup(bugchecks=(bc(1, 2, 3, 4, code=code),)))
        assert (incident.category, incident.hvci_related) == (category, True)
        assert incident.confidence == "possible"


def test_caller_function_from_ln_or_from_the_stack() -> None:
    frames = (
        StackFrame(
            40,
            "04 nt!VerifierExAllocatePoolWithTag+0x51",
            return_address=CALLER,
            module="nt",
            function="VerifierExAllocatePoolWithTag",
            offset=0x51,
        ),
        StackFrame(
            41,
            "05 IntelHaxm!hax_alloc_buffer+0x12",
            return_address=BASE + 0x4102,
            module="IntelHaxm",
            function="hax_alloc_buffer",
            offset=0x12,
            source_file="hax_host_mem.c",
            source_line=88,
        ),
    )
    group = CrashGroup(bugchecks=(bc(*POOL_ARGS),), stacks=(StackRecord(span(39, 41), "k", frames),))
    caller = one(group, Context(MODULES)).caller
    assert caller is not None and caller.resolved_by == "debugger"
    assert (caller.function, caller.displacement, caller.file, caller.line) == (
        "hax_alloc_buffer",
        0x12,
        "hax_host_mem.c",
        88,
    )
    ln = SymbolLineRecord(span(50, 51), CALLER, "IntelHaxm", "hax_alloc_buffer", 0x12, "alloc.c", 7)
    caller = one(CrashGroup(bugchecks=(bc(*POOL_ARGS),)), Context(MODULES, {CALLER: ln})).caller
    assert caller is not None and (caller.function, caller.file, caller.line) == (
        "hax_alloc_buffer",
        "alloc.c",
        7,
    )


def test_no_module_list_leaves_a_note() -> None:
    caller = one(CrashGroup(bugchecks=(bc(*POOL_ARGS),))).caller
    assert caller is not None and caller.module is None and caller.resolved_by == "none"
    assert caller.note is not None and "--module" in caller.note


def test_counter_evidence_supports_a_crash() -> None:
    counters = {"intelhaxm.sys": {"Execute Pool Type Count": 3}}
    incident = one(CrashGroup(bugchecks=(bc(*POOL_ARGS),)), Context(MODULES, counters=counters))
    assert any("Execute Pool Type Count" in e.reason for e in incident.evidence)


def test_non_hvci_crash_blames_module_name_frame() -> None:
    frames = (
        StackFrame(
            60, "02 nt!KiPageFault+0x469", return_address=BASE + 0x1C47, module="nt", function="KiPageFault"
        ),
        StackFrame(
            61,
            "03 IntelHaxm!Usb+0x57",
            return_address=BASE + 0x900,
            module="IntelHaxm",
            function="Usb",
            offset=0x57,
        ),
    )
    analyze = AnalyzeRecord(
        span(30, 70),
        bc(1, 2, 0, BASE + 0x1C47, code=0xD1, form="analyze"),
        fields=(("MODULE_NAME", "IntelHaxm"), ("IMAGE_NAME", "IntelHaxm.sys")),
        stack=StackRecord(span(59, 61), "stack_text", frames),
    )
    incident = one(CrashGroup(analyze=analyze), Context(MODULES))
    assert incident.caller is not None and incident.caller.function == "Usb"
    assert incident.caller.address == BASE + 0x1C47 and incident.bucket == "0xd1:intelhaxm!Usb"


def test_counters_become_one_incident_per_non_zero_counter() -> None:
    counter_set = CounterSet(
        "a.sys",
        (
            ("Execute Pool Type Count", 3),
            ("Section Alignment Failures", 0),
            ("IAT in Executable Section Count", 1),
        ),
        12,
    )
    status = VerifierStatusRecord(span(10, 30), "!verifier", counter_sets=(counter_set,))
    incidents = classify(CounterGroup(status, counter_set, span(12, 19)), Context())
    assert [(i.category, i.count, i.kind) for i in incidents] == [
        ("execute-pool-type", 3, "verifier-counters"),
        ("iat-in-executable-section", 1, "verifier-counters"),
    ]


def test_readiness_and_events() -> None:
    readiness = ReadinessRecord(span(5), "dg-readiness", "TestDriver1.sys", "section alignment failures", 9)
    (incident,) = classify(ReadinessGroup(readiness), Context())
    assert (incident.category, incident.count, incident.driver) == ("section-alignment", 9, "TestDriver1.sys")
    event = EventRecord(span(7), "Microsoft-Windows-CodeIntegrity", 3087, "not compatible", module="x.sys")
    (incident,) = classify(EventGroup(event), Context())
    assert (incident.category, incident.hvci_related) == ("hvci-driver-block", True)
    other = EventRecord(span(9), "Microsoft-Windows-Kernel-General", 12, "The operating system started")
    (incident,) = classify(EventGroup(other), Context())
    assert (incident.category, incident.hvci_related) == (None, False)


def test_image_dump_gives_the_scan_findings() -> None:
    record = ImageHeaderRecord(
        span(100, 200),
        "LegacyAudio",
        section_alignment=0x1000,
        dll_characteristics=0x160,
        iat_rva=0x2000,
        iat_size=0x10,
        sections=(
            SectionHeader(".text", 0x1000, 0xB2E, 0x68000020),
            SectionHeader(".rdata", 0x2000, 0x6A0, 0x48000040),
            SectionHeader("HOOK", 0x4000, 0x3F0, 0xE8000020),
        ),
    )
    incidents = classify(ImageGroup(record), Context())
    assert [i.category for i in incidents] == ["execute-write-section"]
    assert incidents[0].kind == "image" and "HOOK" in incidents[0].title


def test_bucket_falls_back_to_failure_bucket_id_for_the_driver() -> None:
    fields = (("IMAGE_NAME", "api_misuse_O0.sys"), ("FAILURE_BUCKET_ID", "0xc4_2003_VRF_api_misuse_O0!Load"))
    analyze = AnalyzeRecord(span(30, 60), bc(0x2003, 1, 2, 3, form="analyze"), fields=fields)
    assert one(CrashGroup(analyze=analyze)).bucket == "execute-write-section:api_misuse_o0!Load"
    other = (("IMAGE_NAME", "x.sys"), ("FAILURE_BUCKET_ID", "0xc4_2003_VRF_nt!VfCheckImageCompliance"))
    analyze = AnalyzeRecord(span(30, 60), bc(0x2003, 1, 2, 3, form="analyze"), fields=other)
    assert one(CrashGroup(analyze=analyze)).bucket == "execute-write-section:x"


def test_reworded_storport_text_of_an_old_debugger_is_still_storport() -> None:
    old = "The Storport miniport driver passed a bad argument (a NULL pointer) to StorPortInitialize."
    analyze = AnalyzeRecord(span(30, 80), bc(0x2000, 0, 0, 0, texts=(old,), form="analyze"))
    assert one(CrashGroup(analyze=analyze)).hvci_related is False


def test_image_problem_blamed_on_the_kernel_takes_the_driver_from_arg3() -> None:
    section_header = BASE + 0x230
    fields = (("IMAGE_NAME", "ntkrnlmp.exe"), ("MODULE_NAME", "nt"))
    analyze = AnalyzeRecord(
        span(30, 80), bc(0x2003, 0xFFFFC30B5A3E1F58, section_header, 1, form="analyze"), fields=fields
    )
    incident = one(CrashGroup(analyze=analyze), Context(MODULES))
    assert incident.driver == "IntelHaxm" and incident.caller is None
    assert one(CrashGroup(analyze=analyze)).driver is None  # no module list: nt is never the answer
