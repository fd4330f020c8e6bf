"""Hostile and broken images: could-not-analyse (or a partial result), never a traceback, bounded time."""

from __future__ import annotations

import struct
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hvci.images.scan import IMAGE_STATUSES, ImageReport, scan_image, scan_paths

REPO = Path(__file__).resolve().parents[2]
REAL = (REPO / ".." / "shared" / "realworld" / "drivers" / "WinDivert64-1.3.sys").read_bytes()
PE_OFFSET = struct.unpack_from("<I", REAL, 0x3C)[0]


def _scan(data: bytes) -> ImageReport:
    started = time.perf_counter()
    report = scan_image(Path("hostile.sys"), data=data)
    assert time.perf_counter() - started < 10
    assert report.status in IMAGE_STATUSES
    if report.status == "could-not-analyse":
        assert report.diagnostics and not report.rules and not report.incidents
    return report


def test_empty_and_garbage_files_cannot_be_analysed() -> None:
    for data in (b"", b"MZ", b"\x00" * 4096, b"hello world\n" * 100, b"MZ" + b"\xff" * 0x200):
        report = _scan(data)
        assert report.status == "could-not-analyse", data[:16]


def test_truncated_images_never_raise() -> None:
    for size in (
        0x40,
        PE_OFFSET + 4,
        PE_OFFSET + 0x18,
        0x200,
        0x400,
        0x1000,
        0x3000,
        len(REAL) // 2,
        len(REAL) - 1,
    ):
        _scan(REAL[:size])


def test_huge_section_count_and_sizes() -> None:
    data = bytearray(REAL)
    struct.pack_into("<H", data, PE_OFFSET + 6, 0xFFFF)  # NumberOfSections
    _scan(bytes(data))
    data = bytearray(REAL)
    section_table = PE_OFFSET + 24 + struct.unpack_from("<H", REAL, PE_OFFSET + 20)[0]
    struct.pack_into("<I", data, section_table + 8, 0xFFFFFFF0)  # .text VirtualSize
    struct.pack_into("<I", data, section_table + 16, 0xFFFFFFF0)  # .text SizeOfRawData
    struct.pack_into("<I", data, PE_OFFSET + 24 + 56, 0xFFFFFFFF)  # SizeOfImage
    report = _scan(bytes(data))
    assert report.status != "could-not-analyse"


def test_a_huge_pdata_range_is_capped() -> None:
    data = bytearray(REAL)
    pdata_rva, pdata_raw = 0xA000, None
    section_table = PE_OFFSET + 24 + struct.unpack_from("<H", REAL, PE_OFFSET + 20)[0]
    for i in range(struct.unpack_from("<H", REAL, PE_OFFSET + 6)[0]):
        entry = section_table + 40 * i
        if struct.unpack_from("<I", REAL, entry + 12)[0] == pdata_rva:
            pdata_raw = struct.unpack_from("<I", REAL, entry + 20)[0]
    assert pdata_raw is not None
    struct.pack_into("<II", data, pdata_raw, 0x1000, 0x0FFFFFF0)  # first function "ends" 256 MB later
    struct.pack_into("<I", data, PE_OFFSET + 24 + 56, 0x10000000)  # SizeOfImage large enough to allow it
    report = _scan(bytes(data))
    assert report.status == "partial" and "capped" in " ".join(report.diagnostics)


def test_a_folder_with_a_bad_file_goes_on(tmp_path: Path) -> None:
    (tmp_path / "bad.sys").write_bytes(b"not a driver")
    (tmp_path / "good.sys").write_bytes(REAL)
    report = scan_paths([tmp_path])
    statuses = {Path(i.path).name: i.status for i in report.images}
    assert statuses == {"bad.sys": "could-not-analyse", "good.sys": "analysed"}
    assert report.incomplete


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mutations=st.lists(
        st.tuples(st.integers(0, len(REAL) - 1), st.integers(0, 255)), min_size=1, max_size=24
    ),
    header_bias=st.lists(st.tuples(st.integers(0, 0x400), st.integers(0, 255)), max_size=8),
    cut=st.one_of(st.none(), st.integers(0, len(REAL))),
)
def test_mutated_real_driver_never_raises(
    mutations: list[tuple[int, int]], header_bias: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(REAL)
    for offset, value in [*mutations, *header_bias]:
        data[offset] = value
    _scan(bytes(data[:cut] if cut is not None else data))
