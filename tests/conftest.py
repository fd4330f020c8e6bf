"""What every test directory shares: where the real-world inputs are, and the skip when they are not.

The real-world drivers, PDBs, logs and event logs live outside the repository in ``../shared/realworld``
(nobody here wrote them and they are never committed). A clone without that folder must still pass, with
those tests skipped and the reason saying which input is missing; so no test module touches them at import
time: a test asks :func:`realworld` for the path inside its body (or takes the ``realworld_dir`` fixture).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, settings
from referencing import Registry, Resource

REPO = Path(__file__).resolve().parents[1]
#: The JSON report contract (``analyze --format json``) every report is validated against.
REPORT_SCHEMA = REPO / "docs" / "report.schema.json"
#: The contract of ``scan --format json`` (its incidents share the report's incident fields).
SCAN_SCHEMA = REPO / "docs" / "scan.schema.json"
#: ``../shared/realworld`` beside the repository (it may be absent: see the module docstring).
REALWORLD_ROOT = REPO.parent / "shared" / "realworld"
#: How long a test waits for an event (a child's end, a follower's next look at a file, a key's effect)
#: before it calls the code stuck. Not a speed limit: tests wait for events, never for a time, and this
#: only turns a hang into a failure; it is far above what a busy 2-core machine takes. Speed is measured
#: by the benchmarks.
HANG_SECONDS = 300.0


def modules_loaded_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules a fresh interpreter (run from the repository) has imported after running ``code`` (a few
    statements), listed without importing anything more (``json`` is one of the modules tests check)."""
    script = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=HANG_SECONDS,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return set(done.stdout.strip().splitlines()[-1].split())


#: Hypothesis's default deadline (200 ms an example) and its too-slow health check are wall-clock limits that
#: a busy machine fails; no test here has either (a test's own ``@settings`` adds to this profile).
settings.register_profile("no-clock", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("no-clock")


def realworld(*parts: str) -> Path:
    """The real-world input ``../shared/realworld/<parts>``, or a skip that names it when it is absent."""
    path = REALWORLD_ROOT.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real-world input not available (a clone without ../shared): {path}")
    return path


def realworld_files(folder: str, pattern: str) -> list[Path]:
    """The files of ``../shared/realworld/<folder>`` matching ``pattern``, for ``parametrize``.

    Listing a folder is not reading a file; without the folder the list is empty and pytest skips the
    parametrised test with the reason "got empty parameter set".
    """
    return sorted((REALWORLD_ROOT / folder).glob(pattern))


@functools.cache
def schema_validator(path: Path) -> jsonschema.protocols.Validator:
    """A validator for one of the docs/ schemas, resolving references between them."""
    schemas = [json.loads(p.read_text(encoding="utf-8")) for p in (REPORT_SCHEMA, SCAN_SCHEMA)]
    registry: Registry[Any] = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas
    )
    schema = json.loads(path.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema, registry=registry)


@pytest.fixture
def realworld_dir() -> Path:
    """``../shared/realworld`` itself, or a skip when it is absent."""
    return realworld()


@pytest.fixture(autouse=True, scope="session")
def private_knowledge_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The knowledge start-up cache of the whole run (the commands the tests start as children too) goes
    to a folder of this run, not the user's cache folder: a test run leaves nothing behind in ``~/.cache``,
    and a stale entry there cannot change what the tests see. Tests of the cache set their own folder."""
    saved = os.environ.get("HVCI_TRIAGE_CACHE_DIR")
    os.environ["HVCI_TRIAGE_CACHE_DIR"] = str(tmp_path_factory.mktemp("knowledge-cache"))
    yield
    if saved is None:
        del os.environ["HVCI_TRIAGE_CACHE_DIR"]
    else:
        os.environ["HVCI_TRIAGE_CACHE_DIR"] = saved
