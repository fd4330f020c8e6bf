"""Do long lines cost linear time? The parsers and the reader on lines of length N and 2N.

The tests check that long lines are parsed right (spans inside the input, a line cut once and reported,
later lines numbered right); how long that takes is measured here, never by a test, where a busy machine
cannot be told from slow code. Two measurements, each at N and 2N, in this process (CPU and wall, the best
of ``--repeat`` runs):

- the block parsers called directly, as ``tests/parsers/test_p2_properties.py`` calls them, on a line of
  200 KB (then 400 KB) after and glued to every block start they know, in every shape of that test: a
  quadratic match would take minutes (the whole command never shows it: the reader cuts lines at 64 KB);
- the reader (``open_input(...).lines()``) on one line of 10 MB (then 20 MB), which it cuts once.

Linear: a ratio 2N/N of about 2; quadratic: about 4.

    .venv/bin/python benchmarks/bench_long_lines.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from parsers.stream import open_input  # noqa: E402
from tests.parsers.test_p2_properties import BLOCK_STARTS, LONG_LINES, dispatch  # noqa: E402


def _blocks(scale: int) -> Callable[[], object]:
    texts = [
        f"{start}\n{body * scale}\n{start}{body * scale}\n" for start in BLOCK_STARTS for body in LONG_LINES
    ]
    return lambda: [dispatch(text) for text in texts]


def _one_line(scale: int) -> Callable[[], object]:
    data = b"first\n" + b"x" * (scale * (10 << 20)) + b"\nBugCheck C4, {2000, 0, 0, 0}\n"
    return lambda: list(open_input(None, data=data, name="big").lines())


def _best(work: Callable[[], object], repeat: int) -> tuple[float, float]:
    """CPU and wall seconds, each the best of ``repeat`` runs (other work only ever makes a run slower)."""
    cpu, wall = [], []
    for _ in range(repeat):
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        work()
        cpu.append(time.process_time() - cpu_start)
        wall.append(time.perf_counter() - wall_start)
    return min(cpu), min(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best one counts")
    args = parser.parse_args()
    for name, make in (("parsers, 200 KB lines in blocks", _blocks), ("reader, one 10 MB line", _one_line)):
        (cpu_n, wall_n), (cpu_2n, wall_2n) = (_best(make(scale), args.repeat) for scale in (1, 2))
        print(
            f"{name}: CPU {cpu_n:.3f} s at N, {cpu_2n:.3f} s at 2N, ratio {cpu_2n / cpu_n:.2f}; "
            f"wall {wall_n:.3f} s / {wall_2n:.3f} s, ratio {wall_2n / wall_n:.2f} (linear: about 2)"
        )


if __name__ == "__main__":
    main()
