"""The header of a Windows kernel crash dump (``DUMP_HEADER64`` / ``DUMP_HEADER32``), read field by field
from the documented layout.

Layouts (offsets checked against three independent readers; no code taken from them):

* ``DUMP_HEADER64``: Microsoft's published struct (windows-docs-rs, ``Win32::System::Diagnostics::Debug::
  DUMP_HEADER64``) with the padding kdmp-parser (``src/lib/kdmp-parser-structs.h``, ``HEADER64``, whose
  ``static_assert`` s pin ``BugCheckCodeParameters`` at 0x40, ``KdDebuggerDataBlock`` at 0x80, the
  ``CONTEXT`` at 0x348, the exception record at 0xF00) and rizin (``librz/bin/format/dmp/dmp_specs.h``,
  ``dmp64_header``) agree on: the header is two pages (0x2000 bytes), ``DumpType`` at 0xF98,
  ``SystemTime`` at 0xFA8;
* ``DUMP_HEADER32``: rizin's ``dmp32_header`` and Volatility 3's ``symbols/windows/crash.json``
  (``_DUMP_HEADER``): one page, ``BugCheckParameter1`` at 0x2C, ``PaeEnabled`` at 0x5C,
  ``KdDebuggerDataBlock`` at 0x60, the run list at 0x64, ``DumpType`` at 0xF88, ``SystemUpTime`` at 0xFB8
  and ``SystemTime`` at 0xFC0 as Volatility has them (rizin's struct lacks the 16 reserved bytes after
  ``RequiredDumpSpace``: its fields then do not add up to the one-page header);
* dump types (``DUMP_TYPES``: 1 full, 2 summary/kernel, 3 header only, 4 triage, 5 bitmap full,
  6 bitmap kernel, 7 automatic) from rizin's ``DMP_DUMPTYPE_*``, and the newer 8 kernel, 9 kernel and user
  ("active"), 10 complete memory written by ``.dump /k``, ``/ka``, ``/f`` from kdmp-parser's ``DumpType_t``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from parsers.dump.fileview import DumpFile

DUMP_TYPES = {
    1: "full",
    2: "kernel (summary)",
    3: "header only",
    4: "triage (minidump)",
    5: "bitmap full",
    6: "bitmap kernel",
    7: "automatic",
    8: "kernel",
    9: "kernel and user (active)",
    10: "complete memory",
}

#: IMAGE_FILE_MACHINE_* values a kernel dump names.
MACHINES = {0x14C: "x86", 0x8664: "x64", 0xAA64: "ARM64", 0x1C4: "ARM"}


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the fields of one header flavour are: (name, offset, size in bytes)."""

    bits: int
    header_size: int
    fields: tuple[tuple[str, int, int], ...]
    context: int  # offset of the CONTEXT record
    runs: int  # offset of PHYSICAL_MEMORY_DESCRIPTOR
    run_size: int  # one PHYSICAL_MEMORY_RUN

    def offset(self, name: str) -> int:
        return next(offset for field_name, offset, _ in self.fields if field_name == name)


HEADER64 = Layout(
    bits=64,
    header_size=0x2000,
    fields=(
        ("MajorVersion", 0x08, 4),
        ("MinorVersion", 0x0C, 4),
        ("DirectoryTableBase", 0x10, 8),
        ("PfnDataBase", 0x18, 8),
        ("PsLoadedModuleList", 0x20, 8),
        ("PsActiveProcessHead", 0x28, 8),
        ("MachineImageType", 0x30, 4),
        ("NumberProcessors", 0x34, 4),
        ("BugCheckCode", 0x38, 4),
        ("BugCheckParameter1", 0x40, 8),
        ("BugCheckParameter2", 0x48, 8),
        ("BugCheckParameter3", 0x50, 8),
        ("BugCheckParameter4", 0x58, 8),
        ("KdDebuggerDataBlock", 0x80, 8),
        ("ExceptionCode", 0xF00, 4),
        ("ExceptionAddress", 0xF10, 8),
        ("DumpType", 0xF98, 4),
        ("RequiredDumpSpace", 0xFA0, 8),
        ("SystemTime", 0xFA8, 8),
        ("SystemUpTime", 0x1030, 8),
    ),
    context=0x348,
    runs=0x88,
    run_size=16,
)

HEADER32 = Layout(
    bits=32,
    header_size=0x1000,
    fields=(
        ("MajorVersion", 0x08, 4),
        ("MinorVersion", 0x0C, 4),
        ("DirectoryTableBase", 0x10, 4),
        ("PfnDataBase", 0x14, 4),
        ("PsLoadedModuleList", 0x18, 4),
        ("PsActiveProcessHead", 0x1C, 4),
        ("MachineImageType", 0x20, 4),
        ("NumberProcessors", 0x24, 4),
        ("BugCheckCode", 0x28, 4),
        ("BugCheckParameter1", 0x2C, 4),
        ("BugCheckParameter2", 0x30, 4),
        ("BugCheckParameter3", 0x34, 4),
        ("BugCheckParameter4", 0x38, 4),
        ("PaeEnabled", 0x5C, 1),
        ("KdDebuggerDataBlock", 0x60, 4),
        ("ExceptionCode", 0x7D0, 4),
        ("ExceptionAddress", 0x7DC, 4),
        ("DumpType", 0xF88, 4),
        ("RequiredDumpSpace", 0xFA0, 8),
        ("SystemUpTime", 0xFB8, 8),
        ("SystemTime", 0xFC0, 8),
    ),
    context=0x320,
    runs=0x64,
    run_size=8,
)


@dataclass
class Header:
    """The fields read (by name), the layout they were read with, and the names that could not be read
    (the file ends before them)."""

    layout: Layout
    values: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def get(self, name: str) -> int | None:
        return self.values.get(name)

    @property
    def bits(self) -> int:
        return self.layout.bits

    @property
    def dump_type(self) -> int | None:
        return self.values.get("DumpType")

    @property
    def bugcheck_args(self) -> tuple[int, ...]:
        return tuple(
            self.values[f"BugCheckParameter{n}"]
            for n in range(1, 5)
            if f"BugCheckParameter{n}" in self.values
        )

    @property
    def machine(self) -> str:
        value = self.values.get("MachineImageType")
        return MACHINES.get(value or -1, f"machine {value:#x}" if value is not None else "unknown machine")


def read_header(dump: DumpFile, bits: int) -> Header:
    """Every field of the header that lies inside the file."""
    layout = HEADER64 if bits == 64 else HEADER32
    header = Header(layout)
    for name, offset, size in layout.fields:
        raw = dump.read(offset, size)
        if len(raw) < size:
            header.missing.append(name)
        else:
            header.values[name] = int.from_bytes(raw, "little")
    return header


def describe_type(dump_type: int | None) -> str:
    if dump_type is None:
        return "unknown type (not read)"
    return DUMP_TYPES.get(dump_type, f"unknown type {dump_type}")


def filetime_text(value: int | None) -> str | None:
    """A FILETIME (100 ns since 1601-01-01 UTC) as ISO 8601, or ``None`` when absent or out of range."""
    if not value:
        return None
    import datetime

    try:
        moment = datetime.datetime(1601, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(
            microseconds=value // 10
        )
    except OverflowError:
        return None
    return moment.isoformat().replace("+00:00", "Z")
