"""The decoders load at the first image with code to decode, and join the start-up objects the command line
froze out of the cyclic collector's sight (a process that froze nothing keeps its collector as it was)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "samples" / "drivers" / "build" / "api_misuse.sys"

SCRIPT = """
import gc, sys
if sys.argv[1] == "frozen":
    gc.disable(); gc.freeze(); gc.enable()
before = gc.get_freeze_count()
from hvci.images.callsites import analyse_calls
from symbols.pe import PeImage
assert "capstone" not in sys.modules
analysis = analyse_calls(PeImage.open(sys.argv[2]))
assert analysis.sites and "capstone" in sys.modules
import capstone
tracked = {id(o) for o in gc.get_objects()}
print(gc.get_freeze_count() > before, id(vars(capstone)) in tracked, gc.isenabled())
"""


@pytest.mark.parametrize(
    ("mode", "expected"), [("frozen", "True False True"), ("plain", "False True True")], ids=str
)
def test_decoders_are_frozen_only_where_start_up_was(mode: str, expected: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode, str(IMAGE)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    # frozen: more objects frozen, capstone's among them, the collector on; plain: nothing frozen
    assert done.stdout.split() == expected.split()
