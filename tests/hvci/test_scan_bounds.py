"""Hostile images cost what their bytes are worth: memory and work bounded by the file, never by what its
headers claim (issue 10: .pdata CPU bomb, a virtual size of 2 GB, an endless device, no section table)."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import pefile
import pytest

from hvci.images.callsites import analyse_calls
from hvci.images.rules import COULD_NOT_ANALYSE, RULE_ALIGNMENT
from hvci.images.scan import scan_image
from symbols.pe import PeImage

BUILD = Path(__file__).resolve().parents[2] / "samples" / "drivers" / "build"


def _peak_mb(run: object) -> float:
    assert callable(run)
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def _with_functions(pe: PeImage, ranges: list[tuple[int, int]]) -> PeImage:
    """The image as a hostile ``.pdata`` listing ``ranges`` would be read (sorted, distinct)."""
    pe.functions = tuple(sorted(set(ranges)))
    pe._function_starts = [begin for begin, _ in pe.functions]
    return pe


def test_overlapping_pdata_ranges_are_analysed_once_per_byte() -> None:
    honest = PeImage.open(BUILD / "api_misuse.sys")
    text = next(s for s in honest.sections if s.name == ".text")
    start, end = text.virtual_address, text.virtual_address + text.virtual_size
    # 20,000 distinct ranges over the same code, each starting in the first honest function, plus one
    # range that claims the whole section
    hostile = [(start + i % 16, end - i // 16 % 1000) for i in range(20_000)] + [(start, end)]
    expected = analyse_calls(honest)
    result = analyse_calls(
        _with_functions(PeImage.open(BUILD / "api_misuse.sys"), [*honest.functions, *hostile])
    )
    code = sum(s.virtual_size for s in honest.sections if s.executable)
    assert result.scanned_bytes <= code
    assert result.code_bytes <= 2 * code
    # the honest functions win over the ranges that overlap them: every call is still found and decided
    assert [(s.rva, s.verdict) for s in result.sites] == [(s.rva, s.verdict) for s in expected.sites]
    assert any("overlap" in note for note in result.notes)


def _patched(name: str, patch: object) -> bytes:
    data = bytearray((BUILD / name).read_bytes())
    assert callable(patch)
    patch(data, pefile.PE(data=bytes(data), fast_load=True))
    return bytes(data)


def test_a_2_gb_virtual_size_is_not_read_into_memory() -> None:
    def huge_reloc(data: bytearray, pe: pefile.PE) -> None:
        reloc = next(s for s in pe.sections if s.Name.startswith(b".reloc"))
        struct.pack_into("<I", data, reloc.get_file_offset() + 8, 0x7FFFFFFF)  # VirtualSize
        directory = pe.OPTIONAL_HEADER.DATA_DIRECTORY[5]
        struct.pack_into("<I", data, directory.get_file_offset() + 4, 0x7FFFFFFF)  # directory size

    data = _patched("clean.sys", huge_reloc)
    reports = []
    assert _peak_mb(lambda: reports.append(scan_image(Path("huge.sys"), data=data))) < 64
    assert reports[0].status == "partial"


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero on this system")
def test_an_endless_device_is_not_a_pe_image() -> None:
    reports = []
    assert _peak_mb(lambda: reports.append(scan_image(Path("/dev/zero")))) < 64
    assert reports[0].status == "could-not-analyse"
    assert "not a PE image" in reports[0].diagnostics[0]


def test_an_image_without_a_section_table_does_not_pass_section_alignment() -> None:
    report = scan_image(Path("cut.sys"), data=(BUILD / "clean.sys").read_bytes()[:300])
    alignment = next(r for r in report.rules if r.rule_id == RULE_ALIGNMENT)
    assert alignment.status == COULD_NOT_ANALYSE, alignment.message
    assert report.status == "partial"
