"""An affected API's ``safe_when`` condition (knowledge base) makes a call safe whatever the deciding
argument says: ``MmMapLockedPagesSpecifyCache`` into user mode is always non-executable, so a priority
without ``MdlMappingNoExecute`` is only a finding for kernel-mode mappings.

The driver is compiled here from a few lines of C (clang + lld-link, which CI installs), at -O2 and -O0, so
both register and stack argument passing are covered.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from hvci.images.callsites import EXECUTABLE, SAFE, analyse_calls
from hvci.knowledge import kb
from symbols.pe import PeImage

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = ROOT / "samples" / "drivers"
TOOLS = {name: shutil.which(name) or "" for name in ("clang", "lld-link", "llvm-dlltool")}
pytestmark = [
    pytest.mark.toolchain,
    pytest.mark.skipif(
        not all(TOOLS.values()), reason="needs clang, lld-link, llvm-dlltool (CI installs them)"
    ),
]

SOURCE = r"""
#include "ntoskrnl_min.h"

__declspec(noinline) PVOID map_for_user(PMDL mdl)
{
    return MmMapLockedPagesSpecifyCache(mdl, UserMode, MmCached, NULL, FALSE, NormalPagePriority);
}

__declspec(noinline) PVOID map_for_kernel(PMDL mdl)
{
    return MmMapLockedPagesSpecifyCache(mdl, KernelMode, MmCached, NULL, FALSE, NormalPagePriority);
}

NTSTATUS DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
    (void)path;
    return map_for_user((PMDL)driver) && map_for_kernel((PMDL)driver) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;
}
"""


def _build(tmp: Path, opt: str) -> Path:
    source = tmp / "modes.c"
    source.write_text(SOURCE, encoding="utf-8")
    subprocess.run(
        [
            TOOLS["llvm-dlltool"],
            "-m",
            "i386:x86-64",
            "-d",
            str(DRIVERS / "def" / "ntoskrnl.def"),
            "-l",
            str(tmp / "nt.lib"),
        ],
        check=True,
    )
    subprocess.run(
        [
            TOOLS["clang"],
            "--target=x86_64-pc-windows-msvc",
            opt,
            "-ffreestanding",
            "-funwind-tables",
            "-fno-stack-protector",
            "-fno-builtin",
            "-fms-extensions",
            f"-I{DRIVERS / 'include'}",
            "-c",
            str(source),
            "-o",
            str(tmp / "modes.obj"),
        ],
        check=True,
    )
    image = tmp / f"modes{opt}.sys"
    subprocess.run(
        [
            TOOLS["lld-link"],
            "/nologo",
            "/driver",
            "/subsystem:native",
            "/entry:DriverEntry",
            "/nodefaultlib",
            "/machine:x64",
            f"/out:{image}",
            str(tmp / "modes.obj"),
            str(tmp / "nt.lib"),
        ],
        check=True,
    )
    return image


def test_the_knowledge_base_states_the_condition() -> None:
    api = kb.load().affected_api("MmMapLockedPagesSpecifyCache")
    assert api is not None and api.safe_when is not None
    assert (api.safe_when.argument_index, api.safe_when.value) == (1, 1)


@pytest.mark.parametrize("opt", ["-O2", "-O0"])
def test_user_mode_mapping_is_safe_kernel_mode_is_not(tmp_path: Path, opt: str) -> None:
    image = PeImage.open(_build(tmp_path, opt))
    sites = [s for s in analyse_calls(image).sites if s.api == "MmMapLockedPagesSpecifyCache"]
    verdicts = sorted((s.verdict, s.reason) for s in sites)
    assert [v for v, _ in verdicts] == sorted([SAFE, EXECUTABLE]), verdicts
    safe = next(reason for verdict, reason in verdicts if verdict == SAFE)
    assert "UserMode" in safe and "argument 2" in safe
