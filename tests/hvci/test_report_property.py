"""Whatever the input text, the JSON report is valid against the contract's schema and renders everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hvci.logs.pipeline import analyze_text
from hvci.report import render, to_json_dict
from hvci.report.json_report import _INVISIBLE, dumps
from tests.conftest import REPORT_SCHEMA

HERE = Path(__file__).resolve().parent
SCHEMA = json.loads((REPORT_SCHEMA).read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
LOGS = HERE.parents[1] / "samples" / "logs"

#: Real lines from the session samples, so that generated text hits the parsers, not just the noise path.
SAMPLE_LINES = sorted(
    {
        line
        for path in LOGS.glob("session-*.log")
        if not path.name.startswith("session-utf16")
        for line in path.read_text(encoding="utf-8").splitlines()
    }
)

fragments = st.one_of(
    st.sampled_from(SAMPLE_LINES),
    st.text(max_size=80),
    st.sampled_from(
        [
            "*** Fatal System Error: 0x000000c4",
            "BugCheck C4, {2000, 0, 0, 0}",
            "Arg1: 0000000000002005, Code Integrity Issue:",
            "\x1b[31m",
            "\u202e",
            "\x00",
        ]
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(fragments, max_size=60))
def test_json_report_is_always_valid(lines: list[str]) -> None:
    report = analyze_text("\n".join(lines), "fuzz.log")
    data = to_json_dict(report)
    VALIDATOR.validate(data)
    assert json.loads(render(report, "json")) == data
    for fmt in ("text", "markdown", "html", "jsonl"):
        assert "\x1b" not in render(report, fmt)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(SAMPLE_LINES), min_size=1, max_size=200))
def test_shuffled_sessions_never_give_a_non_hvci_bugcheck_a_category(lines: list[str]) -> None:
    for incident in analyze_text("\n".join(lines), "mix.log").incidents:
        if incident.bugcheck is not None and incident.bugcheck.code not in (
            0xC4,
            0xFC,
            0xBE,
            0x18B,
            0x18C,
            0x18D,
        ):
            assert incident.category is None and not incident.hvci_related


#: text with each kind of character the escape is about (DEL, C1 controls, line separators, bidi marks)
_JSON_TEXT = st.text(st.sampled_from([*'a{"\\\n\x7f\x85\x9f\xa0\u2028\u202e\u2066\u2069é']) | st.characters())


@settings(max_examples=500, deadline=None)
@given(_JSON_TEXT | st.lists(_JSON_TEXT | st.integers() | st.none(), max_size=4))
@example("\x7f")  # DEL: the one ASCII character escaped
@example(["plain", "a\u2028b"])
def test_dumps_escapes_exactly_what_the_search_of_invisible_characters_escaped(value: object) -> None:
    """Property (issue 16): the ASCII pre-test skips the search only where it finds nothing (DEL included)."""
    text = json.dumps(value, ensure_ascii=False)
    assert dumps(value) == _INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
