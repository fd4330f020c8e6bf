"""Batch triage at lab scale: files/s and MB/s at --jobs 1 and --jobs 2, the scaling ratio, and the same
folder analysed by ``xargs -P2`` running one ``hvci-triage analyze`` per file (what a lab did by hand).

Generates a folder of ``--files`` logs of ``--size-mb`` MB each (sample sessions padded with debugger noise),
then times whole commands in the same run (start-up included, as a user sees it):

- ``hvci-triage analyze --jobs 1 FOLDER`` and ``--jobs 2``: files/s, MB/s, and jobs-2 speed-up over jobs 1
  (aim: at least 1.8x on 2 idle cores);
- ``find FOLDER -type f | xargs -P2 -n1 hvci-triage analyze``: one process per file, two at a time, and our
  ``--jobs 2`` speed-up over it.

With ``--check`` it also builds the mixed lab folder of the test suite at scale (``--files`` good logs plus
corrupt, empty, binary, UTF-16, NUL-holding, zipped, tarred, gzip-compressed, duplicated, dangling and FIFO
entries, and one ``--huge-mb`` log) and verifies every good input is read, every bad one named, and that
``--jobs 1`` and ``--jobs 2`` give byte-identical JSON.

Run: ``.venv/bin/python benchmarks/bench_batch.py`` (the issue's figures: 1,000 files of 1 MB; a busy machine
makes the ratios meaningless: run it on idle cores). Quick look: ``--files 100``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hvci.batch_corpus import build  # noqa: E402 - after the path set-up above

TOOL = [sys.executable, "-m", "cli"]


#: CPU seconds (user + system) of the last command timed, its worker processes included.
LAST_CPU = [0.0]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, check=False)
    LAST_CPU[0] = _children_cpu() - cpu
    return time.perf_counter() - started, done


def analyze(folder: Path, jobs: int) -> tuple[float, bytes]:
    seconds, done = timed([*TOOL, "analyze", "-q", "--format", "json", "--jobs", str(jobs), str(folder)])
    if done.returncode not in (0, 1, 3):
        raise SystemExit(f"analyze --jobs {jobs} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return seconds, done.stdout


def xargs(folder: Path) -> float:
    shell = (
        f"find {folder} -type f -print0 | xargs -0 -P2 -n1 {sys.executable} -m cli analyze -q --jobs 1 "
        "--format json -o /dev/null; true"
    )
    seconds, _ = timed(["sh", "-c", shell])
    return seconds


def speed(label: str, seconds: float, files: int, megabytes: float) -> None:
    """One line; the CPU column shows the work done (it should not grow with --jobs) and, when it is far
    below wall time x cores, that the machine was busy and the ratios say little."""
    print(
        f"{label:<34} {seconds:8.2f} s  {files / seconds:8.1f} files/s  {megabytes / seconds:7.1f} MB/s  "
        f"cpu {LAST_CPU[0]:7.2f} s"
    )


def scaling(args: argparse.Namespace, work: Path) -> None:
    corpus = build(work / "scaling", args.files, size=int(args.size_mb * 1_000_000), special=False)
    megabytes = sum(p.stat().st_size for p in (corpus.folder / "plain").iterdir()) / 1e6
    print(f"{args.files} logs, {megabytes:.0f} MB in all")
    one, report_one = analyze(corpus.folder, 1)
    speed("hvci-triage analyze --jobs 1", one, args.files, megabytes)
    two, report_two = analyze(corpus.folder, 2)
    speed("hvci-triage analyze --jobs 2", two, args.files, megabytes)
    print(f"scaling --jobs 2 / --jobs 1: {one / two:.2f}x   (identical reports: {report_one == report_two})")
    if not args.skip_xargs:
        reference = xargs(corpus.folder)
        speed("xargs -P2 (one analyze per file)", reference, args.files, megabytes)
        print(f"--jobs 2 vs xargs -P2: {reference / two:.2f}x")


def check(args: argparse.Namespace, work: Path) -> None:
    corpus = build(work / "mixed", args.files)
    huge = corpus.folder / "odd" / "huge.log"
    sample = (corpus.folder / "plain" / "host00000.log").read_bytes()
    huge.write_bytes(sample * max(1, int(args.huge_mb * 1e6 / len(sample))))
    corpus.good.append(str(huge))
    one, report_one = analyze(corpus.folder, 1)
    two, report_two = analyze(corpus.folder, 2)
    data = json.loads(report_one)
    errors = {i["path"]: [d for d in i["diagnostics"] if d["severity"] == "error"] for i in data["inputs"]}
    missing = [n for n in corpus.good + corpus.empty if n not in errors or errors[n]]
    unnamed = [n for n in corpus.bad if not errors.get(n)]
    print(
        f"mixed folder: {len(data['inputs'])} inputs, {len(data['findings'])} findings; "
        f"jobs 1 {one:.1f} s, jobs 2 {two:.1f} s; identical: {report_one == report_two}; "
        f"good not read: {missing or 'none'}; bad not named: {unnamed or 'none'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size-mb", type=float, default=1.0)
    parser.add_argument("--skip-xargs", action="store_true", help="Do not run the xargs -P2 reference.")
    parser.add_argument("--check", action="store_true", help="Also check the mixed lab folder (see above).")
    parser.add_argument("--huge-mb", type=float, default=50.0, help="The huge log of --check.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hvci-bench-batch-"))
    try:
        scaling(args, work)
        if args.check:
            check(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
