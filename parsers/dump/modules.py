"""The loaded drivers of a full, kernel or bitmap dump: ``PsLoadedModuleList`` walked through the dump's
own page tables, by our own bounded walker.

Why our own walker and not kdmp-parser (``benchmarks/bench_dumps.py`` runs both on the same generated
dumps, each in a child process): kdmp-parser maps the whole file and builds a hash table of every physical
page before the first read, so its start-up grows with the dump; on a 1 GB full dump (262,144 pages,
180 modules) it took 63 ms and 24 MB to translate the module list's entries, our walker 2.4 ms and 14 MB,
reading only the dozen pages it needs (at 67 MB kdmp-parser was faster, 1.0 ms against 9.2 ms; a
``MEMORY.DMP`` is gigabytes). It also prints its diagnostics from C to stdout and, being native code
reading hostile input, would have to run in a child process; the walker below stays in the process and
cannot crash it. kdmp-parser remains the independent reader the tests compare our page maps and
translations with.

``KLDR_DATA_TABLE_ENTRY`` fields used (stable since Windows XP; rizin ``dmp_specs.h``
``dmp_kldr_data_table_entry64/32``, Volatility's ``_LDR_DATA_TABLE_ENTRY``): ``InLoadOrderLinks`` at 0,
``DllBase`` at 0x30 (x86: 0x18), ``SizeOfImage`` at 0x40 (0x20), ``FullDllName`` at 0x48 (0x24) and
``BaseDllName`` at 0x58 (0x2C), ``UNICODE_STRING`` s whose buffer pointer is at +8 (+4). The name is
``BaseDllName``, or the file part of ``FullDllName`` when the base name cannot be read.

The walk stops at the list head, at an entry already seen (a cycle), at an entry it cannot read, or after
:data:`MAX_MODULES` entries; each stop other than the head is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from parsers.dump.memory import VirtualMemory

MAX_MODULES = 4096
MAX_NAME_BYTES = 520  # 260 characters: MAX_PATH


@dataclass(frozen=True, slots=True)
class LoadedModule:
    name: str
    base: int
    size: int
    entry: int  # virtual address of the loader entry (evidence)
    timestamp: int | None = None
    checksum: int | None = None


_FIELDS = {64: (0x30, 0x40, 0x58, 8, 0x68), 32: (0x18, 0x20, 0x2C, 4, 0x34)}


def file_part(path: str) -> str:
    """``\\SystemRoot\\system32\\drivers\\x.sys`` -> ``x.sys``."""
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _int(data: bytes, offset: int, size: int) -> int:
    return int.from_bytes(data[offset : offset + size], "little")


def unicode_string(memory: VirtualMemory, length: int, buffer: int) -> str | None:
    if not 0 < length <= MAX_NAME_BYTES:
        return None
    data = memory.read(buffer, length & ~1)
    return data.decode("utf-16-le", "replace") if data is not None else None


def walk_loaded_modules(memory: VirtualMemory, head: int) -> tuple[list[LoadedModule], str | None]:
    """The modules in load order, and why the walk stopped early (``None`` when it came back to the
    head)."""
    base_at, size_at, name_at, pointer, entry_size = _FIELDS[memory.bits]
    modules: list[LoadedModule] = []
    link = memory.pointer(head)
    if link is None:
        return modules, f"PsLoadedModuleList (0x{head:x}) is not in the dump's memory"
    seen = {head}
    while link != head:
        if link in seen:
            return modules, f"the module list loops back to 0x{link:x} after {len(modules)} entries"
        if len(modules) >= MAX_MODULES:
            return modules, f"the module list has more than {MAX_MODULES} entries; the rest are not read"
        seen.add(link)
        data = memory.read(link, entry_size)
        if data is None:
            return modules, f"the loader entry at 0x{link:x} is not in the dump's memory"
        name = None
        for field_at in (name_at, name_at - 2 * pointer):  # BaseDllName, else FullDllName's last part
            length, buffer = _int(data, field_at, 2), _int(data, field_at + pointer, pointer)
            name = unicode_string(memory, length, buffer)
            if name:
                name = file_part(name)
                break
        base, size = _int(data, base_at, pointer), _int(data, size_at, 4)
        modules.append(LoadedModule(name or f"<unnamed at 0x{base:x}>", base, size, link))
        link = _int(data, 0, pointer)
    return modules, None
