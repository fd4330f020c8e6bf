"""A kernel crash dump as records, the same ones the text parsers give for ``!analyze`` output: the bug
check (``BugCheckRecord``, form ``dump-header``), the loaded and unloaded drivers (``ModuleListRecord``)
and, in a triage dump, the stack (``StackRecord``) built from the call-stack region: the context's
instruction pointer, then every pointer-sized value in the region that falls inside a loaded driver
(return addresses; no unwinding, so a data pointer into a driver's image can show up too, as in ``dps``).

The reader also writes a text view of what it read, one field per line with its file offset
(``+0x0038 BugCheckCode 0x000000c4``): the lines the triage view shows for the dump and that every
record's span points at, besides the field's byte offset. Whatever cannot be read (a cut-off file, a
count larger than the file, a page table pointing outside it, a looping module list) becomes an ``error``
diagnostic naming it, and everything else is still reported.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field

from parsers.dump.fileview import DumpFile
from parsers.dump.header import Header, describe_type, filetime_text, read_header
from parsers.dump.memory import VirtualMemory, physical_map
from parsers.dump.modules import file_part, walk_loaded_modules
from parsers.dump.strings import Memory, argument_strings
from parsers.dump.triage import BlockMemory, DriverEntry, Triage, read_triage
from parsers.records import (
    BugCheckRecord,
    Diagnostic,
    MemoryStringRecord,
    ModuleEntry,
    ModuleListRecord,
    Record,
    Severity,
    Span,
    StackFrame,
    StackRecord,
)
from parsers.source import Source

MAX_FRAMES = 64


@dataclass
class DumpContent:
    """The text view of a dump and the records whose spans point into it."""

    path: str
    lines: list[str] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)

    def add(self, text: str) -> int:
        self.lines.append(text)
        return len(self.lines)

    def span(self, first: int, last: int | None = None, offset: int | None = None) -> Span:
        return Span(self.path, first, first if last is None else last, offset)

    def problem(self, message: str, offset: int | None = None, severity: Severity = "error") -> None:
        line = self.add(f"! {message}")
        self.records.append(Diagnostic(self.span(line, offset=offset), message, severity))


def read_dump(source: Source) -> DumpContent:
    """Everything readable in the dump behind ``source``; ``OSError`` only if it cannot be opened."""
    content = DumpContent(source.name)
    with DumpFile.open(source) as dump:
        bits = 64 if dump.read(0, 8) == b"PAGEDU64" else 32
        header = read_header(dump, bits)
        _header_lines(content, header, dump.size)
        triage = read_triage(dump, header.bits, header.machine) if header.dump_type == 4 else None
        if triage is not None:
            drivers, offset = _triage_drivers(content, triage), triage.fields.get("DriverListOffset")
            origin = "the dump's driver list"
        else:
            memory = _memory(content, dump, header)
            drivers = _walked(content, memory, header) if memory is not None else []
            offset, origin = header.layout.offset("PsLoadedModuleList"), "the dump's PsLoadedModuleList"
            if memory is not None:
                _argument_strings(content, memory, header)
                _os_version(content, memory)
        if drivers:
            _module_list(content, drivers, offset, origin)
        source.bytes_read = dump.size  # read where needed, but all of it accounted for
        if triage is not None:
            _stack(content, header, triage, drivers)
            _argument_strings(content, BlockMemory(dump, triage.blocks, header.bits), header)
    return content


def _hex(value: int, size: int) -> str:
    return f"0x{value:0{size * 2}x}"


def _header_lines(content: DumpContent, header: Header, size: int) -> None:
    content.add(
        f"Windows kernel crash dump, {header.bits}-bit, {header.machine}, "
        f"{describe_type(header.dump_type)} (DumpType {header.dump_type}), {size} bytes"
    )
    lines: dict[str, int] = {}
    for name, offset, width in header.layout.fields:
        if name in header.values:
            lines[name] = content.add(f"+0x{offset:04x} {name:<22} {_hex(header.values[name], width)}")
    build, major = header.get("MinorVersion"), header.get("MajorVersion")
    if build is not None and major is not None:
        kind = {0xF: "free", 0xC: "checked"}.get(major, f"MajorVersion {major:#x}")
        content.add(f"Windows build {build} ({kind} build), {header.get('NumberProcessors')} processor(s)")
    when = filetime_text(header.get("SystemTime"))
    if when:
        content.add(f"System time {when}")
    content.records.append(Diagnostic(content.span(1), _summary(header, when), "info"))
    if header.missing:
        first = header.layout.offset(header.missing[0])
        content.problem(
            f"the dump ends at {size} bytes, inside its header: {', '.join(header.missing)} not read",
            first,
        )
    if "BugCheckCode" in lines:
        args = header.bugcheck_args
        last = lines.get(f"BugCheckParameter{len(args)}", lines["BugCheckCode"])
        content.records.append(
            BugCheckRecord(
                content.span(lines["BugCheckCode"], last, header.layout.offset("BugCheckCode")),
                "dump-header",
                header.values["BugCheckCode"],
                args,
                pointer_bits=header.bits,
            )
        )


def _summary(header: Header, when: str | None) -> str:
    """What the header says about the machine and the dump, for the report's inputs section."""
    parts = [f"{header.bits}-bit {header.machine} kernel dump, {describe_type(header.dump_type)}"]
    if header.get("MinorVersion") is not None:
        parts.append(f"Windows build {header.get('MinorVersion')}")
    if header.get("NumberProcessors") is not None:
        parts.append(f"{header.get('NumberProcessors')} processor(s)")
    if when:
        parts.append(f"system time {when}")
    for name in ("PsLoadedModuleList", "KdDebuggerDataBlock"):
        if header.get(name) is not None:
            parts.append(f"{name} {header.get(name):#x}")
    return ", ".join(parts)


