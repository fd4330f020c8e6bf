"""The P2 parsers through the real dispatcher (registry + prefilter + stream): every sample yields exactly the
records the parser yields on its own, so no other parser steals a block and no trigger is missed."""

from __future__ import annotations

import pytest

from parsers import events, imagedump, lm, readiness, verifier
from parsers.records import Diagnostic, Record
from parsers.registry import PARSERS
from parsers.stream import parse_text
from tests.parsers.p2_support import run, sample

OWN = (lm.PARSER, verifier.PARSER, readiness.PARSER, events.PARSER, imagedump.PARSER)
SAMPLES_BY_PARSER = {
    "lm": ("lm-x64.txt", "lmv-with-unloaded.txt", "lm-x86.txt"),
    "verifier": ("verifier-modern-ci-counters.txt", "verifier-win7.txt", "verifier-query.txt"),
    "readiness": ("dg-readiness.log", "hvciscan.txt"),
    "events": (
        "codeintegrity-events.txt",
        "codeintegrity-events.xml",
        "codeintegrity-events.csv",
        "codeintegrity-events-formatlist.txt",
        "codeintegrity-events-table.txt",
        "codeintegrity-event-copied.txt",
    ),
    "imagedump": ("dh-wx-section.txt", "dh-misaligned.txt"),
}
FORMATS = {
    "lm": "kd-log",
    "verifier": "verifier",
    "readiness": "readiness",
    "events": "event-log",
    "imagedump": "kd-log",
}


def test_every_p2_parser_is_registered() -> None:
    assert all(any(parser is registered.load() for registered in PARSERS) for parser in OWN)


@pytest.mark.parametrize(
    ("parser_name", "name"), [(p, n) for p, names in SAMPLES_BY_PARSER.items() for n in names]
)
def test_dispatcher_yields_what_the_parser_yields(parser_name: str, name: str) -> None:
    parser = next(p for p in OWN if p.name == parser_name)
    text = sample(name)
    expected, _ = run(parser, text, name)
    records, info = parse_text(text, name)
    kinds = {type(r) for r in expected if not isinstance(r, Diagnostic)}
    got: list[Record] = [r for r in records if type(r) in kinds]
    assert got == [r for r in expected if not isinstance(r, Diagnostic)]
    assert [r for r in expected if isinstance(r, Diagnostic)] == [
        r for r in records if r in expected and isinstance(r, Diagnostic)
    ]
    assert info.format == FORMATS[parser_name]
