"""!dh / !dh -f / !dh -s / !lmi dumps -> ImageHeaderRecord with SectionHeader tuples."""

from __future__ import annotations

from parsers.imagedump import PARSER
from parsers.records import Diagnostic, ImageHeaderRecord, SectionHeader, Span
from tests.parsers.p2_support import of_type, run, sample


def _headers(text: str) -> list[ImageHeaderRecord]:
    records, _ = run(PARSER, text)
    return of_type(records, ImageHeaderRecord)


def test_full_dh_with_wx_section_and_lmi() -> None:
    records, untouched = run(PARSER, sample("dh-wx-section.txt"), "dh.txt")
    lmi, dh = records
    assert lmi == ImageHeaderRecord(Span("dh.txt", 1, 17), "hvcidemo.sys", image_base=0xFFFFF8074B980000)
    assert isinstance(dh, ImageHeaderRecord)
    assert dh.span == Span("dh.txt", 18, 210)
    assert dh.module == "hvcidemo"
    assert dh.image_base == 0xFFFFF8074B980000
    assert (dh.section_alignment, dh.file_alignment, dh.dll_characteristics) == (0x1000, 0x200, 0x6160)
    assert (dh.iat_rva, dh.iat_size) == (0x4000, 0x98)
    assert dh.sections == (
        SectionHeader(".text", 0x1000, 0x2A2C, 0x68000020),
        SectionHeader(".rdata", 0x4000, 0x9F4, 0x48000040),
        SectionHeader(".data", 0x5000, 0x2A0, 0xC8000040),
        SectionHeader("RWEXEC", 0x6000, 0x1C8, 0xE8000020),
        SectionHeader(".pdata", 0x7000, 0x108, 0x48000040),
        SectionHeader("PAGE", 0x8000, 0x1F40, 0x60000020),
        SectionHeader("INIT", 0xC000, 0x5B2, 0x62000020),
        SectionHeader(".reloc", 0xD000, 0x2C, 0x42000040),
    )
    assert [line.text for line in untouched] == ["0: kd> g"]


def test_dh_f_and_dh_s_of_a_misaligned_x86_driver() -> None:
    header, sections = _headers(sample("dh-misaligned.txt"))
    assert header == ImageHeaderRecord(
        Span("t.log", 2, 56),
        "oldnic",
        machine=0x14C,
        image_base=0x10000,
        section_alignment=0x80,
        file_alignment=0x80,
        dll_characteristics=0,
        iat_rva=0x3F00,
        iat_size=0x60,
    )
    assert sections.module == "oldnic" and sections.span == Span("t.log", 57, 137)
    assert sections.section_alignment is None and sections.image_base is None
    assert sections.sections == (
        SectionHeader(".text", 0x280, 0x3C14, 0x68000020),
        SectionHeader(".rdata", 0x3F00, 0x4F8, 0x48000040),
        SectionHeader(".data", 0x4400, 0x2E4, 0xC8000040),
        SectionHeader("INIT", 0x4700, 0x27A, 0xE2000020),
        SectionHeader(".reloc", 0x4980, 0xA4, 0x42000040),
    )


def test_dump_without_prompt_has_no_module_name() -> None:
    text = sample("dh-wx-section.txt").split("0: kd> !dh hvcidemo\n", 1)[1]
    dh = _headers(text)[0]
    assert dh.module is None and dh.span.first_line == 2 and len(dh.sections) == 8


def test_address_argument_names_no_module() -> None:
    text = (
        "0: kd> !dh -s fffff807`4b980000\n\nSECTION HEADER #1\n   .text name\n    2A2C virtual size\n"
        "    1000 virtual address\n68000020 flags\n"
    )
    (dh,) = _headers(text)
    assert dh.module is None and dh.sections == (SectionHeader(".text", 0x1000, 0x2A2C, 0x68000020),)
    assert dh.address == 0xFFFFF8074B980000
    # as the collectors send it
    (sent,) = _headers(text.replace("!dh -s fffff807`4b980000", "!dh 0xfffff8074b980000"))
    assert (sent.module, sent.address) == (None, 0xFFFFF8074B980000)


def test_truncated_section_is_reported() -> None:
    text = (
        "SECTION HEADER #1\n   .text name\n    2A2C virtual size\n    1000 virtual address\n68000020 flags\n"
        "\nSECTION HEADER #2\n  .rdata name\n     9F4 virtual"
    )
    records, _ = run(PARSER, text)
    diagnostic, dh = records
    assert diagnostic == Diagnostic(
        Span("t.log", 7, 9), "imagedump: SECTION HEADER #2 is incomplete (truncated dump?)"
    )
    assert isinstance(dh, ImageHeaderRecord) and [s.name for s in dh.sections] == [".text"]


def test_two_dumps_back_to_back_stay_separate() -> None:
    one = "File Type: EXECUTABLE IMAGE\nFILE HEADER VALUES\nOPTIONAL HEADER VALUES\n 1000 section alignment\n"
    two = "File Type: DLL\nFILE HEADER VALUES\nOPTIONAL HEADER VALUES\n     200 section alignment\n"
    assert [h.section_alignment for h in _headers(one + two)] == [0x1000, 0x200]


def test_prompt_only_is_a_diagnostic_and_stack_lines_are_not_swallowed() -> None:
    text = "0: kd> !dh nosuch\nffffd001`0a2f6a58 fffff803`1a2b3c4d nt!KeBugCheckEx\n"
    records, untouched = run(PARSER, text)
    assert records == [
        Diagnostic(Span("t.log", 1, 1), "imagedump: image header dump without any readable header field")
    ]
    assert [line.number for line in untouched] == [2]
