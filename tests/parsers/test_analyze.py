"""`!analyze -v` in every generation, plus the short automatic analysis and forum-mangled copies."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers import analyze
from parsers.records import AnalyzeRecord, BugCheckRecord, Record, Span
from parsers.stream import iter_records, open_input, parse_text

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "logs"


def records_of(name: str) -> list[Record]:
    inp = open_input(SAMPLES / name, name=name)
    return list(iter_records(inp))


def analyses(name: str) -> list[AnalyzeRecord]:
    return [r for r in records_of(name) if isinstance(r, AnalyzeRecord)]


CI_SAMPLES = [
    # file, span, bug check span, args, pointer bits, first words of Arg1 text
    (
        "analyze-c4-2000-modern.txt",
        (51, 158),
        (57, 67),
        (0x2000, 0xFFFFF802DA2D33E8, 0, 0x484D454D),
        64,
        "Code Integrity Issue: The caller specified an executable pool type.",
    ),
    (
        "analyze-c4-2001-old-bugcheck-str.txt",
        (38, 122),
        (44, 54),
        (0x2001, 0xFFFFF80312A41187, 0x40, 0),
        64,
        "Code Integrity Issue: The caller specified an executable page protection.",
    ),
    (
        "analyze-c4-2002-mdl-mapping.txt",
        (51, 158),
        (57, 67),
        (0x2002, 0xFFFFF802DA2D4A1D, 0x10, 0),
        64,
        "Code Integrity Issue: The caller specified an executable MDL mapping.",
    ),
    (
        "analyze-c4-2003-wx-section.txt",
        (51, 150),
        (57, 67),
        (0x2003, 0xFFFFA98F6D2C1258, 0xFFFFF8031C0F0238, 0xFFFFB8075A5F6E50),
        64,
        "Code Integrity Issue: The image contains an executable and writable section.",
    ),
    (
        "analyze-c4-2004-alignment.txt",
        (51, 148),
        (57, 67),
        (0x2004, 0xFFFFA98F6D2C4F18, 0xFFFFF8031C2A0208, 0xFFFFB8075A5F6E50),
        64,
        "Code Integrity Issue: The image contains a section that is not page aligned.",
    ),
    (
        "analyze-c4-2005-iat.txt",
        (51, 148),
        (57, 67),
        (0x2005, 0xFFFFA98F6D2C7A38, 0xFFFFF8031D4E0170, 0xFFFFB8075A5F6E50),
        64,
        "Code Integrity Issue: The image contains an IAT located in an executable section.",
    ),
    (
        "analyze-c4-2005-old-relocs.txt",
        (51, 122),
        (57, 67),
        (0x2005, 0xFFFFE0014D2A7A38, 0xFFFFF8031E2A4000, 0xFFFFF8031E2A6008),
        64,
        "Code Integrity Issue: The image contains an IAT located in an executable section.",
    ),
    (
        "analyze-c4-2006-old-iat.txt",
        (37, 117),
        (43, 53),
        (0x2006, 0xFFFFD20F8E6C3A38, 0xFFFFF80C4E210170, 0xFFFF8A0E5C2F6E50),
        64,
        "subclass of driver violation.",
    ),
    (
        "analyze-x86-sign-extended.txt",
        (35, 104),
        (41, 51),
        (0x2000, 0x8D4A12C8, 0, 0x4D4D4C43),
        32,
        "Code Integrity Issue: The caller specified an executable pool type.",
    ),
    (
        "analyze-arm64.txt",
        (24, 104),
        (30, 40),
        (0x2001, 0xFFFFF80662B41A74, 0x40, 0),
        64,
        "Code Integrity Issue: The caller specified an executable page protection.",
    ),
    (
        "analyze-forum-mangled.md",
        (9, 55),
        (15, 27),
        (0x2000, 0xFFFFF8074B9852F0, 0, 0x46414E31),
        64,
        "Code Integrity Issue: The caller specified an executable pool type. (Expected: NonPagedPoolNx)",
    ),
]


@pytest.mark.parametrize(("name", "span", "bug_span", "args", "bits", "arg1_text"), CI_SAMPLES)
def test_code_integrity_reports(
    name: str,
    span: tuple[int, int],
    bug_span: tuple[int, int],
    args: tuple[int, ...],
    bits: int,
    arg1_text: str,
) -> None:
    (report,) = analyses(name)
    assert (report.span.first_line, report.span.last_line) == span
    bugcheck = report.bugcheck
    assert bugcheck is not None
    assert (bugcheck.form, bugcheck.code, bugcheck.name) == (
        "analyze",
        0xC4,
        "DRIVER_VERIFIER_DETECTED_VIOLATION",
    )
    assert bugcheck.args == args
    assert (bugcheck.span.first_line, bugcheck.span.last_line) == bug_span
    assert bugcheck.pointer_bits == bits
    assert bugcheck.arg_texts[0].startswith(arg1_text)
    assert len(bugcheck.arg_texts) == 4


def test_modern_fields_key_values_and_stack() -> None:
    (report,) = analyses("analyze-c4-2000-modern.txt")
    assert report.field("BUGCHECK_CODE") == "c4"
    assert report.field("BUGCHECK_P4") == "484d454d"
    assert report.field("SYMBOL_NAME") == "HvciDemo!AllocateScratchBuffer+28"
    assert report.field("BLACKBOXBSD") == "1 (!blackboxbsd)"  # unknown keys are kept
    assert report.field("Followup") == "MachineOwner"
    assert ("Failure.Bucket", "0xc4_2000_VRF_HvciDemo!AllocateScratchBuffer") in report.key_values
    assert len(report.key_values) == 8
    assert report.stack is not None
    assert (report.stack.style, report.stack.span) == (
        "stack_text",
        Span("analyze-c4-2000-modern.txt", 126, 137),
    )
    driver = report.stack.frames[4]
    assert (driver.module, driver.function, driver.offset, driver.source_line) == (
        "HvciDemo",
        "AllocateScratchBuffer",
        0x28,
        42,
    )
    assert driver.return_address == 0xFFFFF802DA2D5120
    assert report.stack.frames[3].return_address == 0xFFFFF802DA2D33E8  # = Arg2, the caller in the driver


def test_old_format_multi_line_field_values() -> None:
    (report,) = analyses("analyze-c4-2001-old-bugcheck-str.txt")
    assert report.field("BUGCHECK_CODE") is None
    assert report.field("BUGCHECK_STR") == "0xc4_2001"
    assert (
        report.field("FOLLOWUP_IP")
        == "LegacyDma!MapControlRegisters+57\nfffff803`12a41187 4885c0          test    rax,rax"
    )
    assert report.key_values == ()


def test_bugcheck_str_alone_gives_code_and_first_argument() -> None:
    text = "Debugging Details:\n------------------\n\nBUGCHECK_STR:  0xc4_2000\n\nIMAGE_NAME:  x.sys\n"
    (report,), _ = parse_text(text, "t")
    assert isinstance(report, AnalyzeRecord)
    assert report.bugcheck is not None
    assert (report.bugcheck.code, report.bugcheck.args, report.bugcheck.name) == (0xC4, (0x2000,), None)


def test_fields_only_block_uses_bugcheck_fields() -> None:
    (report,) = analyses("analyze-non-hvci-0xfc-fields-only.txt")
    assert report.bugcheck is not None
    assert report.bugcheck.code == 0xFC
    assert report.bugcheck.args == (0xFFFFC30F1A2B4000, 0x8A00000123456863, 0xFFFFE5864D2C7460, 3)
    assert report.bugcheck.name is None
    assert (report.span.first_line, report.span.last_line) == (3, 33)
    assert report.stack is not None and len(report.stack.frames) == 6


def test_x86_fields_stay_sign_extended_while_args_are_as_printed() -> None:
    (report,) = analyses("analyze-x86-sign-extended.txt")
    assert report.field("BUGCHECK_P2") == "ffffffff8d4a12c8"
    assert report.bugcheck is not None and report.bugcheck.args[1] == 0x8D4A12C8
    assert report.stack is not None
    assert [f.args for f in report.stack.frames[:1]] == [(0xC4, 0x2000, 0x8D4A12C8)]


def test_tab_continued_argument_descriptions() -> None:
    (report,) = analyses("analyze-non-hvci-c4-62-leak.txt")
    assert report.bugcheck is not None
    assert report.bugcheck.args == (0x62, 0xFFFFD6851FBF7188, 0xFFFFD68517AF2670, 1)
    assert report.bugcheck.arg_texts[3] == (
        "total # of (paged+nonpaged) allocations that weren't freed. Type !verifier 3 "
        "drivername.sys for info "
        "on the allocations that were leaked that caused the bugcheck."
    )
    (fifty,) = analyses("analyze-non-hvci-0x50.txt")
    assert fifty.bugcheck is not None
    assert (fifty.bugcheck.code, fifty.bugcheck.name) == (0x50, "PAGE_FAULT_IN_NONPAGED_AREA")
    assert fifty.bugcheck.arg_texts[2] == (
        "If non-zero, the instruction address which referenced the bad memory address."
    )
    assert fifty.field(
        "READ_ADDRESS",
    ) is not None and "MmSpecialPagesInUse" in (fifty.field("READ_ADDRESS") or "")


def test_short_automatic_analysis() -> None:
    records = records_of("analyze-non-hvci-0x1e-short.txt")
    fatal, short = records
    assert isinstance(fatal, BugCheckRecord) and fatal.form == "fatal-system-error"
    assert isinstance(short, AnalyzeRecord)
    assert (short.span.first_line, short.span.last_line) == (18, 32)
    assert short.bugcheck is not None
    assert (short.bugcheck.form, short.bugcheck.code, short.bugcheck.span.first_line) == (
        "bugcheck-line",
        0x1E,
        26,
    )
    assert short.field("Probably caused by") == "ViGEmBus.sys ( ViGEmBus+11a3b )"


def test_forum_mangled_copy() -> None:
    (report,) = analyses("analyze-forum-mangled.md")
    assert report.field("BUGCHECK_P2") == "fffff8074b9852f0"
    assert report.field("IMAGE_NAME") == "AcmeFan.sys"
    assert report.bugcheck is not None
    assert report.bugcheck.arg_texts[1] == "The address in the driver's code where the error was detected."
    assert report.stack is not None
    assert [(f.module, f.offset) for f in report.stack.frames][-1] == ("AcmeFan", 0x52F0)


def test_two_reports_in_a_row_are_two_records() -> None:
    one = (SAMPLES / "analyze-non-hvci-c4-62-leak.txt").read_text("utf-8")
    records, _ = parse_text(one + one, "t")
    reports = [r for r in records if isinstance(r, AnalyzeRecord)]
    assert [(r.span.first_line, r.span.last_line) for r in reports] == [(2, 75), (78, 151)]


def test_report_cut_off_mid_way() -> None:
    text = "\n".join((SAMPLES / "analyze-c4-2000-modern.txt").read_text("utf-8").splitlines()[:65])
    records, _ = parse_text(text, "t")
    (report,) = [r for r in records if isinstance(r, AnalyzeRecord)]
    assert report.bugcheck is not None
    assert report.bugcheck.args == (0x2000, 0xFFFFF802DA2D33E8)  # Arg3/Arg4 were never printed
    assert report.span.last_line == 65


def test_star_line_that_is_not_an_analysis_box() -> None:
    records, _ = parse_text("*" * 79 + "\nsome banner of another tool\n" + "*" * 79 + "\n", "t")
    assert records == []


def test_blank_line_before_arguments_and_continuations() -> None:
    lines = [
        "DRIVER_VERIFIER_DETECTED_VIOLATION (c4)",
        "A device driver attempting to corrupt the system has been caught.",
        "",
        "Arguments:",
        "Arg1: 0000000000002002, Code Integrity Issue: The caller specified an executable",
        "MDL mapping. (Expected: MdlMappingNoExecute)",
        "Arg2: fffff802da2d4a1d, The address in the driver's code",
        "\twhere the error was detected.",
        "Arg3: 0000000000000010, Page Priority.",
        "Arg4: 0000000000000000, 0",
        "",
        "Debugging Details:",
        "------------------",
    ]
    records, _ = parse_text("\n".join(lines) + "\n", "t")
    (report,) = records
    assert isinstance(report, AnalyzeRecord) and report.bugcheck is not None
    assert report.bugcheck.arg_texts[:2] == (
        "Code Integrity Issue: The caller specified an executable MDL mapping. "
        "(Expected: MdlMappingNoExecute)",
        "The address in the driver's code where the error was detected.",
    )
    assert report.bugcheck.span == Span("t", 1, 10)


def test_a_box_followed_by_unrelated_text_gives_the_text_back() -> None:
    box = (SAMPLES / "analyze-c4-2000-modern.txt").read_text("utf-8").splitlines()[50:55]
    noise = [f"[Acme] tick {i}" for i in range(60)]
    text = "\n".join([*box, *noise, "BugCheck C4, {2000, 1, 0, 0}"]) + "\n"
    records, _ = parse_text(text, "t")
    assert [type(r).__name__ for r in records] == ["AnalyzeRecord", "BugCheckRecord"]
    assert records[0].span == Span("t", 1, 5)
    assert records[1].span.first_line == 66


def test_looking_back_for_a_header_stops_at_the_previous_block() -> None:
    box = (SAMPLES / "analyze-c4-2000-modern.txt").read_text("utf-8").splitlines()[50:55]
    first = [*box, "DRIVER_VERIFIER_DETECTED_VIOLATION (c4)", "Arguments:", "Arg1: 0000000000002000, x"]
    first += ["Followup:     MachineOwner", "---------"]
    second = ["Arguments:", "Arg1: 0000000000000001, y", "", "BUGCHECK_CODE:  1e"]
    records, _ = parse_text("\n".join(first + second) + "\n", "t")
    one, two = records
    assert isinstance(one, AnalyzeRecord) and isinstance(two, AnalyzeRecord)
    assert one.bugcheck is not None and one.bugcheck.name == "DRIVER_VERIFIER_DETECTED_VIOLATION"
    assert two.span.first_line == 11
    assert two.bugcheck is not None
    assert (two.bugcheck.name, two.bugcheck.code, two.bugcheck.args) == (None, 0x1E, (1,))


#: what ends a report: the one search the parser made before issue 16 (the spec of analyze._foreign)
_FOREIGN_SPEC = re.compile(
    r"Fatal System Error:|Verifier Detected a Code Integrity Issue|^\s*(?:\d+:\s*)?l?kd(?::x86)?> "
)
_FOREIGN_PIECES = [
    *("Fatal System Error:", "Verifier Detected a Code Integrity Issue", "kd> ", "lkd> ", "kd:x86> "),
    *("0: ", "12:", " ", "\t", "x", ":", ">", "\u00a0"),
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_FOREIGN_PIECES), max_size=6).map("".join))
def test_a_foreign_line_is_what_the_single_search_found(text: str) -> None:
    assert analyze._foreign(text) is (_FOREIGN_SPEC.search(text) is not None)


#: each pattern the parser tries only on a line starting with one of these (issue 16); the report's lines
#: are stripped, so the pattern's first character is the line's
_FIRST_CHARACTERS = {
    "_SHORT": "U",
    "_DETAILS": "D",
    "_DASHES": "-",
    "_FOLLOWUP": "F",
    "_ARGUMENTS": "A",
    "_ARG": "A",
    "_KEY": "K",
    "_VALUE": "V",
    "_HEADER": string.ascii_uppercase,
    "_FIELD": string.ascii_uppercase,
}
_LINE_PIECES = [
    *" \t\u00a0\u2003:()_.-*`~>0123456789abcAZUDFKVéÅ",
    *("Use !analyze -v to get detailed debugging information", "Debugging Details:", "---", "Followup"),
    *("Arguments:", "Arg1: 0000", "Arg4", ", desc", "DRIVER_X (c4)", "Unknown bugcheck code (1)"),
    *("Key : a", "Value: b", "Followup: x"),
    *("FIELD_NAME: v", "A.B", "kd> ", "0: kd> ", "lkd:x86> ", "*" * 25, "```", "~~~", " x"),
]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(_LINE_PIECES), max_size=8).map("".join))
def test_each_pattern_is_tried_on_every_line_it_can_match(text: str) -> None:
    """Property (issue 16): the substring and first-character tests the parser makes before its matches
    pass every line the match would find something in."""
    for name, first in _FIRST_CHARACTERS.items():
        if getattr(analyze, name).match(text):
            assert text[:1] != "" and text[0] in first, name
    if analyze._STAR_LINE.match(text):
        assert analyze._star_line(text)
    if analyze._FENCE.match(text):
        assert "```" in text or "~~~" in text
    if analyze._FOREIGN_PROMPT.match(text):
        assert "kd" in text
