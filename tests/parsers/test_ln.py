"""`ln`: the nearest symbol as the debugger resolved it."""

from __future__ import annotations

from parsers.records import Span, SymbolLineRecord
from parsers.stream import parse_text


def ln(text: str) -> list[SymbolLineRecord]:
    records, _ = parse_text(text, "t")
    return [r for r in records if isinstance(r, SymbolLineRecord)]


def test_x86_with_source_line() -> None:
    (record,) = ln(
        "kd> ln 0x9a3bf6ac\nd:\\coding\\wdmdrivers\\mydriver\\handleioctl.c(50)+0x15\n"
        "(9a3bf660)   MyDriver!DeviceControlDispatch+0x4c   |  (9a3bf6d0)   "
        "MyDriver!DeviceControlDispatch\nkd> g\n"
    )
    assert record == SymbolLineRecord(
        Span("t", 1, 3),
        0x9A3BF6AC,
        "MyDriver",
        "DeviceControlDispatch",
        0x4C,
        "d:\\coding\\wdmdrivers\\mydriver\\handleioctl.c",
        50,
    )


def test_x64_modern_with_browse_lines_and_exact_matches() -> None:
    (record,) = ln(
        "0: kd> ln nt!KeBugCheckEx\nBrowse module\nSet bu breakpoint\n\n"
        "(fffff807`2a1f5d30)   nt!KeBugCheckEx   |  (fffff807`2a1f5e90)   nt!KeBugCheck2\nExact matches:\n"
        "    nt!KeBugCheckEx (unsigned long, unsigned int64, unsigned int64, unsigned "
        "int64, unsigned int64)\n"
        "0: kd> g\n"
    )
    assert (record.address, record.module, record.function, record.offset) == (
        0xFFFFF8072A1F5D30,
        "nt",
        "KeBugCheckEx",
        None,
    )
    assert record.span == Span("t", 1, 7)


def test_module_plus_offset_without_symbols() -> None:
    (record,) = ln("kd> ln 8d4a12c8\n(8d4a0000)   CamBridge+0x12c8   |  (8d4b8000)   CamBridge+0x18000\n")
    assert (record.address, record.module, record.function, record.offset) == (
        0x8D4A12C8,
        "CamBridge",
        None,
        0x12C8,
    )


def test_no_answer_gives_nothing_and_keeps_the_next_block() -> None:
    records, _ = parse_text("0: kd> ln 0\n0: kd> .bugcheck\nBugcheck code 000000c4\nArguments 0 0 0 0\n", "t")
    assert [type(r).__name__ for r in records] == ["BugCheckRecord"]
