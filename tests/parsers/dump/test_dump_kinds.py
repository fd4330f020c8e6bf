"""Every kind of kernel dump, built from the documented layouts, gives the incident its ``!analyze`` would:
the code, all four arguments, the category and the driver that contains the caller address."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.exitcodes import ExitCode
from cli.main import cli
from hvci.details import details_json
from hvci.logs.pipeline import analyze_inputs
from parsers.dump.reader import read_dump
from parsers.records import BugCheckRecord, Diagnostic, ModuleListRecord, StackRecord
from parsers.source import Source
from parsers.stream import open_input
from tests.builders.dumps import Crash, Driver, memory_dump, triage_dump

NT64 = Driver("ntoskrnl.exe", 0xFFFFF804_12000000, 0x1046000)
SENSOR = Driver("SensorHub.sys", 0xFFFFF804_31AF0000, 0x31000)
WDF = Driver("Wdf01000.sys", 0xFFFFF804_15E00000, 0xD6000)
NT32 = Driver("ntkrnlpa.exe", 0x82800000, 0x410000)
CAM32 = Driver("camfilt.sys", 0x8A5A0000, 0x20000)

CRASH64 = Crash(
    0xC4,
    (0x2001, 0xFFFFF804_31B07A6C, 0x40, 0),
    (NT64, WDF, SENSOR),
    unloaded=(Driver("oldflt.sys", 0xFFFFF804_33000000, 0x8000),),
    stack=(0, 0xFFFFF804_12345678, 7, 0xFFFFF804_31B07A71, 0xFFFFF804_15E01234),
    rip=0xFFFFF804_123AAAAA,
)
CRASH32 = Crash(0xC4, (0x2000, 0x8A5B1234, 0, 0x6C6F6F50), (NT32, CAM32), stack=(0x8A5B1238,), rip=0x82801234)

KINDS = {
    "triage-x64": lambda: triage_dump(CRASH64),
    "triage-x86": lambda: triage_dump(CRASH32, 32),
    "full-x64": lambda: memory_dump(CRASH64, 1),
    "summary-x64": lambda: memory_dump(CRASH64, 2),
    "bitmap-full-x64": lambda: memory_dump(CRASH64, 5),
    "bitmap-kernel-x64": lambda: memory_dump(CRASH64, 6),
    "kernel-x64": lambda: memory_dump(CRASH64, 8),
    "active-x64": lambda: memory_dump(CRASH64, 9),
    "complete-x64": lambda: memory_dump(CRASH64, 10),
    "full-x86-pae": lambda: memory_dump(CRASH32, 1, bits=32),
    "full-x86": lambda: memory_dump(CRASH32, 1, bits=32, pae=False),
    "bitmap-x86-pae": lambda: memory_dump(CRASH32, 5, bits=32),
    "bitmap-x86": lambda: memory_dump(CRASH32, 6, bits=32, pae=False),
}


def _crash(kind: str) -> Crash:
    return CRASH32 if "x86" in kind else CRASH64


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_gives_code_arguments_category_and_driver(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.dmp"
    path.write_bytes(KINDS[kind]())
    crash = _crash(kind)
    report = analyze_inputs([open_input(path)])
    [incident] = report.incidents
    assert incident.bugcheck is not None
    assert (incident.bugcheck.code, incident.bugcheck.args) == (crash.code, crash.args)
    expected = "execute-page-protection" if crash is CRASH64 else "execute-pool-type"
    assert incident.category == expected and incident.hvci_related
    driver = "SensorHub.sys" if crash is CRASH64 else "camfilt.sys"
    assert incident.driver == driver and incident.caller is not None and incident.caller.module == driver
    assert not report.incomplete, report.inputs[0].diagnostics
    assert incident.evidence[0].span is not None and incident.evidence[0].span.offset in (0x28, 0x38)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_lists_its_drivers(kind: str) -> None:
    crash = _crash(kind)
    content = read_dump(Source(kind, data=KINDS[kind]()))
    [modules] = [r for r in content.records if isinstance(r, ModuleListRecord)]
    loaded = [(m.image_name, m.start, m.end) for m in modules.modules if not m.unloaded]
    assert loaded == [(d.name, d.base, d.base + d.size) for d in crash.drivers]
    for entry in modules.modules:  # each entry's line in the text view names it
        assert entry.image_name is not None and entry.image_name in content.lines[entry.line - 1]


def test_a_triage_dump_gives_unloaded_drivers_and_a_stack_of_driver_addresses() -> None:
    content = read_dump(Source("t", data=triage_dump(CRASH64)))
    [modules] = [r for r in content.records if isinstance(r, ModuleListRecord)]
    assert [(m.image_name, m.unloaded) for m in modules.modules][-1] == ("oldflt.sys", True)
    [stack] = [r for r in content.records if isinstance(r, StackRecord)]
    sites = [(f.module, f.offset) for f in stack.frames]
    assert sites == [
        ("ntoskrnl", 0x3AAAAA),
        ("ntoskrnl", 0x345678),
        ("SensorHub", 0x17A71),
        ("Wdf01000", 0x1234),
    ]
    assert stack.frames[2].child_sp == 0xFFFFD000_12340000 + 3 * 8  # the 4th value on the stack
    [bugcheck] = [r for r in content.records if isinstance(r, BugCheckRecord)]
    assert bugcheck.form == "dump-header" and bugcheck.pointer_bits == 64 and bugcheck.span.offset == 0x38
    assert "+0x0038 BugCheckCode" in content.lines[bugcheck.span.first_line - 1]


def test_header_facts_are_reported() -> None:
    report = analyze_inputs([open_input(None, data=triage_dump(CRASH64), name="m.dmp")])
    [info] = report.inputs
    facts = info.diagnostics[0].message
    assert info.format == "kernel-dump-64" and info.encoding == "binary"
    for fact in ("64-bit x64", "triage", "Windows build 22621", "4 processor(s)", "2024-01-02T03:04:05Z"):
        assert fact in facts


def test_a_folder_of_dumps_in_analyze(tmp_path: Path) -> None:
    for kind in ("triage-x64", "triage-x86", "bitmap-kernel-x64"):
        (tmp_path / f"{kind}.dmp").write_bytes(KINDS[kind]())
    result = CliRunner().invoke(cli, ["analyze", "--format", "json", str(tmp_path)], catch_exceptions=False)
    data = json.loads(result.stdout)
    assert result.exit_code == ExitCode.FINDINGS and result.stderr == ""
    assert sorted(i["category"] for i in data["incidents"]) == [
        "execute-page-protection",
        "execute-page-protection",
        "execute-pool-type",
    ]
    assert data["incidents"][0]["evidence"][0]["span"]["offset"] in (0x28, 0x38)


def test_a_folder_of_dumps_in_the_triage_view_loader(tmp_path: Path) -> None:
    from hvci.logs.pipeline import AnalyzeOptions
    from tui.engine_feed import PipelineFeed
    from tui.loading import Load
    from tui.loading import Source as LoadSource

    path = tmp_path / "m.dmp"
    path.write_bytes(triage_dump(CRASH64))
    load = Load(LoadSource.file(path))
    feed = PipelineFeed(AnalyzeOptions())
    feed.read_incidents(load)
    feed.read_lines(load)
    assert load.error is None and [i.category for i in load.incidents] == ["execute-page-protection"]
    first = load.incidents[0].source.first_line
    assert "BugCheckCode" in load.lines[first - 1]


def test_a_dump_on_stdin_is_read_like_a_file() -> None:
    result = CliRunner().invoke(cli, ["analyze", "--format", "json", "-"], input=triage_dump(CRASH64))
    assert result.exit_code == ExitCode.FINDINGS
    assert [i["category"] for i in json.loads(result.stdout)["incidents"]] == ["execute-page-protection"]


def test_a_dump_from_a_pipe_without_its_bytes_asks_for_its_path() -> None:
    from parsers.dump.fileview import DumpFile

    with pytest.raises(OSError, match="give its path"):
        DumpFile.open(Source("<stdin>", stdin=True))


def test_an_image_problem_names_its_image_and_section_from_the_dumps_memory(tmp_path: Path) -> None:
    """0xC4/0x2003 passes the image name (Arg2, a UNICODE_STRING) and the section name (Arg4) as
    pointers: read from the dump as dS / da would print them."""
    from tests.builders.dumps import unicode_string

    name, section = 0xFFFFB30F_12345678, 0xFFFFD000_12340F00
    image = r"\SystemRoot\System32\drivers\wxdrv.sys"
    crash = Crash(
        0xC4,
        (0x2003, name, 0xFFFFF804_40000208, section),
        (NT64, Driver("wxdrv.sys", 0xFFFFF804_40000000, 0x9000)),
        memory=(*unicode_string(name, image), (section, b".rwx\x00\x00\x00\x00\x00")),
    )
    path = tmp_path / "MEMORY.DMP"
    path.write_bytes(memory_dump(crash, 6))
    [incident] = analyze_inputs([open_input(path)]).incidents
    assert incident.category == "execute-write-section" and incident.driver == "wxdrv.sys"
    details = details_json(incident.details)
    assert details["image"] == image and details["section"] == ".rwx"
    printed = [e.reason for e in incident.evidence if "printed" in e.reason]
    assert any("dS Arg2" in reason for reason in printed) and any("da Arg4" in reason for reason in printed)


def test_an_arm64_triage_dump_takes_its_pc_from_the_arm64_context() -> None:
    data = bytearray(triage_dump(CRASH64))
    data[0x30:0x34] = (0xAA64).to_bytes(4, "little")  # MachineImageType
    context = int.from_bytes(data[0x2000 + 0x0C : 0x2000 + 0x10], "little")
    data[context + 0x108 : context + 0x110] = (SENSOR.base + 0x40).to_bytes(8, "little")  # Pc
    content = read_dump(Source("arm64.dmp", data=bytes(data)))
    [stack] = [r for r in content.records if isinstance(r, StackRecord)]
    assert (stack.frames[0].module, stack.frames[0].offset) == ("SensorHub", 0x40)
    assert "ARM64" in content.lines[0]


def test_an_arm64_memory_dump_says_its_page_tables_are_not_read() -> None:
    data = bytearray(memory_dump(CRASH64, 1))
    data[0x30:0x34] = (0xAA64).to_bytes(4, "little")
    content = read_dump(Source("arm64.dmp", data=bytes(data)))
    messages = [r.message for r in content.records if isinstance(r, Diagnostic) and r.severity == "error"]
    assert any("ARM64 dumps are not read" in m for m in messages)
    assert [r for r in content.records if isinstance(r, BugCheckRecord)][0].args == CRASH64.args


@pytest.mark.parametrize("bits", [64, 32])
def test_a_triage_dump_names_the_image_from_its_data_blocks(bits: int) -> None:
    """The image name Arg2 points at is read from the memory the triage dump kept, as dS would."""
    from tests.builders.dumps import unicode_string

    name = 0xFFFFB30F_12345678 if bits == 64 else 0x8C345678
    image = r"\SystemRoot\System32\drivers\wxdrv.sys"
    drivers = (NT64,) if bits == 64 else (NT32,)
    crash = Crash(0xC4, (0x2004, name, 0, 0), drivers, memory=unicode_string(name, image, bits))
    report = analyze_inputs([open_input(None, data=triage_dump(crash, bits), name="Mini.dmp")])
    [incident] = report.incidents
    assert incident.category == "section-alignment" and details_json(incident.details)["image"] == image
    assert incident.driver == "wxdrv.sys"


@pytest.mark.parametrize("kind", ["full-x64", "full-x86-pae", "full-x86"])
def test_a_memory_dump_gives_the_windows_version_from_shared_user_data(kind: str) -> None:
    report = analyze_inputs([open_input(None, data=KINDS[kind](), name="MEMORY.DMP")])
    assert "Windows version 10.0" in [d.message for d in report.inputs[0].diagnostics]


def test_a_dump_inside_a_zip_is_read_in_place(tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "lab.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("Minidump/Mini1.dmp", triage_dump(CRASH64))
    result = CliRunner().invoke(cli, ["analyze", "--format", "json", str(archive)], catch_exceptions=False)
    data = json.loads(result.stdout)
    assert result.exit_code == ExitCode.FINDINGS
    assert [(i["id"], i["category"]) for i in data["incidents"]] == [
        (f"{archive}!Minidump/Mini1.dmp:10", "execute-page-protection")
    ]


def test_an_unloaded_list_right_after_its_count_is_read_and_said() -> None:
    """Our reading pads the count to the pointer size (an inference); a writer that does not is read too."""
    content = read_dump(Source("t", data=triage_dump(CRASH64, packed_unloaded=True)))
    [modules] = [r for r in content.records if isinstance(r, ModuleListRecord)]
    assert [m.image_name for m in modules.modules if m.unloaded] == ["oldflt.sys"]
    notes = [r for r in content.records if isinstance(r, Diagnostic) and r.severity != "info"]
    assert [(n.severity, "no padding" in n.message) for n in notes] == [("warning", True)]
    clean = read_dump(Source("t", data=triage_dump(CRASH64)))
    assert not [r for r in clean.records if isinstance(r, Diagnostic) and r.severity != "info"]


def test_names_given_as_paths_or_only_as_full_names_come_out_as_file_names() -> None:
    path_named = Crash(
        CRASH64.code,
        CRASH64.args,
        tuple(Driver(rf"\SystemRoot\system32\drivers\{d.name}", d.base, d.size) for d in CRASH64.drivers),
    )
    for data in (
        triage_dump(path_named),
        memory_dump(path_named, 1),
        memory_dump(CRASH64, 1, full_names=True),
    ):
        [incident] = analyze_inputs([open_input(None, data=data, name="x.dmp")]).incidents
        assert incident.driver == "SensorHub.sys" and incident.caller is not None
        assert incident.caller.module == "SensorHub.sys"
