"""Shared helpers for the P2 parser tests: run one block parser over text the way the dispatcher does."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TypeVar

from parsers.base import BlockParser, Line, LineCursor
from parsers.records import Record

T = TypeVar("T")

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "logs"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


def run(parser: BlockParser, text: str, path: str = "t.log") -> tuple[list[Record], list[Line]]:
    """Every record the parser yields, plus the lines it left alone (for checking push-back)."""
    trigger = re.compile(parser.trigger, re.MULTILINE)
    cursor = LineCursor.from_text(text, path)
    records: list[Record] = []
    untouched: list[Line] = []
    while (line := cursor.next()) is not None:
        if trigger.search(line.text):
            records.extend(parser.parse(line, cursor))
        else:
            untouched.append(line)
    return records, untouched


def of_type(records: list[Record], kind: type[T]) -> list[T]:
    return [r for r in records if isinstance(r, kind)]
