"""lm / lmv / lmvm / lm t n listings -> ModuleListRecord, exact values from the samples and edge cases."""

from __future__ import annotations

from parsers.lm import PARSER
from parsers.records import Diagnostic, ModuleEntry, ModuleListRecord, Span
from tests.parsers.p2_support import of_type, run, sample


def _lists(text: str) -> list[ModuleListRecord]:
    records, _ = run(PARSER, text)
    return of_type(records, ModuleListRecord)


def test_x64_lm_with_every_status_and_unloaded_section() -> None:
    records, untouched = run(PARSER, sample("lm-x64.txt"), "lm-x64.txt")
    assert len(records) == 1
    listing = records[0]
    assert isinstance(listing, ModuleListRecord)
    assert listing.span == Span("lm-x64.txt", 13, 26)
    names = [m.name for m in listing.modules]
    assert names == [
        "nt",
        "hal",
        "kd",
        "IntelHaxm",
        "hvcidemo",
        "Wdf01000",
        "mssecflt",
        "tcpipreg",
        "dump_storport.sys",
        "dump_stornvme.sys",
        "dump_dumpfve.sys",
    ]
    nt = listing.modules[0]
    assert nt == ModuleEntry(
        line=14,
        name="nt",
        start=0xFFFFF8021A200000,
        end=0xFFFFF8021B246000,
        symbol_status="(pdb symbols)",
        pdb_path=r"c:\symbols\ntkrnlmp.pdb\8E3A6D8B4F2C4B6C9D1E2F30A1B2C3D41\ntkrnlmp.pdb",
    )
    by_name = {m.name: m for m in listing.modules}
    assert by_name["hal"].symbol_status == "(deferred)" and by_name["hal"].pdb_path is None
    assert by_name["IntelHaxm"].symbol_status == "T (no symbols)"
    assert by_name["IntelHaxm"].start == 0xFFFFF8021D5A0000 and by_name["IntelHaxm"].end == 0xFFFFF8021D5B9000
    assert by_name["hvcidemo"].symbol_status == "(private pdb symbols)"
    assert by_name["hvcidemo"].pdb_path == r"C:\work\hvcidemo\build\x64\Release\hvcidemo.pdb"
    assert by_name["Wdf01000"].symbol_status == "(export symbols)"
    assert by_name["Wdf01000"].image_name == "Wdf01000.sys" and by_name["Wdf01000"].pdb_path is None
    assert by_name["mssecflt"].symbol_status == "M (pdb symbols)"
    assert by_name["tcpipreg"].symbol_status == "# (deferred)"
    unloaded = [m for m in listing.modules if m.unloaded]
    assert [m.name for m in unloaded] == ["dump_storport.sys", "dump_stornvme.sys", "dump_dumpfve.sys"]
    assert unloaded[0].start == 0xFFFFF8021F050000 and unloaded[0].end == 0xFFFFF8021F060000
    assert unloaded[0].line == 24
    assert not any(m.unloaded for m in listing.modules[:8])
    # the prompt and the stack listing after the block are left for other parsers
    assert [line.number for line in untouched][-4:] == [27, 28, 29, 30]


def test_lmv_detail_lines_and_unloaded_columns() -> None:
    lists = _lists(sample("lmv-with-unloaded.txt"))
    assert [len(x.modules) for x in lists] == [1, 1, 4]
    demo = lists[0].modules[0]
    assert demo == ModuleEntry(
        line=5,
        name="hvcidemo",
        start=0xFFFFF8074B980000,
        end=0xFFFFF8074B98E000,
        symbol_status="(private pdb symbols)",
        pdb_path=r"C:\work\hvcidemo\build\x64\Release\hvcidemo.pdb",
        image_name="hvcidemo.sys",
        image_path=r"\??\C:\work\hvcidemo\build\x64\Release\hvcidemo.sys",
        timestamp=0x6983FF53,
        checksum=0x0001A3C4,
        image_size=0xE000,
    )
    assert lists[0].span.first_line == 4 and lists[0].span.last_line == 28
    nt = lists[1].modules[0]
    assert nt.image_name == "ntkrnlmp.exe" and nt.image_path == "ntkrnlmp.exe"
    assert nt.timestamp == 0xB1A2C3D4  # reproducible-build hash printed in place of a date
    assert nt.checksum == 0x00A6D6D0 and nt.image_size == 0x01046000
    legacy = lists[2].modules[1]
    assert (legacy.name, legacy.image_path, legacy.timestamp, legacy.checksum, legacy.image_size) == (
        "legacyfw",
        r"\SystemRoot\System32\drivers\legacyfw.sys",
        0x55014F35,
        0x0002B17E,
        0x21000,
    )
    dump, stale = lists[2].modules[2:]
    assert dump == ModuleEntry(
        line=79,
        name="dump_storport.sys",
        start=0xFFFFF8074D100000,
        end=0xFFFFF8074D111000,
        timestamp=0,
        checksum=0,
        image_size=0x11000,
        unloaded=True,
    )
    assert stale.name == "hvcidemo.sys" and stale.unloaded and stale.image_size == 0x1F000


