"""The triage view opens what ``analyze`` reads: the members of ZIP, tar(.gz) and gzip archives."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.commands.open import command
from cli.exitcodes import ExitCode

LOG = (Path(__file__).resolve().parents[2] / "samples" / "logs" / "session-pool-type-haxm.log").read_bytes()


def _opened(monkeypatch: pytest.MonkeyPatch, *paths: str) -> tuple[int, list[tuple[str, bytes | None]]]:
    """Run ``hvci-triage PATH...`` up to the view, and return what it would have opened."""
    seen: list[tuple[str, bytes | None]] = []

    class View:
        def run(self) -> None:
            pass

    def make_app(sources: list, **_: object) -> View:  # type: ignore[type-arg]
        seen.extend((s.name, s.data) for s in sources)
        return View()

    monkeypatch.setattr("tui.app.make_app", make_app)
    monkeypatch.setattr("cli.commands.open.reattach_keyboard", lambda: None)
    result = CliRunner().invoke(command, list(paths))
    return result.exit_code, seen


def test_zip_tar_and_gzip_members_open_as_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with zipfile.ZipFile(tmp_path / "lab.zip", "w") as archive:
        archive.writestr("host1/kd.log", LOG)
    with tarfile.open(tmp_path / "lab.tar.gz", "w:gz") as archive:
        info = tarfile.TarInfo("host2/kd.log")
        info.size = len(LOG)
        archive.addfile(info, io.BytesIO(LOG))
    (tmp_path / "kd.log.gz").write_bytes(gzip.compress(LOG))
    code, seen = _opened(monkeypatch, *(str(tmp_path / n) for n in ("lab.zip", "lab.tar.gz", "kd.log.gz")))
    assert code == 0
    assert [name.replace(str(tmp_path), "") for name, _ in seen] == [
        "/lab.zip!host1/kd.log",
        "/lab.tar.gz!host2/kd.log",
        "/kd.log.gz",
    ]
    assert all(data == LOG for _, data in seen)


def test_a_member_that_cannot_be_read_is_named_and_never_shown_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cut.gz").write_bytes(gzip.compress(LOG)[:200])
    code, seen = _opened(monkeypatch, str(tmp_path / "cut.gz"))
    assert code == ExitCode.USAGE and seen == []


def test_a_plain_log_is_still_read_from_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kd.log").write_bytes(LOG)
    code, seen = _opened(monkeypatch, str(tmp_path / "kd.log"))
    assert code == 0 and seen == [(str(tmp_path / "kd.log"), None)]
