"""The registry's triggers are data (so that no parser module is imported before a line calls for it):
each must be the trigger its parser declares, and every parser module must be registered."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import parsers
from parsers.registry import PARSERS, Registered

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("registered", PARSERS, ids=[r.name for r in PARSERS])
def test_the_registered_trigger_is_the_parsers_own(registered: Registered) -> None:
    parser = registered.load()
    assert (parser.name, parser.trigger) == (registered.name, registered.trigger)
    assert registered.load() is parser


def test_every_parser_module_is_registered_once() -> None:
    modules = [
        info.name
        for info in pkgutil.iter_modules(parsers.__path__)
        if not info.ispkg and "\nPARSER = " in Path(parsers.__path__[0], f"{info.name}.py").read_text("utf-8")
    ]
    assert sorted(r.module for r in PARSERS) == sorted(modules)
    assert len({r.name for r in PARSERS}) == len(PARSERS)


_PROBE = """
import sys
from parsers.registry import PARSERS
from parsers.stream import parse_text
modules = {f"parsers.{r.module}" for r in PARSERS}
records, info = parse_text(sys.argv[1])
print(len(records), " ".join(sorted(m for m in modules if m in sys.modules)))
"""


@pytest.mark.parametrize(
    ("text", "imported"),
    [
        ("nothing to see here\nnor here\n", ""),
        ("*** Fatal System Error: 0x000000c4\n", "parsers.kd"),
    ],
    ids=["noise", "fatal-error"],
)
def test_only_the_parsers_a_line_calls_for_are_imported(text: str, imported: str) -> None:
    """In a fresh interpreter (this one has imported every parser): noise imports none, a fatal-error
    line the kd parser alone."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, text], cwd=ROOT, capture_output=True, text=True, check=True
    )
    count, _, names = done.stdout.strip().partition(" ")
    assert names == imported
    assert (int(count) > 0) == bool(imported)
