"""Dense verifier-banner logs for memory tests and benchmarks, made on the fly (never committed): the real
banners of ``samples/logs/banner-only-log-mode.log`` (Driver Verifier's 5-line code-integrity banner, one
incident each) repeated until the log holds the number of incidents asked for.

A lab log looks like this when a driver trips the verifier on every load: 63 MB of such banners are 277,534
incidents.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "logs" / "banner-only-log-mode.log"
_START = "*********** Verifier Detected"


def banners(path: Path = SAMPLE) -> list[str]:
    """Each banner of the sample as its lines (text with newlines), from the title to the closing stars."""
    found: list[str] = []
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for number, line in enumerate(lines):
        if line.startswith(_START):
            end = next(n for n in range(number + 1, len(lines)) if lines[n].startswith("*****"))
            found.append("".join(lines[number : end + 1]))
    return found


def dense_log(incidents: int) -> Iterator[bytes]:
    """The log's bytes in pieces: ``incidents`` banners, the sample's cycled."""
    cycle = [b.encode("utf-8") for b in banners()]
    block = 1000
    for start in range(0, incidents, block):
        yield b"".join(cycle[n % len(cycle)] for n in range(start, min(incidents, start + block)))


def write_dense_log(path: Path, incidents: int) -> Path:
    with path.open("wb") as handle:
        for piece in dense_log(incidents):
            handle.write(piece)
    return path
