"""Golden reports: the JSON report of every sample log, compared with a reviewed copy.

Every file in ``samples/logs/`` (whoever added it) must have ``tests/hvci/golden/<file>.json``. After a
deliberate change, regenerate with ``HVCI_UPDATE_GOLDEN=1 pytest tests/hvci/test_golden.py`` and review the
diff like code: category, all four arguments, caller and driver of each incident.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from hvci.logs.pipeline import analyze_inputs
from hvci.report import to_json_dict
from parsers.stream import open_input
from tests.conftest import REPORT_SCHEMA

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "samples" / "logs"
GOLDEN = Path(__file__).resolve().parent / "golden"
SCHEMA = json.loads((REPORT_SCHEMA).read_text(encoding="utf-8"))
UPDATE = os.environ.get("HVCI_UPDATE_GOLDEN") == "1"

SAMPLES = sorted(p for p in LOGS.iterdir() if p.is_file() and not p.name.startswith("."))


def report_for(path: Path) -> dict[str, Any]:
    name = path.relative_to(ROOT).as_posix()
    return to_json_dict(analyze_inputs([open_input(path, name=name)]))


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_report_matches_golden(sample: Path) -> None:
    report = report_for(sample)
    jsonschema.validate(report, SCHEMA)
    golden = GOLDEN / f"{sample.name}.json"
    text = json.dumps(report, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    if UPDATE:
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"no golden for {sample.name}: run with HVCI_UPDATE_GOLDEN=1 and review it"
    assert json.loads(golden.read_text(encoding="utf-8")) == report


def test_no_stale_goldens() -> None:
    names = {p.name for p in SAMPLES}
    stale = sorted(g.name for g in GOLDEN.glob("*.json") if g.name.removesuffix(".json") not in names)
    assert stale == [], f"goldens without a sample: {stale}"


def test_there_are_session_samples() -> None:
    assert len([p for p in SAMPLES if p.name.startswith("session-")]) >= 8
