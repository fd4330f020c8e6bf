"""The fuzz harness: every reader the product has, through the doors a user's input takes.

hypothesis mutates real seeds (the sample logs, dumps, drivers and PDBs): bits flipped, bytes and blocks
overwritten, cut, repeated, spliced with another seed, random bytes inserted. Whatever comes out, each door
must answer without an exception escaping and without the process dying:

* ``analyze``: any bytes through :func:`hvci.logs.pipeline.analyze_inputs` (the file-type sniffer, every
  text parser, session files, the crash-dump reader) and every report writer; JSON must stay valid JSON;
* ``scan``: any bytes as a driver image (PE adapter, header rules, call-site analysis);
* ``pdb``: any bytes as a PDB (symbolic runs isolated in a child, our MSF reader in process), then lookups.

The suite runs a small budget; a campaign runs the same tests longer::

    HVCI_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/fuzz -p no:cacheprovider

Time and memory are not asserted here (the suite must pass on a busy machine); a campaign prints the
slowest examples with ``--hypothesis-show-statistics``.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hvci.images.scan import scan_image
from hvci.logs.pipeline import analyze_inputs
from hvci.report import FORMATS, render
from parsers.stream import open_input
from symbols.pdb import PdbError, PdbFile

ROOT = Path(__file__).resolve().parents[2]
LOGS = sorted((ROOT / "samples" / "logs").iterdir())
DUMPS = sorted((ROOT / "samples" / "dumps").glob("*.dmp"))
IMAGES = sorted((ROOT / "samples" / "drivers" / "build").glob("*.sys"))
PDBS = sorted((ROOT / "samples" / "drivers" / "build").glob("*.pdb"))

FUZZ = settings(
    max_examples=int(os.environ.get("HVCI_FUZZ_EXAMPLES", "25")),
    deadline=None,  # no wall-clock limits in the suite
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize="HVCI_FUZZ_EXAMPLES" not in os.environ,  # the suite is repeatable; a campaign explores
)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[Path]) -> bytes:
    """A seed changed by a few random operations (sizes kept near the seed's, capped at 4 MB)."""
    data = bytearray(draw(st.sampled_from(seeds)).read_bytes())
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    for _ in range(draw(st.integers(1, 8))):
        operation = draw(st.sampled_from(["flip", "byte", "block", "cut", "repeat", "splice", "insert"]))
        at = rng.randrange(len(data) + 1)
        if operation == "flip" and data:
            data[min(at, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif operation == "byte" and data:
            data[min(at, len(data) - 1)] = rng.choice([0x00, 0xFF, 0x7F, 0x80, 0x0A, 0x0D, 0x1B, 0x3C, 0x60])
        elif operation == "block":
            size = rng.randrange(1, 64)
            data[at : at + size] = rng.choice([b"\xff", b"\x00", b"9", b"`"]) * size
        elif operation == "cut":
            del data[at:]
        elif operation == "repeat":
            size = rng.randrange(1, 4096)
            data[at:at] = data[at : at + size] * rng.randrange(1, 16)
        elif operation == "splice":
            other = draw(st.sampled_from(seeds)).read_bytes()
            start = rng.randrange(len(other) + 1)
            data[at:at] = other[start : start + rng.randrange(1, 8192)]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=256))
    return bytes(data[: 4 << 20])


@FUZZ
@given(mutated(LOGS + DUMPS))
def test_any_input_gives_a_report_in_every_format(data: bytes) -> None:
    report = analyze_inputs([open_input(None, data=data, name="fuzzed")])
    for fmt in FORMATS:
        text = render(report, fmt)
        assert isinstance(text, str)
        if fmt in ("json", "sarif"):
            json.loads(text)
        if fmt == "jsonl":
            for line in text.splitlines():
                json.loads(line)


@pytest.mark.skipif(not DUMPS, reason="samples/dumps has no dumps")
@FUZZ
@given(mutated(DUMPS))
def test_any_dump_file_on_disk_gives_a_report(data: bytes) -> None:
    """Dumps are read by offset from the file (never whole into memory): the door a path takes."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "MEMORY.DMP"
        path.write_bytes(data)
        report = analyze_inputs([open_input(str(path))])
        json.loads(render(report, "json"))


@FUZZ
@given(mutated(IMAGES))
def test_any_image_gives_a_scan_result(data: bytes) -> None:
    report = scan_image("fuzzed.sys", data=data)
    assert report.status in ("analysed", "partial", "could-not-analyse", "unreadable")
    assert report.status != "analysed" or report.rules


@FUZZ
@given(mutated(PDBS), st.lists(st.integers(0, 0x20000), max_size=16))
def test_any_pdb_loads_or_is_refused_and_never_kills_the_process(data: bytes, rvas: list[int]) -> None:
    try:
        pdb = PdbFile("fuzzed.pdb", data)
    except PdbError:
        return
    for rva in rvas:
        pdb.lookup(rva)
