"""Benchmark: PDB load time and lookups per second, our resolver vs llvm-symbolizer on the same addresses.

Run on demand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_symbolize.py [--count 100000] [IMAGE ...]

For each image (default: the real MSVC DLL ``attach_amd64.dll`` and the sample ``api_misuse.sys``) it
draws ``--count`` random RVAs inside the executable sections (fixed seed), then measures

* our side: :func:`symbols.pdb.load_pdb` from cold (symcache build + procedure/public tables), then
  :meth:`symbols.resolve.ImageSymbols.resolve_rva` for every address (the full path a report takes:
  PDB lookup, fallbacks, the ``Resolution`` object);
* llvm-symbolizer: ONE process, all addresses on stdin (``--relative-address --output-style=JSON``), which
  is its fastest mode; its load time is included, as it cannot be separated from outside.

and prints both throughputs and the ratio. The goal is at least 5x llvm-symbolizer's throughput.

Then the whole command a user runs, ``hvci-triage symbolize IMAGE`` with ``--whole`` distinct addresses
(default 5,000) on stdin, against ``llvm-symbolizer --obj=IMAGE --relative-address`` fed the same
addresses: interpreter start-up, imports, PDB load and output included, CPU (user + system) and wall time,
the median of ``--runs`` runs each. The goal is to be faster.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from symbols import pdb as pdb_module  # noqa: E402
from symbols.pe import PeImage  # noqa: E402
from symbols.resolve import ImageSymbols  # noqa: E402

DEFAULT_IMAGES = (
    ROOT / ".." / "shared" / "realworld" / "msvc-pdb" / "attach_amd64.dll",
    ROOT / "samples" / "drivers" / "build" / "api_misuse.sys",
)


def _addresses(image: Path, count: int) -> list[int]:
    pe = PeImage.open(image)
    ranges = [(s.virtual_address, s.virtual_address + s.mapped_size) for s in pe.sections if s.executable]
    rng = random.Random(0x5EED)
    out = []
    for _ in range(count):
        begin, end = rng.choice(ranges)
        out.append(rng.randrange(begin, end))
    return out


def _ours(image: Path, addresses: list[int]) -> tuple[float, float, int]:
    pdb_module._loaded.clear()  # cold: measure the load, not the cache
    start = time.perf_counter()
    symbols = ImageSymbols.from_path(image)
    loaded = time.perf_counter()
    named = 0
    for rva in addresses:
        named += symbols.resolve_rva(rva).function is not None
    done = time.perf_counter()
    if symbols.pdb is None:
        raise SystemExit(f"{image}: no PDB next to it; the benchmark needs one")
    return loaded - start, done - loaded, named


def _llvm(image: Path, addresses: list[int]) -> tuple[float, int]:
    tool = shutil.which("llvm-symbolizer")
    if tool is None:
        raise SystemExit("llvm-symbolizer not found (apt-get install llvm)")
    start = time.perf_counter()
    run = subprocess.run(
        [tool, f"--obj={image}", "--relative-address", "--output-style=JSON"],
        input="\n".join(f"{a:#x}" for a in addresses),
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed = time.perf_counter() - start
    named = sum('"FunctionName":""' not in line for line in run.stdout.splitlines())
    return elapsed, named


def _command_time(argv: list[str], stdin: bytes, runs: int) -> tuple[float, float]:
    """Median (CPU, wall) seconds of a whole command, its output discarded."""
    cpu, wall = [], []
    for _ in range(runs):
        with tempfile.TemporaryFile() as feed:
            feed.write(stdin)
            feed.seek(0)
            start = time.perf_counter()
            child = subprocess.Popen(argv, stdin=feed, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _, _, usage = os.wait4(child.pid, 0)
            wall.append(time.perf_counter() - start)
            cpu.append(usage.ru_utime + usage.ru_stime)
    return statistics.median(cpu), statistics.median(wall)


def _whole_commands(image: Path, count: int, runs: int) -> None:
    distinct = sorted(set(_addresses(image, count * 4)))[:count]
    stdin = "".join(f"{a:#x}\n" for a in distinct).encode()
    ours = _command_time([sys.executable, "-m", "cli", "symbolize", str(image)], stdin, runs)
    llvm = _command_time(
        [shutil.which("llvm-symbolizer") or "llvm-symbolizer", f"--obj={image}", "--relative-address"],
        stdin,
        runs,
    )
    print(f"  [whole command, {len(distinct)} distinct addresses, median of {runs}]")
    for name, (cpu, wall) in (("hvci-triage symbolize", ours), ("llvm-symbolizer", llvm)):
        print(f"    {name:<22} cpu {cpu:.3f} s  wall {wall:.3f} s")
    faster = f"cpu {llvm[0] / ours[0]:.2f}x  wall {llvm[1] / ours[1]:.2f}x"
    print(f"    ratio llvm-symbolizer / ours: {faster} (above 1: we are faster)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="*", type=Path, default=list(DEFAULT_IMAGES))
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument(
        "--whole", type=int, default=5_000, help="distinct addresses for the whole-command run"
    )
    parser.add_argument("--runs", type=int, default=5, help="runs of each whole command")
    args = parser.parse_args()
    for image in args.images:
        if not image.exists():
            print(f"{image}: missing, skipped")
            continue
        addresses = _addresses(image, args.count)
        distinct = sorted(set(addresses))
        print(f"{image.name}: {len(addresses)} addresses in executable sections, {len(distinct)} distinct")
        # random addresses repeat (as return addresses in a batch of crash logs do) and repeats are
        # remembered; the distinct-only run shows the cost of answers that are all new
        for label, batch in (("all", addresses), ("distinct only", distinct)):
            load, lookups, named = _ours(image, batch)
            llvm_time, llvm_named = _llvm(image, batch)
            ours_rate = len(batch) / (load + lookups)
            llvm_rate = len(batch) / llvm_time
            print(
                f"  [{label}] ours: load {load * 1000:.1f} ms, lookups {lookups:.3f} s "
                f"({len(batch) / lookups:,.0f}/s), {named} named"
            )
            print(
                f"  [{label}] llvm-symbolizer (one process, stdin): {llvm_time:.3f} s ({llvm_rate:,.0f}/s), "
                f"{llvm_named} named"
            )
            print(f"  [{label}] ratio (ours incl. load / llvm-symbolizer): {ours_rate / llvm_rate:.1f}x")
        _whole_commands(image, args.whole, args.runs)


if __name__ == "__main__":
    main()
