"""Volatility 3's crash-dump layers (another independent reader, pure Python) read the full and bitmap
dumps our builder writes as our reader does, 32-bit included (which kdmp-parser does not read): the bug
check, and every loader entry of ``PsLoadedModuleList`` at the same physical address through the same page
tables (x64, x86 PAE, x86 without PAE)."""

from __future__ import annotations

from pathlib import Path

import pytest

from parsers.dump.fileview import DumpFile
from parsers.dump.header import read_header
from parsers.dump.memory import VirtualMemory, physical_map
from parsers.dump.modules import walk_loaded_modules
from parsers.source import Source
from tests.builders.dumps import memory_dump
from tests.parsers.dump.test_dump_kinds import CRASH32, CRASH64

pytest.importorskip("volatility3", reason="volatility3 (test dependency) is not installed")

from volatility3.framework import contexts  # noqa: E402
from volatility3.framework.layers import crash, intel, physical  # noqa: E402

CASES = {
    "x64-full": (CRASH64, 1, 64, True),
    "x64-bitmap": (CRASH64, 5, 64, True),
    "x86-pae-full": (CRASH32, 1, 32, True),
    "x86-pae-bitmap": (CRASH32, 5, 32, True),
    "x86-full": (CRASH32, 1, 32, False),
}


def _volatility(path: Path, bits: int, pae: bool) -> tuple[object, object]:
    context = contexts.Context()
    context.config["base.location"] = path.resolve().as_uri()
    context.add_layer(physical.FileLayer(context, "base", "base"))
    context.config["crash.base_layer"] = "base"
    layer_class = crash.WindowsCrashDump64Layer if bits == 64 else crash.WindowsCrashDump32Layer
    layer = layer_class(context, "crash", "crash")
    context.add_layer(layer)
    context.config["virtual.memory_layer"] = "crash"
    context.config["virtual.page_map_offset"] = layer.dtb
    paging = intel.WindowsIntel32e if bits == 64 else (intel.WindowsIntelPAE if pae else intel.WindowsIntel)
    virtual = paging(context, "virtual", "virtual")
    context.add_layer(virtual)
    return layer, virtual


@pytest.mark.parametrize("case", sorted(CASES))
def test_volatility_reads_our_dumps_as_we_do(tmp_path: Path, case: str) -> None:
    crash_case, dump_type, bits, pae = CASES[case]
    path = tmp_path / "MEMORY.DMP"
    path.write_bytes(memory_dump(crash_case, dump_type, bits=bits, pae=pae))
    with DumpFile.open(Source(str(path), path=path)) as dump:
        header = read_header(dump, bits)
        pages, _ = physical_map(dump, header)
        assert pages is not None
        memory = VirtualMemory(
            dump, pages, header.values["DirectoryTableBase"], bits, bool(header.get("PaeEnabled"))
        )
        modules, stopped = walk_loaded_modules(memory, header.values["PsLoadedModuleList"])
        ours = [memory.translate(m.entry) for m in modules]
    assert stopped is None and [m.name for m in modules] == [d.name for d in crash_case.drivers]
    layer, virtual = _volatility(path, bits, pae)
    theirs_header = layer.get_header()  # type: ignore[attr-defined]
    assert theirs_header.BugCheckCode == crash_case.code and theirs_header.DumpType == dump_type
    assert [virtual.translate(m.entry)[0] for m in modules] == ours  # type: ignore[attr-defined]
    for module in modules:  # DllBase read through their translation is the one we read
        at = 0x30 if bits == 64 else 0x18
        assert int.from_bytes(virtual.read(module.entry + at, bits // 8), "little") == module.base  # type: ignore[attr-defined]