def test_x86_lm_t_n_and_plain_lm() -> None:
    first, second = _lists(sample("lm-x86.txt"))
    assert first.span == Span("t.log", 3, 7)
    nt = first.modules[0]
    assert nt == ModuleEntry(
        line=4, name="nt", start=0x804D7000, end=0x806E5000, image_name="ntkrnlpa.exe", timestamp=0x41107FA4
    )
    assert [m.image_name for m in first.modules] == [
        "ntkrnlpa.exe",
        "halaacpi.dll",
        "hvcidemo.sys",
        "legacyfw.sys",
    ]
    assert first.modules[2].timestamp == 0x6983FF53
    assert [m.symbol_status for m in second.modules] == [
        "(pdb symbols)",
        "(deferred)",
        "(private pdb symbols)",
        "T (no symbols)",
        None,
        None,
    ]
    assert second.modules[2].pdb_path == r"c:\work\hvcidemo\build\x86\hvcidemo.pdb"
    assert [(m.name, m.start, m.end, m.unloaded) for m in second.modules[4:]] == [
        ("Cdfs.SYS", 0xF7C1A000, 0xF7C28000, True),
        ("Sfloppy.SYS", 0xF7D62000, 0xF7D65000, True),
    ]


def test_lm_t_without_image_name_and_plain_16_digit_addresses() -> None:
    text = (
        "start             end                 module name\n"
        "fffff8021a200000 fffff8021b246000   nt       Wed Aug  4 07:19:48 2004 (41107FA4)\n"
    )
    (listing,) = _lists(text)
    assert listing.modules[0].start == 0xFFFFF8021A200000
    assert listing.modules[0].timestamp == 0x41107FA4 and listing.modules[0].image_name is None


def test_debugger_warnings_inside_the_listing_are_skipped() -> None:
    text = (
        "start             end                 module name\n"
        "fffff802`1a200000 fffff802`1b246000   nt         (pdb symbols)          c:\\s\\nt.pdb\n"
        "*** WARNING: Unable to verify timestamp for foo.sys\n"
        "fffff802`1d5a0000 fffff802`1d5b9000   foo        T (no symbols)           \n"
        "0: kd> g\n"
    )
    records, untouched = run(PARSER, text)
    (listing,) = of_type(records, ModuleListRecord)
    assert [m.name for m in listing.modules] == ["nt", "foo"]
    assert [line.text for line in untouched] == ["0: kd> g"]


def test_truncated_listing_keeps_the_rows_read() -> None:
    text = (
        "start             end                 module name\n"
        "fffff802`1a200000 fffff802`1b246000   nt         (pdb symbols)          c:\\s\\nt.pdb\n"
        "fffff802`1d5a0000 fffff8"
    )
    (listing,) = _lists(text)
    assert [m.name for m in listing.modules] == ["nt"]
    assert listing.span.last_line == 2


def test_header_without_rows_is_a_diagnostic_and_garbage_is_pushed_back() -> None:
    text = "start    end        module name\n\x00\x01garbage \ufffd\nkd> "
    records, untouched = run(PARSER, text)
    assert records == [
        Diagnostic(Span("t.log", 1, 1), "lm: module list header without any module rows", "info")
    ]
    assert [line.number for line in untouched] == [2, 3]


def test_blank_line_ends_the_listing_unless_unloaded_modules_follow() -> None:
    text = (
        "start    end        module name\n804d7000 806e5000   nt       (deferred)\n\n"
        "f7c1a000 f7c28000   notamodule\n"
    )
    records, untouched = run(PARSER, text)
    (listing,) = of_type(records, ModuleListRecord)
    assert [m.name for m in listing.modules] == ["nt"]
    assert [line.number for line in untouched] == [3, 4]


def test_unloaded_section_on_its_own() -> None:
    (listing,) = _lists("Unloaded modules:\nf7c1a000 f7c28000   Cdfs.SYS\n")
    assert listing.modules == (
        ModuleEntry(line=2, name="Cdfs.SYS", start=0xF7C1A000, end=0xF7C28000, unloaded=True),
    )