def _triage_drivers(content: DumpContent, triage: Triage) -> list[DriverEntry]:
    content.add("Triage dump: " + ", ".join(f"{name} 0x{value:x}" for name, value in triage.fields.items()))
    for problem in triage.problems:
        content.problem(problem)
    for note in triage.notes:
        content.problem(note, severity="warning")
    return triage.drivers + triage.unloaded


def _memory(content: DumpContent, dump: DumpFile, header: Header) -> VirtualMemory | None:
    """The dump's virtual memory, or ``None`` (said in a diagnostic) when it holds none or gives no tables."""
    if header.machine not in ("x64", "x86"):
        content.problem(
            f"the page tables of {header.machine} dumps are not read (x64 and x86 only): the loaded drivers"
            " are not known; open the dump in WinDbg and analyse its !analyze -v and lm output"
        )
        return None
    pages, why = physical_map(dump, header)
    if pages is None:
        content.problem(
            why
            or f"a {describe_type(header.dump_type)} dump holds no memory: the loaded drivers are not known"
        )
        return None
    if why:
        content.problem(why, severity="warning")
    dtb = header.get("DirectoryTableBase")
    if dtb is None:
        content.problem("the header gives no page tables: the loaded drivers are not known")
        return None
    return VirtualMemory(dump, pages, dtb, header.bits, bool(header.get("PaeEnabled")))


def _walked(content: DumpContent, memory: VirtualMemory, header: Header) -> list[DriverEntry]:
    head = header.get("PsLoadedModuleList")
    if not head:
        content.problem("the header gives no PsLoadedModuleList: the loaded drivers are not known")
        return []
    modules, stopped = walk_loaded_modules(memory, head)
    if stopped:
        content.problem(
            f"{stopped}; {len(modules)} loaded module(s) read", header.layout.offset("PsLoadedModuleList")
        )
    return [DriverEntry(m.name, m.base, m.size, m.entry) for m in modules]


#: ``KUSER_SHARED_DATA`` (WDK ``ntddk.h``), mapped at the same address in every process: ``NtMajorVersion``
#: at +0x26C, ``NtMinorVersion`` at +0x270.
_SHARED_DATA = {64: 0xFFFFF780_00000000, 32: 0xFFDF0000}


