"""Paths for the symbol tests: the real-world binaries outside the repo and the built sample drivers."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REALWORLD = REPO / ".." / "shared" / "realworld"
DRIVERS = REALWORLD / "drivers"
MSVC = REALWORLD / "msvc-pdb"
SAMPLE_BUILD = REPO / "samples" / "drivers" / "build"


def realworld(path: Path) -> Path:
    """A real-world file, or a skip with the reason when the shared folder is not mounted."""
    if not path.exists():
        pytest.skip(f"real-world binary not available: {path}")
    return path
