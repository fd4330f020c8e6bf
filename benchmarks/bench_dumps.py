"""How fast are crash dumps and binary event logs read, and how does our page-table walker compare with
kdmp-parser on the same dumps?

- ``hvci-triage analyze --format jsonl`` over a folder of N generated triage dumps (the whole command in a
  child process): triage dumps per second, and the same folder read by the reader alone in this process;
- the ``.evtx`` reader (child process included) over ``../shared/realworld/evtx/system.evtx`` repeated:
  records per second, against the ``evtx`` library iterating the same file in process (the floor);
- a kernel dump with ``--pages`` physical pages: our walk of ``PsLoadedModuleList`` (open, page map,
  translation, names) against kdmp-parser opening the same file and translating the same entries, each in
  a child process with its peak RSS (kdmp-parser builds a map of every page first).

Run: ``.venv/bin/python benchmarks/bench_dumps.py --dumps 1000 --pages 65536``
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from parsers.dump.reader import read_dump  # noqa: E402
from parsers.source import Source  # noqa: E402
from tests.builders.dumps import PAGE, Crash, Driver, memory_dump, triage_dump  # noqa: E402

EVTX = ROOT.parent / "shared" / "realworld" / "evtx" / "system.evtx"


def _crash(n: int) -> Crash:
    drivers = tuple(Driver(f"drv{k:03}.sys", 0xFFFFF804_20000000 + k * 0x100000, 0x80000) for k in range(180))
    caller = drivers[n % len(drivers)].base + 0x1234 + n
    stack = tuple(drivers[(n + k) % len(drivers)].base + 0x500 + k for k in range(48))
    return Crash(0xC4, (0x2000 + n % 3, caller, 0x40, 0), drivers, stack=stack, rip=caller)


def bench_triage(count: int, folder: Path) -> None:
    for n in range(count):
        (folder / f"Mini{n:05}.dmp").write_bytes(triage_dump(_crash(n)))
    size = sum(p.stat().st_size for p in folder.iterdir())
    start = time.perf_counter()
    for path in sorted(folder.iterdir()):
        read_dump(Source(str(path), path=path))
    alone = time.perf_counter() - start
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "analyze",
            "-q",
            "--format",
            "jsonl",
            "--fail-on",
            "never",
            str(folder),
        ],
        capture_output=True,
        cwd=ROOT,
        check=False,
    )
    whole = time.perf_counter() - start
    incidents = sum(1 for line in done.stdout.splitlines() if b'"incident"' in line[:40])
    print(
        f"triage dumps: {count} ({size / count / 1024:.0f} KiB each):"
        f" reader alone {count / alone:7.0f} dumps/s; analyze (whole command) {count / whole:6.0f} dumps/s,"
        f" {incidents} incidents, exit {done.returncode}"
    )


def bench_evtx(repeat: int) -> None:
    if not EVTX.exists():
        print(f"evtx: skipped, {EVTX} is absent")
        return
    import evtx

    from parsers.stream import iter_records, open_input

    start = time.perf_counter()
    for _ in range(repeat):
        records = sum(1 for _ in evtx.PyEvtxParser(str(EVTX), number_of_threads=1).records())
    floor = time.perf_counter() - start
    start = time.perf_counter()
    lines = 0
    for _ in range(repeat):
        inp = open_input(EVTX)
        for _ in iter_records(inp):
            pass
        lines = inp.info().lines
    ours = time.perf_counter() - start
    print(
        f"evtx: {records} records x {repeat}: our reader (child process + events parser) "
        f"{records * repeat / ours:8.0f} records/s; the evtx library alone {records * repeat / floor:8.0f} "
        f"records/s; {lines} records read per pass"
    )


_OURS = """
import sys, time
sys.path.insert(0, sys.argv[2])
from parsers.dump.fileview import DumpFile
from parsers.dump.header import read_header
from parsers.dump.memory import VirtualMemory, physical_map
from parsers.dump.modules import walk_loaded_modules
from parsers.source import Source
from pathlib import Path
start = time.perf_counter()
with DumpFile.open(Source("d", path=Path(sys.argv[1]))) as dump:
    header = read_header(dump, 64)
    pages, _ = physical_map(dump, header)
    memory = VirtualMemory(dump, pages, header.values["DirectoryTableBase"], 64, False)
    modules, _ = walk_loaded_modules(memory, header.values["PsLoadedModuleList"])
    found = [memory.translate(m.entry) for m in modules]
elapsed = time.perf_counter() - start
peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(elapsed, peak, len(modules), found.count(None))
"""

_KDMP = """
import sys, time
import kdmp_parser
start = time.perf_counter()
dump = kdmp_parser.KernelDumpParser(sys.argv[1])
entries = [int(a, 16) for a in sys.argv[3:]]
found = [dump.translate_virtual(va, dump.directory_table_base) for va in entries]
elapsed = time.perf_counter() - start
peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM"))
print("\\nANSWER", elapsed, peak, len(found), found.count(None))
"""


def bench_walker(pages: int, folder: Path) -> None:
    crash = _crash(0)
    path = folder / "MEMORY.DMP"
    head = 0xFFFFF804_1C3A2E50
    data = bytearray(memory_dump(crash, 1, head=head))
    written = len(data)
    extra = max(pages - (written - 0x2000) // PAGE, 0)  # pages the walk never touches: most of a real dump
    count = struct.unpack_from("<I", data, 0x88)[0]
    last = 0x98 + (count - 1) * 16
    base, run = struct.unpack_from("<QQ", data, last)
    struct.pack_into("<QQ", data, last, base, run + extra)  # the extra pages extend the last run
    with path.open("wb") as handle:
        handle.write(data)
        handle.truncate(written + extra * PAGE)  # a sparse file: zero pages cost no disk
    ours = subprocess.run(
        [sys.executable, "-c", _OURS, str(path), str(ROOT)], capture_output=True, text=True, check=True
    )
    elapsed, rss, modules, missing = ours.stdout.split()
    entries = [hex(head + 0x40 + n * 0xA0) for n in range(len(crash.drivers))]
    size = path.stat().st_size
    print(f"kernel dump of {size / 1e6:.0f} MB ({pages} pages), {modules} modules in PsLoadedModuleList:")
    print(
        f"  our walker:  {float(elapsed) * 1000:8.1f} ms, peak RSS {int(rss) / 1024:6.0f} MB,"
        f" {missing} unreadable"
    )
    try:
        theirs = subprocess.run(
            [sys.executable, "-c", _KDMP, str(path), str(ROOT), *entries],
            capture_output=True,
            text=True,
            check=True,
        )
        t_elapsed, t_rss, _, t_missing = theirs.stdout.rsplit("\nANSWER", 1)[1].split()
        print(
            f"  kdmp-parser: {float(t_elapsed) * 1000:8.1f} ms, peak RSS {int(t_rss) / 1024:6.0f} MB,"
            f" {t_missing} unreadable"
        )
    except (subprocess.CalledProcessError, IndexError) as error:
        print(f"  kdmp-parser: not measured ({error})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dumps", type=int, default=1000, help="triage dumps in the folder")
    parser.add_argument("--repeat", type=int, default=5, help="passes over the .evtx")
    parser.add_argument("--pages", type=int, default=65536, help="physical pages in the kernel dump")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hvci-bench-dumps-") as temporary:
        folder = Path(temporary) / "Minidump"
        folder.mkdir()
        bench_triage(args.dumps, folder)
        bench_evtx(args.repeat)
        bench_walker(args.pages, Path(temporary))
    print(json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
