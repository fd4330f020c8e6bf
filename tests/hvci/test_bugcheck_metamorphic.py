"""Metamorphic: the bug-check samples quoted, indented, with CRLF line ends or surrounded by prose give the
same bug checks, categories, callers and drivers as the clean file (the paste normaliser beneath the
parsers plus parsers that read their own formats whatever the wrapping around them)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hvci.logs.pipeline import analyze_text

LOGS = Path(__file__).resolve().parents[2] / "samples" / "logs"
SAMPLES = sorted(p for p in LOGS.glob("bugcheck-*") if p.is_file())

Transform = Callable[[str], str]
TRANSFORMS: dict[str, Transform] = {
    "quoted": lambda text: "".join(f"> {line}" for line in text.splitlines(keepends=True)),
    "indented": lambda text: "".join(f"    {line}" for line in text.splitlines(keepends=True)),
    "crlf": lambda text: text.replace("\r\n", "\n").replace("\n", "\r\n"),
    "prose": lambda text: "Hi all, this is what I got yesterday:\n\n" + text + "\n\nAny idea? Thanks.\n",
}


def findings(text: str) -> list[str]:
    report = analyze_text(text, name="sample")
    return sorted(
        repr(
            (
                incident.bugcheck.code if incident.bugcheck else None,
                incident.bugcheck.args if incident.bugcheck else None,
                incident.category,
                incident.hvci_related,
                incident.caller.address if incident.caller else None,
                (incident.driver or "").lower(),
            )
        )
        for incident in report.incidents
    )


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(names=st.lists(st.sampled_from(sorted(TRANSFORMS)), min_size=1, max_size=3, unique=True))
def test_wrapped_samples_give_the_findings_of_the_clean_one(sample: Path, names: list[str]) -> None:
    text = sample.read_text(encoding="utf-8")
    changed = text
    for name in names:
        changed = TRANSFORMS[name](changed)
    assert findings(changed) == findings(text), names