def _os_version(content: DumpContent, memory: VirtualMemory) -> None:
    """Windows' major and minor version, which the dump header does not carry (it has the build only)."""
    data = memory.read(_SHARED_DATA[memory.bits] + 0x26C, 8)
    if data is None:
        return
    major, minor = int.from_bytes(data[:4], "little"), int.from_bytes(data[4:], "little")
    if 5 <= major <= 10 and minor <= 3:  # NT 5.0 (2000) to 10.0: anything else is not this field
        line = content.add(f"Windows version {major}.{minor} (KUSER_SHARED_DATA)")
        content.records.append(Diagnostic(content.span(line), f"Windows version {major}.{minor}", "info"))


def _argument_strings(content: DumpContent, memory: Memory, header: Header) -> None:
    """``dS``/``da`` of the bug check's arguments, as an engineer would type them in the debugger."""
    for found in argument_strings(memory, header.bugcheck_args):
        field = f"BugCheckParameter{found.index + 1}"
        line = content.add(f"{found.command} Arg{found.index + 1} {found.address:#x}: {found.text!r}")
        span = content.span(line, offset=header.layout.offset(field))
        content.records.append(MemoryStringRecord(span, found.command, found.address, found.text))


def _stem(name: str) -> str:
    base = file_part(name)
    return base.rsplit(".", 1)[0] if "." in base else base


def _module_list(content: DumpContent, drivers: list[DriverEntry], offset: int | None, source: str) -> None:
    entries = []
    first = len(content.lines) + 1
    for driver in drivers:
        state = "unloaded " if driver.unloaded else ""
        line = content.add(
            f"{state}module {driver.base:#x} {driver.base + driver.size:#x} {driver.name}"
            f" (entry at {driver.offset:#x})"
        )
        entries.append(
            ModuleEntry(
                line,
                _stem(driver.name),
                driver.base,
                driver.base + driver.size,
                image_name=file_part(driver.name),
                timestamp=driver.timestamp,
                checksum=driver.checksum,
                image_size=driver.size,
                unloaded=driver.unloaded,
                source=source,
            )
        )
    content.records.append(ModuleListRecord(content.span(first, len(content.lines), offset), tuple(entries)))


def _stack(content: DumpContent, header: Header, triage: Triage, drivers: list[DriverEntry]) -> None:
    loaded = sorted((d for d in drivers if not d.unloaded), key=lambda d: d.base)
    starts = [d.base for d in loaded]

    def inside(address: int) -> DriverEntry | None:
        index = bisect.bisect_right(starts, address) - 1
        return loaded[index] if index >= 0 and address < loaded[index].base + loaded[index].size else None

    width = header.bits // 8
    found: list[tuple[int | None, int, int]] = []  # (stack address, value, file offset)
    if triage.rip is not None:
        found.append((triage.rsp, triage.rip, triage.fields["ContextOffset"]))
    top = triage.top_of_stack or 0
    for position in range(0, len(triage.stack) - width + 1, width):
        value = int.from_bytes(triage.stack[position : position + width], "little")
        if inside(value) is not None:
            found.append((top + position, value, triage.stack_offset + position))
        if len(found) >= MAX_FRAMES:
            break
    frames = []
    for index, (child_sp, value, offset) in enumerate(found):
        module = inside(value)
        site = f"{_stem(module.name)}+0x{value - module.base:x}" if module else f"0x{value:x}"
        digits = width * 2
        text = f"{index:02x} {child_sp or 0:0{digits}x} {value:0{digits}x} {site} (file offset {offset:#x})"
        frames.append(
            StackFrame(
                content.add(text),
                text,
                index=index,
                child_sp=child_sp,
                address=value,
                module=_stem(module.name) if module else None,
                offset=value - module.base if module else None,
            )
        )
    if frames:
        content.records.append(
            StackRecord(
                content.span(frames[0].line, frames[-1].line, triage.stack_offset),
                "dump-stack",
                tuple(frames),
            )
        )


def records(source: Source) -> Iterator[Record]:
    yield from read_dump(source).records


def lines(source: Source) -> Iterator[str]:
    yield from read_dump(source).lines
