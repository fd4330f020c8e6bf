"""The triage view on inputs that are not text: a crash dump lists its incident and shows its fields as
lines; an archive is named as an error and the status line is never the green "0 HVCI findings"."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.tui.conftest import settle
from tui.app import make_app
from tui.engine_feed import PROCESS_THRESHOLD, PipelineFeed
from tui.loading import Source
from tui.widgets.evidence_log import EvidenceLog
from tui.widgets.findings_table import FindingsTable

ROOT = Path(__file__).resolve().parents[2]
DUMP = ROOT / "samples" / "dumps" / "minidump-c4-2001-x64.dmp"


@pytest.mark.parametrize("threshold", [PROCESS_THRESHOLD, 0], ids=["thread", "child process"])
async def test_a_crash_dump_opens_with_its_incident_and_its_fields(tmp_path: Path, threshold: int) -> None:
    """A dump is read the same in the view's thread and in the analysis child (a megabyte or more)."""
    app = make_app(
        [Source.file(DUMP)],
        export_dir=tmp_path,
        keymap_file=tmp_path / "none.toml",
        feed_factory=lambda options: PipelineFeed(options, process_threshold=threshold),
    )
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        table = app.triage.query_one(FindingsTable)
        assert [i.category for i in table.listed] == ["execute-page-protection"]
        assert str(table.get_row_at(0)[1]) == "SensorHub.sys"
        load = app.triage.loads[0]
        assert load.error is None and any("BugCheckCode" in line for line in load.lines)
        assert app.triage.query_one(EvidenceLog).line_count == len(load.lines)


async def test_an_archive_is_an_error_not_a_clean_result(tmp_path: Path) -> None:
    archive = tmp_path / "kd.log.gz"
    archive.write_bytes(gzip.compress(b"BugCheck C4, {2000, fffff80431b07a6c, 0, 0}\n"))
    app = make_app([Source.file(archive)], export_dir=tmp_path, keymap_file=tmp_path / "none.toml")
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        status = app.triage.status_text()
        assert (app.triage.loads[0].error or "").startswith("a gzip-compressed file, not a text log")
        assert "0 HVCI" in status.plain and "(incomplete)" in status.plain
        assert all(span.style != "green" for span in status.spans)
