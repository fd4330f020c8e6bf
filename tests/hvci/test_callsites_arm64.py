"""ARM64 call sites: the sample ARM64 driver (clean.c) decided like its x64 build, and a driver compiled here
for aarch64-pc-windows-msvc (clang + lld-link, which CI installs) at -O2 and -O0 with one executable and one
safe call of each kind: found and decided exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from hvci.images.callsites import EXECUTABLE, SAFE, analyse_calls
from hvci.images.scan import scan_image
from symbols.pe import PeImage
from tests.hvci.driver_build import build_driver, needs_toolchain

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = ROOT / "samples" / "drivers"

SOURCE = r"""
#include "ntoskrnl_min.h"
#define TAG 0x74736574

__declspec(noinline) PVOID bad_pool(SIZE_T n) { return ExAllocatePoolWithTag(NonPagedPool, n, TAG); }
__declspec(noinline) PVOID good_pool(SIZE_T n) { return ExAllocatePoolWithTag(NonPagedPoolNx, n, TAG); }

__declspec(noinline) PVOID bad_map(PMDL mdl)
{
    return MmMapLockedPagesSpecifyCache(mdl, KernelMode, MmCached, NULL, FALSE, NormalPagePriority);
}

__declspec(noinline) PVOID good_map(PMDL mdl)
{
    return MmMapLockedPagesSpecifyCache(mdl, KernelMode, MmCached, NULL, FALSE,
                                        NormalPagePriority | MdlMappingNoExecute);
}

NTSTATUS DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
    (void)path;
    return bad_pool(16) && good_pool(16) && bad_map((PMDL)driver) && good_map((PMDL)driver)
        ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;
}
"""


def test_the_sample_arm64_driver_is_decided_like_its_x64_build() -> None:
    arm = scan_image(DRIVERS / "build" / "arm64_clean.sys")
    x64 = scan_image(DRIVERS / "build" / "clean.sys")
    assert arm.calls is not None and arm.calls.status == "done"
    assert [s.verdict for s in arm.call_sites] == [SAFE] * 5
    names = sorted((s.api, s.function.name, s.values) for s in arm.call_sites)
    assert names == sorted((s.api, s.function.name, s.values) for s in x64.call_sites)


@needs_toolchain
@pytest.mark.parametrize("opt", ["-O2", "-O0"])
def test_arm64_calls_are_found_and_decided(tmp_path: Path, opt: str) -> None:
    analysis = analyse_calls(PeImage.open(build_driver(tmp_path, SOURCE, "arm64", opt)))
    sites = analysis.sites  # in source order: bad_pool, good_pool, bad_map, good_map
    assert [s.api for s in sites] == ["ExAllocatePoolWithTag"] * 2 + ["MmMapLockedPagesSpecifyCache"] * 2
    # both levels set each argument in the call's own block (-O0 through a scratch register): all decided
    assert [s.verdict for s in sites] == [EXECUTABLE, SAFE, EXECUTABLE, SAFE], sites
    assert [s.values for s in sites] == [(0,), (0x200,), (0x10,), (0x40000010,)]
    assert all(("tail jump" in s.how) == (opt == "-O2") for s in sites)
