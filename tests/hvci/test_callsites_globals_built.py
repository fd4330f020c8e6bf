"""The global-argument patterns of issue 15 in a driver compiled here at -O2 and -O0 (clang + lld-link, which
CI installs): the NX opt-in (RtlGetVersion, then the NX values stored into the globals the allocations
read), bits that decide whatever a global holds, and a global nobody sets to a known value (unknown)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hvci.images.callsites import SAFE, UNKNOWN, analyse_calls
from symbols.pe import PeImage
from tests.hvci.driver_build import build_driver, needs_toolchain

SOURCE = r"""
#include "ntoskrnl_min.h"
#define TAG 0x74736574

typedef struct { ULONG Size, Major, Minor, Build, Platform; WCHAR Service[128]; } OSVERSIONINFOW;
__declspec(dllimport) NTSTATUS RtlGetVersion(OSVERSIONINFOW *info);

POOL_TYPE DefaultPoolType;     /* NonPagedPool (0) until the opt-in below */
ULONG DefaultMdlProtection;    /* 0 until the opt-in below */
ULONG FromRegistry;            /* set in DriverEntry from its parameter: never known */

__declspec(noinline) void opt_in(void)
{
    OSVERSIONINFOW info;
    info.Size = sizeof info;
    if (NT_SUCCESS(RtlGetVersion(&info)) && (info.Major > 6 || (info.Major == 6 && info.Minor >= 2))) {
        DefaultPoolType = NonPagedPoolNx;
        DefaultMdlProtection = MdlMappingNoExecute;
    }
}

__declspec(noinline) PVOID pool_opt_in(SIZE_T n) { return ExAllocatePoolWithTag(DefaultPoolType, n, TAG); }

__declspec(noinline) PVOID map_opt_in(PMDL mdl)
{
    return MmMapLockedPagesSpecifyCache(mdl, KernelMode, MmCached, NULL, FALSE,
                                        DefaultMdlProtection | NormalPagePriority);
}

__declspec(noinline) PVOID map_known_bits(PMDL mdl)
{
    return MmMapLockedPagesSpecifyCache(mdl, KernelMode, MmCached, NULL, FALSE,
                                        FromRegistry | MdlMappingNoExecute | NormalPagePriority);
}

__declspec(noinline) PVOID pool_unknown(SIZE_T n)
{
    return ExAllocatePoolWithTag((POOL_TYPE)FromRegistry, n, TAG);
}

NTSTATUS DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
    FromRegistry = path->Length;
    opt_in();
    return pool_opt_in(16) && map_opt_in((PMDL)driver) && map_known_bits((PMDL)driver) && pool_unknown(16)
        ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;
}
"""


@needs_toolchain
@pytest.mark.parametrize("opt", ["-O2", "-O0"])
def test_globals_decide_in_a_built_driver(tmp_path: Path, opt: str) -> None:
    image = build_driver(tmp_path, SOURCE, "x64", opt, imports=("RtlGetVersion",))
    sites = analyse_calls(PeImage.open(image)).sites  # source order
    assert [s.api for s in sites] == [
        "ExAllocatePoolWithTag",
        *["MmMapLockedPagesSpecifyCache"] * 2,
        "ExAllocatePoolWithTag",
    ]
    assert [s.verdict for s in sites] == [SAFE, SAFE, SAFE, UNKNOWN], [s.reason for s in sites]
    pool, mapping, bits, unknown = sites
    assert "NX opt-in" in pool.reason and "RtlGetVersion" in pool.reason and pool.values == (0, 0x200)
    assert "NX opt-in" in mapping.reason and 0x40000010 in mapping.values
    assert "whatever the global holds" in bits.reason and bits.values == (0x40000010,)
    assert "global" in unknown.reason
