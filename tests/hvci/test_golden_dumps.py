"""Golden reports of the sample crash dumps (``samples/dumps``), and the samples are what their committed
script writes (no binary in the repository that the script would not make again).

Regenerate after a deliberate change with ``HVCI_UPDATE_GOLDEN=1 pytest tests/hvci/test_golden_dumps.py``
and review the diff: code, all four arguments, category, caller and driver of each incident."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import jsonschema
import pytest

from tests.hvci.test_golden import GOLDEN, ROOT, SCHEMA, UPDATE, report_for

DUMPS = ROOT / "samples" / "dumps"
SAMPLES = sorted(DUMPS.glob("*.dmp"))


def _script_output() -> dict[str, bytes]:
    spec = importlib.util.spec_from_file_location("make_samples", DUMPS / "make_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.samples()  # type: ignore[no-any-return]


def test_the_samples_are_what_the_script_writes() -> None:
    made = _script_output()
    assert sorted(made) == [p.name for p in SAMPLES]
    for path in SAMPLES:
        assert path.read_bytes() == made[path.name], f"{path.name}: run samples/dumps/make_samples.py"
        assert path.stat().st_size <= 128 << 10  # small


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_dump_report_matches_golden(sample: Path) -> None:
    report = report_for(sample)
    jsonschema.validate(report, SCHEMA)
    golden = GOLDEN / "dumps" / f"{sample.name}.json"
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    if UPDATE:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"no golden for {sample.name}: run with HVCI_UPDATE_GOLDEN=1 and review it"
    assert json.loads(golden.read_text(encoding="utf-8")) == report


def test_no_stale_dump_goldens() -> None:
    names = {p.name for p in SAMPLES}
    assert sorted(g.name for g in (GOLDEN / "dumps").glob("*.json") if g.name[:-5] not in names) == []
