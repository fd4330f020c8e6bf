"""JSON and JSON Lines are written in pieces made as they go (issue 10 item 13: 200k incidents took 2.4 GB):
the same text as the whole-document writers, with memory for one incident at a time."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from hvci.logs.pipeline import analyze_inputs, analyze_text
from hvci.report import render, render_pieces
from hvci.report.json_report import dumps, to_json_dict
from parsers.stream import open_input

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "logs"
BANNER = (
    "*********** Verifier Detected a Code Integrity Issue ************\n**\n"
    "** The caller 0xFFFFF8074B98{:04X} specified an executable pool type 0x0 (tag 0x484d454d).\n"
    "**\n*****************************************************************\n"
)


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.iterdir() if p.is_file()))
def test_pieces_make_the_same_json_as_the_whole_tree(sample: str) -> None:
    report = analyze_inputs([open_input(SAMPLES / sample)])
    assert "".join(render_pieces(report, "json")) == dumps(to_json_dict(report), indent=2) + "\n"
    assert "".join(render_pieces(report, "jsonl")) == render(report, "jsonl")


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_writing_needs_memory_for_a_piece_not_for_the_document(fmt: str) -> None:
    report = analyze_text("".join(BANNER.format(n) for n in range(600)))
    assert len(report.incidents) == 600
    tracemalloc.start()
    try:
        written = 0
        for piece in render_pieces(report, fmt):
            written += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the whole-document writers peak at twice the output (the tree and the text); in pieces the largest
    # one dominates: here the one finding that lists all 600 occurrences
    assert peak < 1.5 * written, (peak, written)


def test_other_formats_come_whole() -> None:
    report = analyze_text(BANNER.format(1))
    assert list(render_pieces(report, "markdown")) == [render(report, "markdown")]
