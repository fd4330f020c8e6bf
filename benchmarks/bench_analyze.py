"""How fast is ``hvci-triage analyze`` compared with grep, and does memory stay flat as the log grows?

Generates large, noisy kernel-debugger logs (module loads, DbgPrint spam, register dumps, disassembly,
prompts, symbol-loading chatter) with ``!analyze -v`` reports, verifier banners, fatal-error lines and
stacks sprinkled in, then times WHOLE COMMANDS in child processes, in the same run:

- ``hvci-triage analyze --format jsonl FILE -o OUT`` (start-up, reading, classification, the report);
- the reference: ``grep -c -E 'Fatal System Error|BugCheck|BUGCHECK|Verifier Detected|Arg1:' FILE``;
- the ratio grep / ours for CPU and wall time (issue 16's goal: >= 0.33);
- peak RSS (``/usr/bin/time -f %M``, the largest process of the command's tree) at a quarter, half and
  all of ``--size-mb`` (goal: growth <= 1.1x from the smallest to the largest, under 80 MiB);
- N and 2N concatenated KD sessions, each with its own ``lm``: the CPU ratio (linear: about 2).

Run: ``.venv/bin/python benchmarks/bench_analyze.py --size-mb 400`` (``--size-mb 200`` for the ratio of
the issue; the RSS series then runs at 50/100/200 MB).
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

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


GREP_PATTERN = "Fatal System Error|BugCheck|BUGCHECK|Verifier Detected|Arg1:"
SESSION_SAMPLE = "session-pool-type-haxm.log"


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    rss_mib: float


def _measure(argv: list[str], stdout: Path) -> Run:
    """One command: wall and CPU seconds (its whole process tree) and peak RSS."""
    time_bin = shutil.which("time") or "/usr/bin/time"
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss, stdout.open("wb") as out:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([time_bin, "-f", "%M", "-o", rss.name, *argv], stdout=out, check=False, cwd=ROOT)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        kib = float(rss.read().strip().splitlines()[-1])
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Run(wall, cpu, kib / 1024)


def _best(argv: list[str], stdout: Path, repeat: int) -> Run:
    """The best of ``repeat`` runs (other work on a shared machine only ever makes a run slower)."""
    runs = [_measure(argv, stdout) for _ in range(repeat)]
    return Run(min(r.wall for r in runs), min(r.cpu for r in runs), min(r.rss_mib for r in runs))


def _ours(path: Path, out: Path) -> list[str]:
    command = str(Path(sys.executable).parent / "hvci-triage")
    return [command, "analyze", "--format", "jsonl", str(path), "-o", str(out)]


def _scan_engine() -> str:
    """Which engine scans large chunks in the command's environment (this interpreter's: parsers.fastscan);
    the figures of the two differ by 0.25 s of CPU per 100 MB."""
    import importlib.util

    return "Hyperscan" if importlib.util.find_spec("hyperscan") else "re (no Hyperscan)"


def _sessions(path: Path, copies: int) -> Path:
    session = (ROOT / "samples" / "logs" / SESSION_SAMPLE).read_text("utf-8")
    path.write_text(session * copies, encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=600, help="N for the N vs 2N sessions check")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement; the best one counts")
    parser.add_argument("--keep", action="store_true", help="keep the generated logs")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="hvci-bench-"))
    try:
        sizes = (max(args.size_mb // 4, 1), max(args.size_mb // 2, 1), args.size_mb)
        files = {size: workdir / f"kd-{size}mb.log" for size in sizes}
        for size, path in files.items():
            generate(path, size)
        big = files[args.size_mb]
        mb = big.stat().st_size / 1e6
        out = workdir / "out"
        _measure(_ours(files[sizes[0]], out), out)  # warm the page cache and the imports
        grep = _best(["grep", "-c", "-E", GREP_PATTERN, str(big)], out, args.repeat + 1)
        ours = _best(_ours(big, out), out, args.repeat)
        print(f"input: {mb:.0f} MB; best of {args.repeat} runs; whole commands; chunk scan: {_scan_engine()}")
        print(f"grep -c -E '{GREP_PATTERN}': CPU {grep.cpu:.2f} s, wall {grep.wall:.2f} s")
        print(
            f"hvci-triage analyze --format jsonl: CPU {ours.cpu:.2f} s ({mb / ours.cpu:.0f} MB/s), "
            f"wall {ours.wall:.2f} s, peak RSS {ours.rss_mib:.0f} MiB"
        )
        print(
            f"ratio grep/ours: CPU {grep.cpu / ours.cpu:.2f}, wall {grep.wall / ours.wall:.2f} (goal >= 0.33)"
        )
        rss = {size: _measure(_ours(files[size], out), out).rss_mib for size in sizes}
        series = ", ".join(f"{rss[size]:.0f} MiB at {size} MB" for size in sizes)
        growth = rss[sizes[-1]] / rss[sizes[0]]
        print(f"peak RSS: {series}; growth {growth:.2f}x (goal <= 1.1x and < 80 MiB)")
        small = _best(_ours(_sessions(workdir / "s1.log", args.sessions), out), out, args.repeat)
        large = _best(_ours(_sessions(workdir / "s2.log", 2 * args.sessions), out), out, args.repeat)
        print(
            f"{args.sessions} vs {2 * args.sessions} KD sessions, each with its own lm: "
            f"CPU {small.cpu:.2f} s vs {large.cpu:.2f} s, ratio {large.cpu / small.cpu:.2f} (linear: about 2)"
        )
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
