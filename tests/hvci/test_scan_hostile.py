"""Hostile and broken images: could-not-analyse (or a partial result), never a traceback, bounded time."""

from __future__ import annotations

import functools
import struct
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hvci.images.scan import IMAGE_STATUSES, ImageReport, scan_image, scan_paths

REPO = Path(__file__).resolve().parents[2]
#: A driver of our own (committed with the samples, built by samples/drivers/build.sh): x64, with .pdata,
#: relocations and affected imports, so every reader of ``scan`` gets something to chew on.
DRIVER = REPO / "samples" / "drivers" / "build" / "api_misuse.sys"


@functools.cache
def _driver() -> bytes:
    """Read when a test first runs (never at import time, so collection cannot fail on it)."""
    return DRIVER.read_bytes()


def _pe_offset(data: bytes) -> int:
    return int(struct.unpack_from("<I", data, 0x3C)[0])


def _scan(data: bytes) -> ImageReport:
    report = scan_image(Path("hostile.sys"), data=data)
    assert report.status in IMAGE_STATUSES
    if report.status == "could-not-analyse":
        assert report.diagnostics and not report.rules and not report.incidents
    return report


def test_empty_and_garbage_files_cannot_be_analysed() -> None:
    for data in (b"", b"MZ", b"\x00" * 4096, b"hello world\n" * 100, b"MZ" + b"\xff" * 0x200):
        report = _scan(data)
        assert report.status == "could-not-analyse", data[:16]


def test_truncated_images_never_raise() -> None:
    real = _driver()
    pe_offset = _pe_offset(real)
    for size in (0x40, pe_offset + 4, pe_offset + 0x18, 0x200, 0x400, 0x1000, len(real) // 2, len(real) - 1):
        _scan(real[:size])


def _section_table(data: bytes) -> tuple[int, int]:
    """The file offset of the section table and the number of sections."""
    pe_offset = _pe_offset(data)
    optional_size = struct.unpack_from("<H", data, pe_offset + 20)[0]
    return pe_offset + 24 + optional_size, struct.unpack_from("<H", data, pe_offset + 6)[0]


def test_huge_section_count_and_sizes() -> None:
    real = _driver()
    pe_offset = _pe_offset(real)
    data = bytearray(real)
    struct.pack_into("<H", data, pe_offset + 6, 0xFFFF)  # NumberOfSections
    _scan(bytes(data))
    data = bytearray(real)
    section_table, _ = _section_table(real)
    struct.pack_into("<I", data, section_table + 8, 0xFFFFFFF0)  # .text VirtualSize
    struct.pack_into("<I", data, section_table + 16, 0xFFFFFFF0)  # .text SizeOfRawData
    struct.pack_into("<I", data, pe_offset + 24 + 56, 0xFFFFFFFF)  # SizeOfImage
    report = _scan(bytes(data))
    assert report.status != "could-not-analyse"


def test_a_huge_pdata_range_is_capped() -> None:
    real = _driver()
    data = bytearray(real)
    section_table, count = _section_table(real)
    pdata_raw = next(
        struct.unpack_from("<I", real, entry + 20)[0]
        for entry in (section_table + 40 * i for i in range(count))
        if real[entry : entry + 8].rstrip(b"\0") == b".pdata"
    )
    struct.pack_into("<II", data, pdata_raw, 0x1000, 0x0FFFFFF0)  # first function "ends" 256 MB later
    struct.pack_into("<I", data, _pe_offset(real) + 24 + 56, 0x10000000)  # SizeOfImage large enough
    report = _scan(bytes(data))
    # the huge range overlaps the real functions: they are analysed, it is not, and the report says so
    assert report.status == "partial" and "overlap others" in " ".join(report.diagnostics)


def test_a_folder_with_a_bad_file_goes_on(tmp_path: Path) -> None:
    (tmp_path / "bad.sys").write_bytes(b"not a driver")
    (tmp_path / "good.sys").write_bytes(_driver())
    report = scan_paths([tmp_path])
    statuses = {Path(i.path).name: i.status for i in report.images}
    assert statuses == {"bad.sys": "could-not-analyse", "good.sys": "analysed"}
    assert report.incomplete


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mutations=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=24),
    header_bias=st.lists(st.tuples(st.integers(0, 0x400), st.integers(0, 255)), max_size=8),
    cut=st.one_of(st.none(), st.integers(0, 1 << 20)),
)
def test_mutated_driver_never_raises(
    mutations: list[tuple[int, int]], header_bias: list[tuple[int, int]], cut: int | None
) -> None:
    real = _driver()
    data = bytearray(real)
    for offset, value in [*mutations, *header_bias]:
        data[offset % len(data)] = value
    _scan(bytes(data[: cut % (len(data) + 1)] if cut is not None else data))
