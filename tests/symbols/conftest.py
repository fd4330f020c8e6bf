"""Paths for the symbol tests: the built sample drivers (real-world inputs: ``tests.conftest.realworld``)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE_BUILD = REPO / "samples" / "drivers" / "build"
