"""How fast is ingestion compared with grep, and does memory stay flat as the log grows?

Generates a large, noisy kernel-debugger log (module loads, DbgPrint spam, register dumps, disassembly,
prompts, symbol-loading chatter) with ``!analyze -v`` reports, verifier banners, fatal-error lines and
stacks sprinkled in, then measures in child processes (so that each peak RSS is its own):

- ``iter_records`` (the dispatcher + all registered parsers) in MB/s and records/s;
- ``hvci.logs.pipeline`` end to end (records -> incidents) when that module exists;
- ``grep -c -F`` with the same anchors the prefilter searches for, over the same file, same run;
- peak RSS of ``iter_records`` at the requested size and at a quarter of it.

Run: ``.venv/bin/python benchmarks/bench_analyze.py --size-mb 300``
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from parsers.base import BlockParser

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

INCIDENT_SAMPLES = (
    "analyze-c4-2000-modern.txt",
    "analyze-c4-2003-wx-section.txt",
    "banner-only-log-mode.log",
    "analyze-non-hvci-0x50.txt",
    "stack-variants.txt",
)
MIB = 1 << 20


def _noise_lines(rng: random.Random, count: int) -> list[str]:
    """Lines like the bulk of a real KD session: none of them may start a block."""
    modules = [
        "ntkrnlmp.exe",
        "hal.dll",
        "CLFS.SYS",
        "tcpip.sys",
        "ndis.sys",
        "Wdf01000.sys",
        "storport.sys",
        "HvciDemo.sys",
        "AcmeFan.sys",
        "nvlddmkm.sys",
        "dxgkrnl.sys",
        "fltmgr.sys",
    ]
    out = []
    for i in range(count):
        kind = rng.randrange(12)
        base = 0xFFFFF80000000000 + rng.randrange(1 << 32) * 0x1000
        addr = f"{base >> 32:08x}`{base & 0xFFFFFFFF:08x}"
        if kind == 0:
            out.append(
                f"ModLoad: {addr} {addr[:-4]}f000   \\SystemRoot\\System32\\drivers\\{rng.choice(modules)}"
            )
        elif kind == 1:
            out.append(f"[AcmeFan] FanWorker: rpm={rng.randrange(9000)} duty={rng.randrange(100)}% tick {i}")
        elif kind == 2:
            out.append(
                f"[HvciDemo] IOCTL 0x{rng.randrange(1 << 20):06x} completed with status 0x00000000 ({i})"
            )
        elif kind == 3:
            out.append(
                f"rax={rng.randrange(1 << 64):016x} rbx={rng.randrange(1 << 64):016x} "
                f"rcx={rng.randrange(1 << 64):016x}"
            )
        elif kind == 4:
            out.append(f"{addr} 48894c2408      mov     qword ptr [rsp+8],rcx")
        elif kind == 5:
            out.append(f"Loading symbols for {addr}     {rng.choice(modules)} ->   {rng.choice(modules)}")
        elif kind == 6:
            out.append(f"*** WARNING: Unable to verify timestamp for {rng.choice(modules)}")
        elif kind == 7:
            out.append("KDTARGET: Refreshing KD connection")
        elif kind == 8:
            out.append(f"{rng.randrange(4)}: kd> g")
        elif kind == 9:
            out.append(f"Break instruction exception - code 80000003 (first chance) #{i}")
        elif kind == 10:
            out.append(f"nt!DbgBreakPointWithStatus+0x{rng.randrange(64):x}:")
        else:
            out.append(
                f"WER/CrashAPI:{rng.randrange(99999)}: Info: queued report, bucket "
                f"{rng.randrange(1 << 32):08x}"
            )
    return out


def generate(path: Path, size_mb: int, seed: int = 7) -> int:
    """Write a log of about ``size_mb`` MiB: ~1 MiB noise blocks with one incident sample between them."""
    rng = random.Random(seed)
    blocks = ["\n".join(_noise_lines(rng, 12_000)) + "\n" for _ in range(6)]
    incidents = [(ROOT / "samples" / "logs" / name).read_text("utf-8") for name in INCIDENT_SAMPLES]
    written = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        i = 0
        while written < size_mb * MIB:
            chunk = blocks[i % len(blocks)] + incidents[i % len(incidents)]
            out.write(chunk)
            written += len(chunk)
            i += 1
    return written


def _line_anchored_parsers() -> tuple[BlockParser, ...]:
    """The registered parsers whose every trigger alternative the prefilter finds from the line start."""
    from parsers.prefilter import anchors_for
    from parsers.registry import PARSERS

    return tuple(
        p
        for p in PARSERS
        if (anchors := anchors_for(p.trigger)) is not None and all(a.line_start for a in anchors)
    )


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child_iter(path: str, *, line_anchored_only: bool = False) -> dict[str, float]:
    from parsers.stream import iter_records, open_input

    inp = open_input(path)
    parsers = _line_anchored_parsers() if line_anchored_only else None
    wall, cpu = time.perf_counter(), _cpu()
    records = sum(1 for _ in iter_records(inp, parsers=parsers))
    return {
        "seconds": time.perf_counter() - wall,
        "cpu": _cpu() - cpu,
        "records": records,
        "lines": inp.info().lines,
    }


def _child_pipeline(path: str) -> dict[str, float]:
    from hvci.logs.pipeline import AnalyzeOptions, analyze_inputs
    from parsers.stream import open_input

    wall, cpu = time.perf_counter(), _cpu()
    report = analyze_inputs([open_input(path)], AnalyzeOptions())
    return {"seconds": time.perf_counter() - wall, "cpu": _cpu() - cpu, "incidents": len(report.incidents)}


def _run_child(mode: str, path: Path, repeat: int = 1) -> dict[str, float]:
    """The best of ``repeat`` runs (other work on a shared machine only ever makes a run slower)."""
    best: dict[str, float] = {}
    for _ in range(repeat):
        result = subprocess.run(
            [sys.executable, __file__, "--child", mode, "--file", str(path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        out = dict(json.loads(result.stdout.strip().splitlines()[-1]))
        if not best or out["cpu"] < best["cpu"]:
            best = out
    return best


def _grep_pattern() -> list[str]:
    from parsers.prefilter import anchors_for
    from parsers.registry import PARSERS

    texts: set[str] = set()
    for parser in PARSERS:
        for anchor in anchors_for(parser.trigger) or ():
            texts.add(anchor.text)
    return sorted(texts)


def _grep(path: Path, repeat: int) -> tuple[float, float, int]:
    """Wall and CPU seconds (best of ``repeat``) and the count of ``grep -c -F`` with every anchor."""
    grep = shutil.which("grep")
    if grep is None:
        raise SystemExit("grep not found")
    args = [grep, "-c", "-F"]
    for text in _grep_pattern():
        args += ["-e", text]
    best_wall = best_cpu = float("inf")
    count = 0
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        result = subprocess.run([*args, str(path)], capture_output=True, text=True)
        best_wall = min(best_wall, time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best_cpu = min(best_cpu, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        count = int(result.stdout.strip() or 0)
    return best_wall, best_cpu, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="keep the generated logs")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement; the best one counts")
    parser.add_argument("--child", choices=("iter", "anchored", "pipeline"), help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child == "pipeline":
            out = _child_pipeline(args.file)
        else:
            out = _child_iter(args.file, line_anchored_only=args.child == "anchored")
        out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(out))
        return

    workdir = Path(tempfile.mkdtemp(prefix="hvci-bench-"))
    try:
        sizes = (max(args.size_mb // 4, 1), args.size_mb)
        files = {}
        for size in sizes:
            files[size] = workdir / f"kd-{size}mb.log"
            generate(files[size], size)
        big = files[sizes[1]]
        mb = big.stat().st_size / 1e6
        _run_child("iter", files[sizes[0]])  # warm the page cache and the imports
        grep_wall, grep_cpu, grep_lines = _grep(big, args.repeat + 1)
        iter_big = _run_child("iter", big, args.repeat)
        iter_small = _run_child("iter", files[sizes[0]])
        anchored = _run_child("anchored", big, args.repeat)
        print(f"input: {mb:.0f} MB, {iter_big['lines']:.0f} lines; best of {args.repeat} runs; MB/s per CPU")
        print(
            f"grep -c -F ({len(_grep_pattern())} anchors): {mb / grep_cpu:.0f} MB/s "
            f"(wall {mb / grep_wall:.0f}), {grep_lines} matching lines"
        )
        print(
            f"iter_records: {mb / iter_big['cpu']:.0f} MB/s (wall {mb / iter_big['seconds']:.0f}), "
            f"{iter_big['records']:.0f} records ({iter_big['records'] / iter_big['cpu']:.0f} records/s); "
            f"ratio to grep {grep_cpu / iter_big['cpu']:.2f} (goal >= 0.33)"
        )
        names = ", ".join(p.name for p in _line_anchored_parsers())
        print(
            f"iter_records with only the parsers whose triggers are all line-anchored ({names}): "
            f"{mb / anchored['cpu']:.0f} MB/s, ratio to grep {grep_cpu / anchored['cpu']:.2f}"
        )
        print(
            f"peak RSS of iter_records: {iter_small['max_rss_mb']:.0f} MiB at {sizes[0]} MiB of log, "
            f"{iter_big['max_rss_mb']:.0f} MiB at {sizes[1]} MiB"
        )
        if (ROOT / "hvci" / "pipeline.py").exists():
            try:
                pipe = _run_child("pipeline", big)
            except subprocess.CalledProcessError as error:
                print(f"hvci.logs.pipeline: failed ({error.stderr.strip().splitlines()[-1:]})")
            else:
                print(
                    f"hvci.logs.pipeline end to end: {mb / pipe['cpu']:.0f} MB/s "
                    f"(wall {mb / pipe['seconds']:.0f}), "
                    f"{pipe['incidents']:.0f} incidents, peak RSS {pipe['max_rss_mb']:.0f} MiB"
                )
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
