"""The engine packages must import without textual, rich or pykd: it runs in batch, CI and a debugger."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("textual", "rich", "pykd")


def _engine_modules() -> list[str]:
    names = []
    for top in ("parsers", "symbols", "hvci"):
        names.append(top)
        names.extend(m.name for m in pkgutil.walk_packages([str(ROOT / top)], top + "."))
    return names


def test_engine_imports_headless() -> None:
    modules = _engine_modules()
    assert len(modules) > 3
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(','.join(n for n in {HEAVY!r} if n in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    heavy = result.stdout.strip()
    assert heavy == "", f"engine pulled in at import time: {heavy}"


def test_the_check_catches_a_heavy_import() -> None:
    """The subprocess check above must be able to fail: importing textual shows up in sys.modules."""
    script = "import sys, textual\nprint('textual' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"
