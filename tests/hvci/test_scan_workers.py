"""``scan -j/--jobs``: images in isolated worker processes, the same report for any number of them, and a
worker that dies or hangs costing its own image alone (could-not-analyse, with the reason, never clean)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import hvci.images.scan as scan_module
from cli.main import cli
from hvci.batch import images as scan_workers
from hvci.batch.pool import IsolatedPool
from hvci.images.scan import ImageReport, scan_paths
from tests.conftest import modules_loaded_after, realworld

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "samples" / "drivers" / "build"


def _scan(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["scan", *map(str, args)], catch_exceptions=False)


@pytest.fixture
def pool_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The number of items each pool run was given (so a test knows the workers were used)."""
    runs: list[int] = []
    run = IsolatedPool.run

    def counted(self: IsolatedPool[object], items: list[object]) -> Iterator[object]:
        runs.append(len(items))
        return run(self, items)

    monkeypatch.setattr(IsolatedPool, "run", counted)
    yield runs


def _same_for_any_jobs(folders: list[Path], fmt: str, runs: list[int]) -> None:
    one = _scan("-j1", "--exit-zero", "--format", fmt, *folders)
    two = _scan("-j2", "--exit-zero", "--format", fmt, *folders)
    assert runs == [sum(1 for f in folders for _ in f.glob("*.sys"))]  # -j1 in process, -j2 on workers
    assert one.exit_code == two.exit_code == 3  # findings with --exit-zero, and something undecided
    assert one.stdout == two.stdout and one.stdout.strip()


@pytest.mark.parametrize("fmt", ["json", "sarif", "text"])
def test_the_sample_drivers_give_the_same_report_for_one_or_two_workers(
    fmt: str, pool_runs: list[int]
) -> None:
    _same_for_any_jobs([BUILD], fmt, pool_runs)


def test_the_real_drivers_give_the_same_report_for_one_or_two_workers(pool_runs: list[int]) -> None:
    _same_for_any_jobs([BUILD, realworld("drivers")], "json", pool_runs)


def _dies_on(name: str, how: str) -> object:
    """A stand-in for a native reader gone wrong on the image called ``name``: the worker faults (``how``
    ``segfault``, no core file) or hangs (``hang``) until the pool's limit ends it."""
    original = scan_module.scan_image

    def scan_image(path: Path | str, **kwargs: object) -> ImageReport:
        if Path(path).name == name:
            if how == "segfault":
                resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
                os.kill(os.getpid(), signal.SIGSEGV)
            threading.Event().wait()  # blocks until the pool's time limit ends the worker
        return original(path, **kwargs)  # type: ignore[arg-type]

    return scan_image


def _images(tmp_path: Path, *names: str) -> list[Path]:
    paths = [tmp_path / name for name in names]
    for path in paths:
        shutil.copyfile(BUILD / path.name, path)
        shutil.copyfile((BUILD / path.name).with_suffix(".pdb"), path.with_suffix(".pdb"))
    return paths


def test_a_worker_that_dies_costs_its_image_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images = _images(tmp_path, "api_misuse.sys", "wx_section.sys", "clean.sys", "init_rwx.sys")
    alone = json.loads(_scan("--format", "json", "-j1", *images).stdout)
    monkeypatch.setattr(scan_module, "scan_image", _dies_on("wx_section.sys", "segfault"))
    result = _scan("--format", "json", "-j2", "--exit-zero", *images)
    doc = json.loads(result.stdout)
    died = doc["images"][1]
    assert died["status"] == "could-not-analyse" and died["path"].endswith("wx_section.sys")
    assert died["diagnostics"] == ["the analysis crashed: its worker process died of SIGSEGV"]
    assert not died["rules"] and not any(i["source"]["path"] == died["path"] for i in doc["incidents"])
    assert [i for n, i in enumerate(doc["images"]) if n != 1] == [
        i for n, i in enumerate(alone["images"]) if n != 1
    ]
    assert result.exit_code == 3  # never clean; --exit-zero keeps 3
    assert "wx_section.sys: the analysis crashed: its worker process died of SIGSEGV" in result.stderr
    assert _scan("-j2", *images).exit_code == 1  # api_misuse's findings still fail the run


def test_a_worker_past_its_time_limit_costs_its_image_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean, hangs = _images(tmp_path, "clean.sys", "wx_section.sys")
    monkeypatch.setattr(scan_module, "scan_image", _dies_on("wx_section.sys", "hang"))
    limits = {hangs: 1.0}  # the others have the default limit (minutes): only the hanging image reaches it
    monkeypatch.setattr(
        scan_workers, "default_timeout", lambda image: limits.get(image[1], scan_workers.BASE_TIMEOUT)
    )
    report = scan_paths([clean, hangs], scan_many=scan_workers.in_workers(2))
    assert [i.status for i in report.images] == ["analysed", "could-not-analyse"]
    assert report.images[1].diagnostics == (
        "the analysis took longer than its time limit (1 s) and was stopped",
    )
    assert report.incomplete


def test_jobs_and_timeout_options() -> None:
    help_text = _scan("--help").stdout
    assert "-j, --jobs" in help_text and "--timeout SECONDS" in help_text
    assert _scan("-j0", BUILD / "clean.sys").exit_code == 2
    assert _scan("--timeout", "-1", BUILD / "clean.sys").exit_code == 2


def test_one_worker_or_one_image_scans_in_this_process_without_multiprocessing() -> None:
    """``-j1`` over several images, one image, and a few images with the default jobs, import no pool; the
    scans ran (the decoding passes loaded: the check can fail)."""
    few = ["api_misuse.sys", "clean.sys", "align80.sys"]
    for args in (["-j1", "api_misuse.sys", "clean.sys"], ["api_misuse.sys"], few):
        paths = [a if a.startswith("-") else str(BUILD / a) for a in args]
        code = f"from cli.main import run\ntry:\n    run(['scan', *{paths!r}])\nexcept SystemExit:\n    pass"
        loaded = modules_loaded_after(code)
        assert "hvci.images.callsites.passes" in loaded
        assert not {"multiprocessing", "hvci.batch.pool"} & loaded


def test_a_time_limit_given_sends_even_one_image_to_a_worker(pool_runs: list[int]) -> None:
    assert _scan("--timeout", "600", BUILD / "clean.sys").exit_code == 0
    assert pool_runs == [1]


def test_without_jobs_a_run_gets_a_worker_per_eight_images_at_most_one_per_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scan_workers, "default_jobs", lambda: 4)
    counts = {images: scan_workers.workers_for(images) for images in (0, 1, 15, 16, 24, 31, 32, 200)}
    assert counts == {0: 1, 1: 1, 15: 1, 16: 2, 24: 3, 31: 3, 32: 4, 200: 4}


def test_without_jobs_a_folder_worth_two_workers_gets_them(pool_runs: list[int]) -> None:
    images = sorted(BUILD.glob("*.sys"))
    assert len(images) >= 2 * scan_workers.IMAGES_PER_WORKER  # else this test says nothing
    one = _scan("-j1", "--exit-zero", "--format", "json", BUILD)
    default = _scan("--exit-zero", "--format", "json", BUILD)
    assert pool_runs == ([len(images)] if scan_workers.workers_for(len(images)) > 1 else [])
    assert default.stdout == one.stdout
