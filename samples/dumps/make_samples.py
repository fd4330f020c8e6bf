"""Writes the sample crash dumps in this folder (small, generated: no real machine's memory is in them).

    python samples/dumps/make_samples.py

Each dump is built from the documented layouts by ``tests/builders/dumps.py``; ``tests/parsers/dump``
checks that the committed files are exactly what this script writes, and ``tests/hvci/golden/dumps`` holds
their reviewed reports.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from tests.builders.dumps import Crash, Driver, memory_dump, triage_dump, unicode_string  # noqa: E402

NT64 = Driver("ntoskrnl.exe", 0xFFFFF804_12000000, 0x1046000)
WDF64 = Driver("Wdf01000.sys", 0xFFFFF804_15E00000, 0xD6000)
SENSOR = Driver("SensorHub.sys", 0xFFFFF804_31AF0000, 0x31000)
NETBENCH = Driver("netbench.sys", 0xFFFFF80C_4A1D0000, 0x24000)
NT32 = Driver("ntkrnlpa.exe", 0x82800000, 0x410000)
CAM32 = Driver("camfilt.sys", 0x8A5A0000, 0x20000)


def samples() -> dict[str, bytes]:
    """File name -> contents of every sample dump."""
    return {
        # a small memory dump from C:\Windows\Minidump: executable page protection, driver list + stack
        "minidump-c4-2001-x64.dmp": triage_dump(
            Crash(
                0xC4,
                (0x2001, 0xFFFFF804_31B07A6C, 0x40, 0),
                (NT64, WDF64, SENSOR),
                unloaded=(Driver("oldflt.sys", 0xFFFFF804_33000000, 0x8000),),
                stack=(0, 0xFFFFF804_12345678, 0x1234, 0xFFFFF804_31B07A71, 0xFFFFF804_15E01234),
                rip=0xFFFFF804_123AAAAA,
            )
        ),
        # the same kind of dump from a 32-bit machine: executable pool type
        "minidump-c4-2000-x86.dmp": triage_dump(
            Crash(0xC4, (0x2000, 0x8A5B1234, 0, 0x6C6F6F50), (NT32, CAM32), stack=(0x8A5B1238,), rip=0x82801234),
            32,
        ),
        # not HVCI: a driver touched paged memory at DISPATCH_LEVEL
        "minidump-d1-x64.dmp": triage_dump(
            Crash(
                0xD1,
                (0xFFFF_C50A_1B2C3D40, 2, 0, 0xFFFFF80C_4A1E2F3B),
                (NT64, NETBENCH),
                stack=(0xFFFFF80C_4A1E2F40, 0xFFFFF804_12400010),
                rip=0xFFFFF80C_4A1E2F3B,
            )
        ),
        # MEMORY.DMP as a kernel bitmap dump: the drivers come from PsLoadedModuleList via the page tables
        "kernel-bitmap-c4-2002-x64.dmp": memory_dump(
            Crash(0xC4, (0x2002, 0xFFFFF80C_4A1E2F3B, 0x40000010, 0), (NT64, WDF64, NETBENCH)), 6
        ),
        # an image problem: Arg2 and Arg4 point at the image and section names, read from the dump's memory
        "kernel-bitmap-c4-2003-x64.dmp": memory_dump(
            Crash(
                0xC4,
                (0x2003, 0xFFFFB30F_12345678, 0xFFFFF804_40000208, 0xFFFFD000_12340F00),
                (NT64, Driver("wxdrv.sys", 0xFFFFF804_40000000, 0x9000)),
                memory=(
                    *unicode_string(0xFFFFB30F_12345678, r"\SystemRoot\System32\drivers\wxdrv.sys"),
                    (0xFFFFD000_12340F00, b".rwx\x00\x00\x00\x00\x00"),
                ),
            ),
            6,
        ),
        # a 32-bit full dump (PAE paging)
        "full-c4-2000-x86-pae.dmp": memory_dump(
            Crash(0xC4, (0x2000, 0x8A5B1234, 0, 0x6C6F6F50), (NT32, CAM32)), 1, bits=32
        ),
        # an "active" kernel dump (.dump /ka, RDMP ranges): execute of no-execute memory
        "kernel-active-fc-x64.dmp": memory_dump(
            Crash(0xFC, (0xFFFFF804_31B20000, 0x80000000_12345963, 0xFFFFF804_2B5C1E20, 2), (NT64, SENSOR)), 9
        ),
    }


def main() -> None:
    for name, data in samples().items():
        (HERE / name).write_bytes(data)


if __name__ == "__main__":
    main()
