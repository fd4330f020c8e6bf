"""``hvci-triage scan``: exit codes, the three formats, options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from tests.conftest import SCAN_SCHEMA, realworld, schema_validator

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "samples" / "drivers" / "build"
#: Stands for ../shared/realworld/drivers in the parameters: resolved (or skipped) when the test runs.
REAL = Path("<realworld drivers>")


def _run(*args: str | Path) -> Result:
    """``scan`` in-process; a JSON report it writes is validated against docs/scan.schema.json."""
    result = CliRunner().invoke(cli, ["scan", *map(str, args)], catch_exceptions=False)
    if "json" in args and result.stdout.strip():
        schema_validator(SCAN_SCHEMA).validate(json.loads(result.stdout))
    return result


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ((BUILD / "clean.sys",), 0),
        ((REAL / "WinDivert64-1.3.sys",), 1),
        ((REAL / "WinDivert64-1.3.sys", "--exit-zero"), 0),
        ((REAL / "WinDivert64-1.3.sys", "--fail-on", "never"), 0),
        ((BUILD / "init_rwx.sys",), 0),  # the INIT case is a warning, below the default threshold
        ((BUILD / "init_rwx.sys", "--fail-on", "warning"), 1),
        ((BUILD / "no_nxcompat.sys", "--fail-on", "warning"), 0),
        ((BUILD / "no_nxcompat.sys", "--fail-on", "note"), 1),
        ((REAL / "WinDivert64-2.2.2.sys",), 0),  # every call decided: NX opt-in globals
        ((BUILD / "api_misuse.sys", "--exit-zero"), 3),  # unknown arguments: incomplete, never clean
        ((BUILD / "align80.sys",), 1),
        ((BUILD / "arm64_wx.sys",), 1),
        (("/no/such/driver.sys",), 2),
        ((BUILD / "clean.sys", "--format", "yaml"), 2),
    ],
)
def test_exit_codes(args: tuple[str | Path, ...], code: int) -> None:
    resolved = [realworld("drivers", a.name) if isinstance(a, Path) and a.parent == REAL else a for a in args]
    assert _run(*resolved).exit_code == code


def test_unreadable_among_readable_is_incomplete(tmp_path: Path) -> None:
    (tmp_path / "junk.sys").write_bytes(b"\x00" * 100)
    result = _run(BUILD / "clean.sys", tmp_path / "junk.sys")
    assert result.exit_code == 3
    assert "junk.sys: could-not-analyse" in result.output


def test_text_output_groups_rules_and_call_sites_per_image() -> None:
    result = _run(BUILD / "api_misuse.sys", BUILD / "wx_section.sys")
    out = result.output
    api, wx = out.index("api_misuse.sys: analysed"), out.index("wx_section.sys: analysed")
    assert api < out.index("bad_pool_nonpaged+0xb") < wx
    assert "FAIL  execute-write-section " in out[wx:] and "'.rwxasm'" in out[wx:]
    assert "pass  section-alignment" in out[api:wx]
    assert "good_pool_nonpaged_nx" not in out  # safe call sites only with --verbose
    assert "good_pool_nonpaged_nx" in _run(BUILD / "api_misuse.sys", "--verbose").output


def test_json_output_shape() -> None:
    result = _run(realworld("drivers", "WinDivert64-1.3.sys"), "--format", "json")
    doc = json.loads(result.output)
    assert doc["schema"] == "hvci-triage-scan/1"
    (image,) = doc["images"]
    assert image["facts"]["nx_compat"] is False and image["facts"]["signed"] is True
    rules = {r["id"]: r for r in image["rules"]}
    assert rules["execute-write-section/init"]["status"] == "fail"
    assert {"id", "status", "category", "level", "message", "evidence", "details"} <= set(rules["nx-compat"])
    assert len(image["call_sites"]) == 8 and image["call_sites"][0]["rva"].startswith("0x")
    incident = next(i for i in doc["incidents"] if i["kind"] == "call-site")
    assert {"id", "source", "kind", "category", "hvci_related", "confidence", "caller", "bucket"} <= set(
        incident
    )
    assert incident["caller"]["module"] == "WinDivert64-1.3.sys"


def test_sarif_output_and_output_file(tmp_path: Path) -> None:
    target = tmp_path / "out.sarif"
    result = _run(realworld("drivers", "WinDivert64-1.3.sys"), "--format", "sarif", "-o", target)
    assert result.exit_code == 1 and result.output == ""
    log = json.loads(target.read_text(encoding="utf-8"))
    assert log["version"] == "2.1.0" and log["runs"][0]["results"]
    assert not [r for r in log["runs"][0]["results"] if r.get("kind") == "pass"]
    verbose = json.loads(_run(BUILD / "clean.sys", "--format", "sarif", "--verbose").output)
    assert {r["kind"] for r in verbose["runs"][0]["results"]} == {"pass"}


def test_pdb_option_names_functions(tmp_path: Path) -> None:
    image = tmp_path / "driver.sys"
    image.write_bytes((BUILD / "api_misuse.sys").read_bytes())
    unnamed = _run(image, "--format", "json")
    assert "bad_pool_nonpaged" not in unnamed.output  # no PDB next to the copy
    named = json.loads(_run(image, "--pdb", BUILD / "api_misuse.pdb", "--format", "json").output)
    functions = {s["function"] for s in named["images"][0]["call_sites"]}
    assert "bad_pool_nonpaged" in functions
    per_image = json.loads(
        _run(image, "--pdb", f"driver.sys={BUILD / 'api_misuse.pdb'}", "--format", "json").output
    )
    assert per_image["images"][0]["symbols"].endswith("api_misuse.pdb")
    wrong = json.loads(_run(image, "--pdb", BUILD / "clean.pdb", "--format", "json").output)
    assert "no matching PDB" in wrong["images"][0]["symbols"]


def test_symbol_store_layout(tmp_path: Path) -> None:
    image = tmp_path / "bin" / "api_misuse.sys"
    image.parent.mkdir()
    image.write_bytes((BUILD / "api_misuse.sys").read_bytes())
    doc = json.loads(_run(image, "--format", "json").output)
    debug_id = doc["images"][0]["facts"]["codeview"]["debug_id"]
    guid, age = debug_id.rsplit("-", 1)
    store = tmp_path / "store" / "api_misuse.pdb" / f"{guid.replace('-', '').upper()}{age.upper()}"
    store.mkdir(parents=True)
    (store / "api_misuse.pdb").write_bytes((BUILD / "api_misuse.pdb").read_bytes())
    found = json.loads(
        _run(
            image, "--symbols", f"srv*{tmp_path / 'store'}*https://example.invalid", "--format", "json"
        ).output
    )
    assert found["images"][0]["symbols"] == str(store / "api_misuse.pdb")


def test_scan_and_analyze_uploads_are_kept_apart() -> None:
    log = json.loads(_run(BUILD / "clean.sys", "--format", "sarif").output)
    assert log["runs"][0]["automationDetails"]["id"] == "hvci-triage-scan/"


def test_folders_and_globs_expand() -> None:
    doc = json.loads(_run(f"{BUILD}/wx_*.sys", "--format", "json").output)
    assert sorted(Path(i["path"]).name for i in doc["images"]) == [
        "wx_linker.sys",
        "wx_merge.sys",
        "wx_section.sys",
    ]
    folder = json.loads(_run(realworld("drivers"), "--format", "json").output)
    assert len(folder["images"]) == 3 and all(i["status"] == "analysed" for i in folder["images"])


def test_scan_finds_pdbs_like_every_other_command(tmp_path: Path) -> None:
    """Through symbols.store: a two-tier store (index2.txt) is searched, and a PDB of the right name but
    another GUID/age next to the image is refused with the reason."""
    image = tmp_path / "bin" / "api_misuse.sys"
    image.parent.mkdir()
    image.write_bytes((BUILD / "api_misuse.sys").read_bytes())
    (image.parent / "api_misuse.pdb").write_bytes((BUILD / "clean.pdb").read_bytes())  # wrong GUID
    doc = json.loads(_run(image, "--format", "json").output)
    assert "PDB mismatch" in doc["images"][0]["symbols"]
    assert "bad_pool_nonpaged" not in {s["function"] for s in doc["images"][0]["call_sites"]}
    debug_id = doc["images"][0]["facts"]["codeview"]["debug_id"]
    guid, age = debug_id.rsplit("-", 1)
    store = tmp_path / "store"
    (store / "index2.txt").parent.mkdir()
    (store / "index2.txt").write_text("")
    key = f"{guid.replace('-', '').upper()}{age.upper()}"
    stored = store / "ap" / "api_misuse.pdb" / key / "api_misuse.pdb"
    stored.parent.mkdir(parents=True)
    stored.write_bytes((BUILD / "api_misuse.pdb").read_bytes())
    found = json.loads(_run(image, "--symbols", f"srv*{store}", "--format", "json").output)
    assert found["images"][0]["symbols"] == str(stored)
    assert "bad_pool_nonpaged" in {s["function"] for s in found["images"][0]["call_sites"]}


def test_scan_takes_the_symbol_path_from_the_environment_like_analyze(tmp_path: Path) -> None:
    image = tmp_path / "api_misuse.sys"
    image.write_bytes((BUILD / "api_misuse.sys").read_bytes())
    result = CliRunner(env={"_NT_ALT_SYMBOL_PATH": str(BUILD)}).invoke(
        cli, ["scan", "--format", "json", str(image)], catch_exceptions=False
    )
    assert json.loads(result.output)["images"][0]["symbols"] == str(BUILD / "api_misuse.pdb")


def test_a_folder_with_a_dangling_or_fifo_driver_is_never_clean(tmp_path: Path) -> None:
    """Issue 10 item 8: a dangling ``.sys`` link in a folder was dropped and the scan exited 0."""
    import os

    folder = tmp_path / "drivers"
    folder.mkdir()
    (folder / "clean.sys").write_bytes((BUILD / "clean.sys").read_bytes())
    assert _run(folder).exit_code == 0
    os.symlink(folder / "gone.sys", folder / "dangling.sys")
    result = _run(folder, "--format", "json")
    images = {Path(i["path"]).name: i for i in json.loads(result.stdout)["images"]}
    assert result.exit_code == 3 and images["dangling.sys"]["status"] == "unreadable"
    assert "dangling link" in images["dangling.sys"]["diagnostics"][0]
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "pipe.sys")  # would block for ever if it were opened
        result = _run(folder)
        assert result.exit_code == 3 and "pipe.sys: a FIFO" in result.stderr
    (folder / "clean.sys").unlink()
    assert _run(folder).exit_code == 2  # nothing readable at all
