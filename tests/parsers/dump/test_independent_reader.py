"""kdmp-parser (a C++ reader with Python bindings, written independently from the same public layouts)
reads the dumps our builder writes as our reader does: the header fields, and every loader entry of
``PsLoadedModuleList`` at the same physical address through the same page tables.

kdmp-parser prints diagnostics from C to stdout and is native code, so it runs in a child process here
too; it has no triage-dump (type 4) or summary (type 2) support, and no 32-bit support."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from parsers.dump.fileview import DumpFile
from parsers.dump.header import read_header
from parsers.dump.memory import VirtualMemory, physical_map
from parsers.dump.modules import walk_loaded_modules
from parsers.source import Source
from tests.builders.dumps import Crash, Driver, memory_dump
from tests.conftest import HANG_SECONDS

pytest.importorskip("kdmp_parser", reason="kdmp-parser (test dependency) is not installed")

CRASH = Crash(
    0xC4,
    (0x2003, 0xFFFFB30F_12345678, 0xFFFFF804_31AF0208, 0xFFFFD000_12340F00),
    (
        Driver("ntoskrnl.exe", 0xFFFFF804_12000000, 0x1046000),
        Driver("hal.dll", 0xFFFFF804_11F00000, 0x6000),
        Driver("SensorHub.sys", 0xFFFFF804_31AF0000, 0x31000),
    ),
)

_CHILD = """
import json, sys, kdmp_parser
dump = kdmp_parser.KernelDumpParser(sys.argv[1])
header = dump.header
entries = [int(a, 16) for a in sys.argv[2:]]
answer = {
    "type": int(dump.type),
    "code": header.BugCheckCode,
    "args": list(header.BugCheckCodeParameter),
    "module_list": header.PsLoadedModuleList,
    "dtb": dump.directory_table_base,
    "physical": [dump.translate_virtual(va, dump.directory_table_base) for va in entries],
}
sys.stdout.write("\\nANSWER " + json.dumps(answer))
"""


def _kdmp(path: Path, addresses: list[int]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), *(hex(a) for a in addresses)],
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
        check=True,
    )
    return json.loads(done.stdout.rsplit("\nANSWER ", 1)[1])  # type: ignore[no-any-return]


@pytest.mark.parametrize("dump_type", [1, 5, 6, 8, 9, 10])
def test_kdmp_parser_reads_our_dumps_as_we_do(tmp_path: Path, dump_type: int) -> None:
    path = tmp_path / "memory.dmp"
    path.write_bytes(memory_dump(CRASH, dump_type))
    with DumpFile.open(Source(str(path), path=path)) as dump:
        header = read_header(dump, 64)
        pages, problem = physical_map(dump, header)
        assert pages is not None and problem is None
        memory = VirtualMemory(dump, pages, header.values["DirectoryTableBase"], 64, False)
        modules, stopped = walk_loaded_modules(memory, header.values["PsLoadedModuleList"])
        assert stopped is None
        ours = [memory.translate(m.entry) for m in modules]
    theirs = _kdmp(path, [m.entry for m in modules])
    assert theirs["type"] == dump_type == header.dump_type
    assert theirs["code"] == header.values["BugCheckCode"] and tuple(theirs["args"]) == header.bugcheck_args  # type: ignore[arg-type]
    assert theirs["module_list"] == header.values["PsLoadedModuleList"]
    assert theirs["physical"] == ours and None not in ours
    assert [m.name for m in modules] == [d.name for d in CRASH.drivers]
