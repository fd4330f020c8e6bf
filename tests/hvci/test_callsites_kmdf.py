"""KMDF drivers call the framework through the WdfFunctions table (issue 15): the table is found from the
driver's WDF_BIND_INFO, table indexes map to methods by ``kmdf.toml``, and the pool type of WdfMemoryCreate /
WdfLookasideListCreate is judged like an import's. A driver compiled here (clang + lld-link, which CI
installs) at -O2 and -O0 has one executable and one safe WdfMemoryCreate; a real KMDF driver, when present
in the opt-in folder, is checked against a hand reading."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from hvci.images.callsites import EXECUTABLE, SAFE, UNKNOWN, analyse_calls
from hvci.knowledge import kb, kmdf
from symbols.pe import PeImage
from tests.hvci.driver_build import build_driver, needs_toolchain

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = ROOT / "samples" / "drivers"

SOURCE = r"""
#include "ntoskrnl_min.h"

typedef struct { ULONG Major, Minor, Build; } WDF_VERSION;
typedef struct {
    ULONG Size; const WCHAR *Component; WDF_VERSION Version; ULONG FuncCount; PVOID FuncTable; PVOID Module;
} WDF_BIND_INFO;
typedef NTSTATUS (*PFN_MEMORY_CREATE)(PVOID Globals, PVOID Attributes, POOL_TYPE PoolType, ULONG Tag,
                                      SIZE_T Size, PVOID *Memory, PVOID *Buffer);

PVOID *WdfFunctions;  /* filled by WdfVersionBind from the bind info */
PVOID WdfDriverGlobals;
WDF_BIND_INFO WdfBindInfo = {
    sizeof(WDF_BIND_INFO), (const WCHAR *)L"KmdfLibrary", {1, 15, 0}, 444, &WdfFunctions, 0};

__declspec(noinline) NTSTATUS bad_memory(PVOID *memory)
{
    return ((PFN_MEMORY_CREATE)WdfFunctions[192])(WdfDriverGlobals, NULL, NonPagedPool, 0x74736574, 64,
                                                  memory, NULL);
}

__declspec(noinline) NTSTATUS good_memory(PVOID *memory)
{
    return ((PFN_MEMORY_CREATE)WdfFunctions[192])(WdfDriverGlobals, NULL, NonPagedPoolNx, 0x74736574, 64,
                                                  memory, NULL);
}

NTSTATUS DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
    PVOID memory;
    (void)path; (void)driver;
    return bad_memory(&memory) || good_memory(&memory) || WdfBindInfo.Size == 0
        ? STATUS_UNSUCCESSFUL : STATUS_SUCCESS;
}
"""


def test_every_kmdf_method_of_the_api_table_has_a_table_index() -> None:
    methods = {a.name for a in kb.load().affected_apis if "WdfFunctions" in a.module}
    assert methods and methods == set(kmdf.load().by_index.values())
    assert kmdf.load().by_index[192] == "WdfMemoryCreate"


@needs_toolchain
@pytest.mark.parametrize("opt", ["-O2", "-O0"])
def test_wdf_memory_create_through_the_table(tmp_path: Path, opt: str) -> None:
    sites = analyse_calls(
        PeImage.open(build_driver(tmp_path, SOURCE, "x64", opt))
    ).sites  # bad_memory, then good_memory
    assert [s.api for s in sites] == ["WdfMemoryCreate"] * 2
    assert [s.verdict for s in sites] == [EXECUTABLE, SAFE], sites
    assert [s.values for s in sites] == [(0,), (0x200,)]
    assert all("WdfFunctions[192] of KMDF 1.15" in s.how and "argument 3 (r8)" in s.reason for s in sites)


#: The KMDF build read by hand below: WIN10_WETESTUSBNCM.SYS as embedded in PyPI's pywintun-pmd3 0.0.4.
NCM_SHA256 = "247e293b191e50e7920a1756352431de02207fcb818ce7c83190a833c4ad291a"


def test_a_real_kmdf_driver_calls_wdf_memory_create_as_its_code_says() -> None:
    """By hand, at 0x13af0: ``mov r8d, 0x200`` (0x13abf: PoolType, the 3rd argument after WdfDriverGlobals),
    ``mov rax, [rip-0x2fa4]`` (0x13ac5: the WdfFunctions pointer at RVA 0x10b28, the FuncTable of the
    driver's WDF_BIND_INFO for KMDF 1.15), ``mov rax, [rax+0x600]`` (index 192: WdfMemoryCreate), then
    ``call [rip-0x6996]``, the /guard:cf dispatch pointer at RVA 0xd160: NonPagedPoolNx, safe. At 0xb641,
    WdfLookasideListCreate (index 198) takes its pool type from the caller's r8: unknown."""
    folder = os.environ.get("HVCI_REALWORLD_EXTRA")
    path = Path(folder) / "win10_wetestusbncm.sys" if folder else None
    if path is None or not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != NCM_SHA256:
        pytest.skip(
            "set HVCI_REALWORLD_EXTRA to a folder holding win10_wetestusbncm.sys (pywintun-pmd3 0.0.4)"
        )
    sites = {s.rva: s for s in analyse_calls(PeImage.open(path)).sites}
    memory = sites[0x13AF0]
    assert (memory.api, memory.verdict, memory.values) == ("WdfMemoryCreate", SAFE, (0x200,))
    assert "WdfFunctions[192]" in memory.how and "CFG dispatch" in memory.how
    lookaside = sites[0xB641]
    assert (lookaside.api, lookaside.verdict) == ("WdfLookasideListCreate", UNKNOWN)
    assert "r8 on entry" in lookaside.reason
    assert not [s for s in sites.values() if s.verdict == EXECUTABLE]
