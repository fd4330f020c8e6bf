"""Throughput of ``hvci-triage scan`` (on demand; not part of the test suite).

Over the sample fixtures, the real drivers of ``../shared/realworld/drivers`` and, when set, the extra ones
of ``HVCI_REALWORLD_EXTRA`` (a folder of third-party ``.sys`` files):

* the WHOLE COMMAND a user runs, ``hvci-triage scan FOLDERS...`` in a child process (start-up, reading,
  PDBs, rules, call sites, the report), ``--runs`` times, in images/s, with the default ``--jobs`` (one
  worker per 8 images, at most one per core) and with ``-j1`` (in one process): CPU counts every process of
  the command, so the workers' wall-clock gain is not mistaken for less work; and the reference in the same
  run, a Python process that imports pefile and runs ``pefile.PE`` on every file, with the ratio; and its
  floor, the command on one image that needs no decoding (what start-up costs before any image work), and
  the rate beyond it (the whole command less the floor, per further image: what a folder of drivers scanned
  in one command pays per image);

then in this process, each measurement repeated until it has lasted ``--seconds`` (after one round that
loads the PDBs, which later rounds find loaded, as a long-lived process such as the TUI does; the rounds
also find the texts of instructions decoded before already parsed, so this rate is above what one command
over each image once achieves: compare the whole command beyond its floor):

* the whole scan of an image (:func:`hvci.images.scan.scan_image`: PE reading, header rules, PDB lookup and
  call-site analysis), in images/s and MB/s of code (the executable sections' bytes);
* the reference in the same run: ``pefile.PE(data=...)`` alone (a full parse of every directory), which is
  what any PE tool pays before it looks at anything; and the ratio of our time to it;
* the call-site analysis alone on images parsed once, and its detailed pass (instructions interpreted).

Times are CPU seconds (this process plus the children it waited for: the PDB reader runs isolated in a forked
child), so other jobs on a shared machine skew them less; wall seconds are shown beside them.

Run: ``.venv/bin/python benchmarks/bench_scan.py [--seconds 3] [--runs 3]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pefile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hvci.batch.images import workers_for  # noqa: E402
from hvci.images.callsites import analyse_calls  # noqa: E402
from hvci.images.scan import scan_image  # noqa: E402
from hvci.knowledge.kb import load  # noqa: E402
from symbols.pe import PeImage  # noqa: E402

#: The floor of the whole command: one image that imports none of the affected APIs (no code is decoded).
FLOOR_IMAGE = ROOT / "samples" / "drivers" / "build" / "wx_section.sys"

#: The reference command: what any PE tool in Python pays, start-up included, before it looks at anything.
PEFILE_ALONE = "import sys, pefile\nfor path in sys.argv[1:]:\n    pefile.PE(path)"


def _folders() -> list[Path]:
    folders = [ROOT / "samples" / "drivers" / "build", ROOT / ".." / "shared" / "realworld" / "drivers"]
    extra = os.environ.get("HVCI_REALWORLD_EXTRA")
    return [f for f in (*folders, *([Path(extra)] if extra else [])) if f.is_dir()]


def _paths() -> list[Path]:
    """The ``.sys`` files below the folders, as ``scan FOLDER`` finds them."""
    return [
        p
        for folder in _folders()
        for p in sorted(folder.rglob("*"))
        if p.suffix.lower() == ".sys" and p.is_file()
    ]


def _images() -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in _paths()]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_whole(argv: list[str], runs: int, env: dict[str, str]) -> tuple[float, float]:
    """CPU and wall seconds of ``runs`` runs of a command (its whole process tree), output discarded,
    after one run that is not timed (it writes the bytecode cache)."""
    cpu = wall = 0.0
    for run in range(runs + 1):
        started, clock = _children_cpu(), time.perf_counter()
        done = subprocess.run(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, env=env, check=False
        )
        if done.returncode not in (0, 1, 3):  # 1: findings, 3: something undecided; 2 is a failure
            sys.exit(f"{argv[0]} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
        if run:
            cpu, wall = cpu + _children_cpu() - started, wall + time.perf_counter() - clock
    return cpu, wall


def bench_whole_command(count: int, runs: int) -> None:
    """``hvci-triage scan FOLDERS`` as a user runs it, against ``pefile.PE`` over the same files. Both run
    from compiled bytecode, as an installed package does (kept in a temporary folder, even where
    ``PYTHONDONTWRITEBYTECODE`` is set: compiling our modules at every start would double the figure)."""
    script = Path(sys.executable).with_name("hvci-triage")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "cli"]
    with tempfile.TemporaryDirectory(prefix="bench-scan-pyc-") as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        ours = _run_whole([*command, "scan", *map(str, _folders())], runs, env)
        serial = _run_whole([*command, "scan", "-j1", *map(str, _folders())], runs, env)
        ref = _run_whole([sys.executable, "-c", PEFILE_ALONE, *map(str, _paths())], runs, env)
        floor = _run_whole([*command, "scan", str(FLOOR_IMAGE)], runs, env)
    for label, (cpu, wall) in (
        (f"scan (-j{workers_for(count)})", ours),
        ("scan -j1", serial),
        ("python + pefile.PE", ref),
    ):
        print(
            f"whole command, {label:18} {runs * count / cpu:7.1f} images/s CPU, {runs * count / wall:7.1f} "
            f"wall  (CPU {cpu / runs:.2f} s, wall {wall / runs:.2f} s per run of {count} images)"
        )
    print(
        f"whole command ratio: scan takes {ours[0] / ref[0]:.2f}x the CPU of pefile alone "
        f"({ours[1] / ref[1]:.2f}x wall); -j1 {serial[0] / ref[0]:.2f}x ({serial[1] / ref[1]:.2f}x wall)"
    )
    print(
        f"whole command floor: scan of {FLOOR_IMAGE.name} (no affected import, nothing decoded) "
        f"CPU {floor[0] / runs:.2f} s, wall {floor[1] / runs:.2f} s per run: start-up, the knowledge base, "
        "the image and its PDB, the report: all but the disassembler"
    )
    for label, whole in ((f"-j{workers_for(count)}", ours), ("-j1", serial)):
        beyond = [max(cpu_or_wall - least, 1e-9) for cpu_or_wall, least in zip(whole, floor, strict=True)]
        print(
            f"whole command beyond the floor, {label}: {runs * (count - 1) / beyond[0]:.1f} images/s CPU, "
            f"{runs * (count - 1) / beyond[1]:.1f} wall: what each further image of a folder costs in one "
            "command (the disassembler's import, each PDB read once, instruction texts parsed for the first "
            "time; with workers, their start and the reports' way back)"
        )


def _code_bytes(data: bytes, name: str) -> int:
    pe = PeImage.open(data, name=name)
    return sum(min(s.raw_size, s.mapped_size) for s in pe.sections if s.executable)


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _measure(
    images: list[tuple[Path, bytes]], seconds: float, one: Callable[[Path, bytes], object]
) -> tuple[int, float, float]:
    """Images done, CPU seconds and wall seconds of whole rounds over ``images``, at least ``seconds`` CPU."""
    done, cpu, wall = 0, _cpu(), time.perf_counter()
    while _cpu() - cpu < seconds:
        for path, data in images:
            one(path, data)
            done += 1
    return done, _cpu() - cpu, time.perf_counter() - wall


def bench_calls(images: list[tuple[Path, bytes]], seconds: float) -> tuple[int, int, float]:
    parsed = [PeImage.open(data, name=path.name) for path, data in images]
    done = instructions = 0
    started = _cpu()
    while _cpu() - started < seconds:
        for pe in parsed:
            instructions += analyse_calls(pe).instructions
            done += 1
    return done, instructions, _cpu() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum CPU duration of each measurement")
    parser.add_argument("--runs", type=int, default=3, help="runs of each whole command")
    args = parser.parse_args()
    images = _images()
    code = sum(_code_bytes(data, path.name) for path, data in images)
    print(
        f"{len(images)} images, {sum(len(d) for _, d in images) / 1024:.0f} KiB, "
        f"{code / 1024:.0f} KiB of code"
    )
    bench_whole_command(len(images), args.runs)
    load()  # the knowledge base is read once per process; keep it out of the in-process timings
    for path, data in images:  # PDBs load once per process (later rounds find them loaded)
        scan_image(path, data=data)
    ours = _measure(images, args.seconds, lambda path, data: scan_image(path, data=data))
    ref = _measure(images, args.seconds, lambda _path, data: pefile.PE(data=data))
    for label, (done, cpu, wall) in (("scan (whole)", ours), ("pefile.PE alone", ref)):
        rounds = done / len(images)
        print(
            f"in process, {label:17} {done / cpu:8.1f} images/s  "
            f"{rounds * code / cpu / 1e6:6.2f} MB of code/s  "
            f"(CPU {cpu:.2f} s, wall {wall:.2f} s, {done} images)"
        )
    ratio_cpu = (ours[1] / ours[0]) / (ref[1] / ref[0])
    ratio_wall = (ours[2] / ours[0]) / (ref[2] / ref[0])
    print(
        f"in-process ratio: scan takes {ratio_cpu:.2f}x the CPU time of pefile.PE alone per image "
        f"({ratio_wall:.2f}x wall)"
    )
    done, instructions, cpu = bench_calls(images, args.seconds)
    print(
        f"call-site analysis alone: {done / cpu:8.1f} images/s, {instructions / cpu:8.0f} instructions/s "
        "interpreted in the detailed pass"
    )


if __name__ == "__main__":
    main()
