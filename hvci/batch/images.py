"""The images of a scan in isolated worker processes: a native fault or a hang costs one image, not the scan.

capstone (C) decodes the code of hostile images in the scanning process, and a folder of hundreds of
drivers takes seconds of one core. :func:`in_workers` gives :func:`hvci.images.scan.scan_paths` a way to
scan the images on :class:`~hvci.batch.pool.IsolatedPool` (the pool ``analyze`` uses): each image in a
worker, its :class:`~hvci.images.scan.ImageReport` pickled back (a few KiB), the reports put back in the
order of the paths, so the report is byte-identical whatever the number of workers. An image whose worker
died or ran past its time limit is ``could-not-analyse`` with the one-line reason (never clean); the others
are unaffected. (The PDB reader is isolated on its own already: :mod:`symbols.isolate`.)

A single image, or ``jobs=1`` without an explicit time limit, is scanned in this process: a pool would
cost a fork and a pipe for no parallelism, and ``multiprocessing`` is not even imported. Without a number
of workers given, a run gets one per :data:`IMAGES_PER_WORKER` images (:func:`workers_for`), so a handful
of images is scanned in this process too. A time limit can
only be enforced on a worker, so one given explicitly sends even a single image to one.

Workers fork warm: the parent loads the knowledge base and the disassembler first, so each worker starts
with them instead of importing them again (capstone and the decoding passes are ~40 ms of CPU per process).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import msgspec

from hvci.batch.cores import default_jobs
from hvci.batch.events import Failure
from hvci.images.callsites.analysis import load_decoder
from hvci.images.scan import ImageReport, ImageScanner, ScanMany
from hvci.knowledge import kb
from symbols.isolate import let_worker_go

#: The default time limit of one image: this much (above the PDB reader's own limit, 120 s, so a slow PDB
#: is reported as such and the image still analysed), plus :data:`SECONDS_PER_MB` of the file: the scan
#: reads ~1 MB of code a second on one core (benchmarks/bench_scan.py), so an image far slower than that
#: is stuck on hostile input.
BASE_TIMEOUT = 300.0
SECONDS_PER_MB = 10.0

#: Images that make a worker worth its start when the number of workers is not given (see
#: :func:`workers_for`).
IMAGES_PER_WORKER = 8

Image = tuple[str, Path]


def default_timeout(image: Image) -> float:
    return BASE_TIMEOUT + SECONDS_PER_MB * _size(image[1]) / 1e6


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # the worker says why it cannot be read


class _ScanOne(msgspec.Struct, frozen=True):
    """A worker's task: one image's report, as the one part it sends back."""

    scanner: ImageScanner

    def __call__(self, image: Image) -> tuple[ImageReport]:
        return (self.scanner(image),)


class _Workers(msgspec.Struct, frozen=True):
    """:data:`~hvci.images.scan.ScanMany` over ``jobs`` workers (None: as many as the images are worth, see
    :func:`workers_for`); ``timeout`` is the per-image limit in seconds (None: :func:`default_timeout`; 0:
    none)."""

    jobs: int | None
    timeout: float | None

    def __call__(self, scanner: ImageScanner, images: Sequence[Image]) -> Iterable[ImageReport]:
        jobs = self.jobs or workers_for(len(images))
        if self.timeout is None and (jobs <= 1 or len(images) <= 1):
            return map(scanner, images)
        return _scan_isolated(scanner, images, jobs, self.limit)

    def limit(self, image: Image) -> float | None:
        if self.timeout is None:
            return default_timeout(image)
        return self.timeout or None


def workers_for(images: int) -> int:
    """The workers a run of ``images`` gets when the user does not say: one per
    :data:`IMAGES_PER_WORKER` images, at most one per core (:func:`hvci.batch.cores.default_jobs`). A pool
    costs a fixed ~0.06 s of CPU (``multiprocessing``, the forks, the reports' way back); on the 2-core
    development machine two workers were slower than this process alone up to ~14 small images (3 images:
    0.245 s against 0.218 s wall, 0.28 s against 0.21 s of CPU) and faster from there on (20: 0.24 against
    0.27 s wall)."""
    return max(1, min(default_jobs(), images // IMAGES_PER_WORKER))


def in_workers(jobs: int | None, timeout: float | None = None) -> ScanMany:
    """Scan the images on ``jobs`` worker processes (None: :func:`workers_for` the images; see the module
    docstring); ``timeout`` per image in seconds, None for the default (:func:`default_timeout`, and a run
    that needs no worker stays in this process), 0 for none."""
    return _Workers(jobs, timeout)


def warm() -> None:
    """What every worker would otherwise load for itself, loaded once before they fork."""
    kb.load()
    load_decoder("passes")


def _scan_isolated(
    scanner: ImageScanner, images: Sequence[Image], jobs: int, limit: Callable[[Image], float | None]
) -> list[ImageReport]:
    from hvci.batch.pool import IsolatedPool  # multiprocessing: only for runs given to workers

    warm()
    # the largest images first: the last one to finish decides the run's end, so it should be a small one
    order = sorted(range(len(images)), key=lambda index: -_size(images[index][1]))
    pool: IsolatedPool[Image] = IsolatedPool(_ScanOne(scanner), jobs, limit, finish=let_worker_go)
    reports: dict[int, ImageReport] = {}
    for position, event in pool.run([images[index] for index in order]):
        index = order[position]
        if isinstance(event, bytes):
            reports[index] = pickle.loads(event)
        elif isinstance(event, Failure) and index not in reports:  # a report sent whole stands
            reports[index] = _failed(images[index], event.message)
    return [reports[index] for index in range(len(images))]


def _failed(image: Image, reason: str) -> ImageReport:
    """The report of an image whose worker died or ran out of time: not analysed, and why."""
    shown, path = image
    return ImageReport(shown, "could-not-analyse", facts={"file_size": _size(path)}, diagnostics=(reason,))
