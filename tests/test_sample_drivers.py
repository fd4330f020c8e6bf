"""The committed HVCI fixture drivers (samples/drivers/build) have exactly the properties that
samples/drivers/expected.toml and the README tables claim.

The files are read with pefile, capstone and symbolic directly, not through symbols/pe.py: these
tests check the fixtures themselves, so a bug in our own PE layer cannot make a broken fixture
look right (and the scan tests that use the fixtures can trust them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import capstone
import pefile
import pytest
from capstone import x86_const
from symbolic import debuginfo

DRIVERS = Path(__file__).resolve().parent.parent / "samples" / "drivers"
BUILD = DRIVERS / "build"
MANIFEST: dict[str, Any] = tomllib.loads((DRIVERS / "expected.toml").read_text(encoding="utf-8"))
FIXTURES: dict[str, dict[str, Any]] = MANIFEST["fixtures"]
CALL_SITES: list[dict[str, Any]] = MANIFEST["call_sites"]
MISUSE_BUILDS = ("api_misuse", "api_misuse_O0", "x86_api_misuse")
CALL_SITE_BUILDS = (*MISUSE_BUILDS, "clean")
RULE_IDS = ("execute-write-section", "execute-write-section/init", "section-alignment",
            "iat-in-executable-section", "unsupported-relocs", "nx-compat")

MACHINES = {0x8664: "x64", 0x14C: "x86", 0xAA64: "arm64"}
SCN_MEM_EXECUTE = 0x20000000
SCN_MEM_WRITE = 0x80000000
SCN_WX = SCN_MEM_WRITE | SCN_MEM_EXECUTE
REL_ABSOLUTE, REL_HIGHLOW, REL_DIR64 = 0, 3, 10
NX_COMPAT = 0x0100


def _section_name(section: Any) -> str:
    return bytes(section.Name).rstrip(b"\0").decode("ascii")


@cache
def _pe(path: Path) -> pefile.PE:
    return pefile.PE(str(path))


def _properties(path: Path) -> dict[str, Any]:
    """The facts expected.toml records for a fixture, measured from the file."""
    pe = _pe(path)
    opt = pe.OPTIONAL_HEADER
    sections = {_section_name(s): s for s in pe.sections}
    wx = [{"name": name, "rva": s.VirtualAddress, "characteristics": s.Characteristics}
          for name, s in sections.items()
          if name != "INIT" and s.Characteristics & SCN_WX == SCN_WX]
    init = sections["INIT"]
    iat_dir = opt.DATA_DIRECTORY[12]
    iat_sections = [name for name, s in sections.items()
                    if s.VirtualAddress <= iat_dir.VirtualAddress < s.VirtualAddress + s.Misc_VirtualSize]
    relocs = [(e.rva, e.type) for block in getattr(pe, "DIRECTORY_ENTRY_BASERELOC", []) for e in block.entries
              if e.type != REL_ABSOLUTE]
    plus = opt.Magic == 0x20B
    return {
        "machine": MACHINES.get(pe.FILE_HEADER.Machine, hex(pe.FILE_HEADER.Machine)),
        "pe32_plus": plus,
        "section_alignment": opt.SectionAlignment,
        "file_alignment": opt.FileAlignment,
        "nx_compat": bool(opt.DllCharacteristics & NX_COMPAT),
        "wx_sections": wx,
        "init": {"rva": init.VirtualAddress, "characteristics": init.Characteristics},
        "iat": {"section": iat_sections[0] if len(iat_sections) == 1 else iat_sections,
                "rva": iat_dir.VirtualAddress, "size": iat_dir.Size},
        "reloc_types": sorted({kind for _, kind in relocs}),
        "straddling_relocs": [rva for rva, kind in relocs
                              if (kind == REL_DIR64 and rva & 0xFFF > 0xFF8)
                              or (kind == REL_HIGHLOW and rva & 0xFFF > 0xFFC)],
        "unsupported_relocs": [rva for rva, kind in relocs if plus and kind != REL_DIR64],
    }


def _rules(props: dict[str, Any], path: Path) -> dict[str, str]:
    """The image-rule verdicts that follow from the measured properties (hvci-domain.md 9.2, 9.3)."""
    pe = _pe(path)
    iat_section = next(s for s in pe.sections if _section_name(s) == props["iat"]["section"])
    init_wx = props["init"]["characteristics"] & SCN_WX == SCN_WX

    def status(failed: bool) -> str:
        return "fail" if failed else "pass"

    return {
        "execute-write-section": status(bool(props["wx_sections"])),
        "execute-write-section/init": status(init_wx),
        "section-alignment": status(props["section_alignment"] % 0x1000 != 0),
        "iat-in-executable-section": status(bool(iat_section.Characteristics & SCN_MEM_EXECUTE)),
        "unsupported-relocs": status(bool(props["straddling_relocs"] or props["unsupported_relocs"])),
        "nx-compat": status(not props["nx_compat"]),
    }


def _expected_properties(name: str) -> dict[str, Any]:
    return {key: value for key, value in FIXTURES[name].items() if key not in ("summary", "sources", "rules")}


def test_build_directory_holds_exactly_the_manifest_fixtures() -> None:
    assert sorted(p.stem for p in BUILD.glob("*.sys")) == sorted(FIXTURES)
    assert sorted(p.stem for p in BUILD.glob("*.pdb")) == sorted(FIXTURES)
    assert sorted(p.name for p in BUILD.iterdir()) == sorted(
        [f"{n}.sys" for n in FIXTURES] + [f"{n}.pdb" for n in FIXTURES])


def test_build_script_builds_each_fixture_from_the_sources_the_manifest_names() -> None:
    script = (DRIVERS / "build.sh").read_text(encoding="utf-8")
    built = dict(re.findall(r"^driver (\w+) \w+ -O\d (\S+)", script, flags=re.MULTILINE))
    assert built.keys() == FIXTURES.keys()
    for name, fixture in FIXTURES.items():
        assert fixture["sources"] == [built[name], "src/common/dispatch.c"], name
        assert all((DRIVERS / source).is_file() for source in fixture["sources"]), name


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_has_the_properties_the_manifest_claims(name: str) -> None:
    assert _properties(BUILD / f"{name}.sys") == _expected_properties(name)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_manifest_rule_verdicts_follow_from_the_properties(name: str) -> None:
    path = BUILD / f"{name}.sys"
    assert set(FIXTURES[name]["rules"]) == set(RULE_IDS)
    assert _rules(_properties(path), path) == FIXTURES[name]["rules"]


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_is_a_native_driver_with_a_valid_checksum(name: str) -> None:
    pe = _pe(BUILD / f"{name}.sys")
    assert pe.OPTIONAL_HEADER.Subsystem == pefile.SUBSYSTEM_TYPE["IMAGE_SUBSYSTEM_NATIVE"]
    assert pe.OPTIONAL_HEADER.CheckSum != 0
    assert pe.verify_checksum()
    entry = pe.OPTIONAL_HEADER.AddressOfEntryPoint
    assert _section_name(pe.get_section_by_rva(entry)) == "INIT"
    imports = [i.name.decode() for d in pe.DIRECTORY_ENTRY_IMPORT for i in d.imports]
    assert [d.dll for d in pe.DIRECTORY_ENTRY_IMPORT] == [b"ntoskrnl.exe"]
    assert "IoCreateDevice" in imports


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_codeview_record_names_the_pdb_next_to_it(name: str) -> None:
    path = BUILD / f"{name}.sys"
    pe = _pe(path)
    records = [d for d in pe.DIRECTORY_ENTRY_DEBUG if d.struct.Type == 2]  # IMAGE_DEBUG_TYPE_CODEVIEW
    assert len(records) == 1
    rsds = records[0].entry
    assert rsds.CvSignature == b"RSDS"
    assert rsds.PdbFileName.rstrip(b"\0") == f"{name}.pdb".encode()
    offset = records[0].struct.PointerToRawData + 4  # GUID follows the "RSDS" signature
    guid = uuid.UUID(bytes_le=path.read_bytes()[offset:offset + 16])
    archive = debuginfo.Archive.open(str(BUILD / f"{name}.pdb"))
    pdb = next(archive.iter_objects())
    assert pdb.debug_id == f"{guid}-{rsds.Age:x}"


def _readme_rows(header_start: str) -> list[list[str]]:
    """The body rows of the README table whose header row starts with `header_start`."""
    lines = (DRIVERS / "README.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def test_readme_image_rule_table_matches_the_manifest() -> None:
    rows = _readme_rows("| fixture |")
    assert [row[0].strip("`") for row in rows] == list(FIXTURES)
    for row in rows:
        name = row[0].strip("`")
        assert [cell.strip("*") for cell in row[2:8]] == [FIXTURES[name]["rules"][r] for r in RULE_IDS], name
        assert row[1].split()[0] == FIXTURES[name]["machine"]


@pytest.mark.parametrize("builds", [MISUSE_BUILDS, ("clean",)], ids=["api_misuse", "clean"])
def test_readme_call_site_tables_match_the_manifest(builds: tuple[str, ...]) -> None:
    sites = _sites(builds[0])
    build_columns = " | ".join(f"`{b}`" for b in builds)
    rows = _readme_rows(f"| function | API | argument | value | verdict | {build_columns} |")
    assert len(rows) == len(sites)
    for row, site in zip(rows, sites, strict=True):
        names = [site["function"], *([site["inlined"]] if "inlined" in site else [])]
        assert re.findall(r"`([^`]+)`", row[0]) == names
        assert row[1].split()[0] == site["api"]
        assert row[4].strip("*_") == site["verdict"]
        if "value" in site:
            assert row[3].split()[0] == f"{site['value']:#x}"
        for cell, build in zip(row[5:], builds, strict=True):
            assert cell == f"{site[build]['instruction']} {site[build]['rva']:#x}"


def _disassembler(pe: pefile.PE) -> capstone.Cs:
    mode = capstone.CS_MODE_32 if pe.FILE_HEADER.Machine == 0x14C else capstone.CS_MODE_64
    md = capstone.Cs(capstone.CS_ARCH_X86, mode)
    md.detail = True
    md.skipdata = True  # disasm() otherwise stops silently at the first undecodable byte
    return md


def _iat_slots(pe: pefile.PE) -> dict[int, str]:
    return {i.address: i.name.decode() for d in pe.DIRECTORY_ENTRY_IMPORT for i in d.imports}


def _branch_target(ins: Any) -> tuple[str, int] | None:
    """("mem", address) for call/jmp through memory, ("reg", 0) through a register, else None."""
    if ins.mnemonic not in ("call", "jmp") or len(ins.operands) != 1:
        return None
    op = ins.operands[0]
    if op.type == x86_const.X86_OP_REG:
        return ("reg", 0)
    if op.type != x86_const.X86_OP_MEM or op.mem.index != 0:
        return None
    if op.mem.base == x86_const.X86_REG_RIP:
        return ("mem", ins.address + ins.size + op.mem.disp)
    if op.mem.base == 0:
        return ("mem", op.mem.disp & 0xFFFFFFFF)
    return None


@cache
def _symcache(build: str) -> Any:
    archive = debuginfo.Archive.open(str(BUILD / f"{build}.pdb"))
    return next(archive.iter_objects()).make_symcache()


def _frames_at(build: str, rva: int) -> list[str]:
    """Function names at `rva` by the PDB, innermost (inlined) first, the real function last."""
    frames = _symcache(build).lookup(rva)
    assert frames, f"{build}: no PDB function at RVA {rva:#x}"
    return [str(frame.symbol).split("(")[0] for frame in frames]


def _sites(build: str) -> list[dict[str, Any]]:
    return [site for site in CALL_SITES if build in site]


@pytest.mark.parametrize("build", CALL_SITE_BUILDS)
def test_each_listed_call_site_is_a_call_of_its_api_in_its_function(build: str) -> None:
    pe = _pe(BUILD / f"{build}.sys")
    slots = _iat_slots(pe)
    md = _disassembler(pe)
    base = pe.OPTIONAL_HEADER.ImageBase
    for site in _sites(build):
        rva = site[build]["rva"]
        ins = next(md.disasm(pe.get_data(rva, 16), base + rva, count=1))
        assert ins.mnemonic == site[build]["instruction"], (build, site["function"])
        target = _branch_target(ins)
        if "via" in site:
            assert target == ("reg", 0), (build, site["function"], ins.op_str)
        else:
            assert target is not None and target[0] == "mem", (build, site["function"], ins.op_str)
            assert slots.get(target[1]) == site["api"], (build, site["function"])
        assert _frames_at(build, rva) == [*([site["inlined"]] if "inlined" in site else []), site["function"]]


def _affected_calls(build: str) -> set[int]:
    """RVAs of every call/jmp through the IAT to an API that the manifest lists as affected."""
    affected = {site["api"] for site in CALL_SITES}
    pe = _pe(BUILD / f"{build}.sys")
    slots = _iat_slots(pe)
    md = _disassembler(pe)
    base = pe.OPTIONAL_HEADER.ImageBase
    found = set()
    for section in pe.sections:
        if not section.Characteristics & SCN_MEM_EXECUTE:
            continue
        code = section.get_data()[:section.Misc_VirtualSize]
        for ins in md.disasm(code, base + section.VirtualAddress):
            target = _branch_target(ins)
            if target and target[0] == "mem" and slots.get(target[1]) in affected:
                found.add(ins.address - base)
    return found


@pytest.mark.parametrize("build", CALL_SITE_BUILDS)
def test_no_affected_api_call_is_missing_from_the_manifest(build: str) -> None:
    listed = {site[build]["rva"] for site in _sites(build) if "via" not in site}
    assert _affected_calls(build) == listed


def test_call_site_manifest_covers_bad_good_and_unknown() -> None:
    misuse = _sites("api_misuse")
    assert {site["verdict"] for site in misuse} == {"bad", "good", "unknown"}
    assert all(set(MISUSE_BUILDS) <= site.keys() for site in misuse)
    for site in misuse:
        assert site["function"].split("_")[0] == site["verdict"], site["function"]
    assert {site["verdict"] for site in _sites("clean")} == {"good"}
    for site in CALL_SITES:
        assert ("value" in site) == (site["verdict"] != "unknown" and site["argument_kind"] != "none")


# ---- rebuild from source (CI installs clang, lld and llvm) ----

TOOLS = ("clang", "lld-link", "llvm-dlltool", "llvm-pdbutil")


def _pdb_functions(pdb: Path) -> list[str]:
    """Procedure names (S_GPROC32/S_LPROC32) in a PDB, by llvm-pdbutil."""
    out = subprocess.run(["llvm-pdbutil", "dump", "-symbols", str(pdb)], check=True, capture_output=True,
                         text=True).stdout
    return sorted(re.findall(r"S_[GL]PROC32 \[size = \d+\] `([^`]+)`", out))


def _clang_version() -> str:
    out = subprocess.run(["clang", "--version"], check=True, capture_output=True, text=True).stdout
    match = re.search(r"clang version (\d+\.\d+\.\d+)", out)
    return match.group(1) if match else out


@pytest.mark.toolchain
@pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS), reason="clang/lld-link/llvm not on PATH")
def test_build_script_reproduces_the_committed_fixtures(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(["bash", str(DRIVERS / "build.sh"), str(out)], check=True, env=env, capture_output=True)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in BUILD.iterdir())
    same_toolchain = _clang_version() == MANIFEST["toolchain"]["clang"]
    for name in FIXTURES:
        rebuilt, committed = out / f"{name}.sys", BUILD / f"{name}.sys"
        assert _properties(rebuilt) == _properties(committed), name
        assert _pdb_functions(out / f"{name}.pdb") == _pdb_functions(BUILD / f"{name}.pdb"), name
        # Bytes depend on the compiler's code generation and lld's PDB layout, so they are only
        # expected to match with the toolchain that built the committed files.
        if same_toolchain:
            assert rebuilt.read_bytes() == committed.read_bytes(), name
            assert (out / f"{name}.pdb").read_bytes() == (BUILD / f"{name}.pdb").read_bytes(), name
