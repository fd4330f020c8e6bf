"""Strings a bug check's arguments point at, read from the dump's memory as ``dS`` / ``da`` would print
them: the image-compliance 0xC4 subcodes pass the image name as a pointer to a ``UNICODE_STRING`` (Arg2)
and the section name as a pointer to a NUL-terminated byte string (Arg4), which a text log only has when
the engineer dereferenced them. The parser does not know what each argument means (that is the knowledge
base's job, in the engine): it reads every kernel-space argument that holds a well-formed string, and the
classification uses the ones the subcode says are strings.

``UNICODE_STRING`` (``ntdef.h``): ``Length`` and ``MaximumLength`` in bytes (USHORT each), then the buffer
pointer, aligned to the pointer size (at +8 on x64, +4 on x86).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from parsers.dump.modules import MAX_NAME_BYTES

MAX_BYTE_STRING = 64


@dataclass(frozen=True, slots=True)
class ArgString:
    index: int  # 0-based argument index
    command: str  # "dS" | "da"
    address: int
    text: str


class Memory(Protocol):
    """What the strings are read from: a memory dump's page tables or a triage dump's data blocks."""

    bits: int

    def read(self, va: int, size: int) -> bytes | None: ...


def _kernel_space(address: int, bits: int) -> bool:
    return address >= (0xFFFF800000000000 if bits == 64 else 0x80000000)


def _printable(text: str) -> bool:
    return bool(text) and all(ch.isprintable() for ch in text)


def _unicode_string(memory: Memory, address: int) -> str | None:
    width = memory.bits // 8
    header = memory.read(address, 2 * width)
    if header is None:
        return None
    length, maximum = int.from_bytes(header[0:2], "little"), int.from_bytes(header[2:4], "little")
    buffer = int.from_bytes(header[width : 2 * width], "little")
    if not 0 < length <= min(maximum, MAX_NAME_BYTES) or length % 2:
        return None
    data = memory.read(buffer, length)
    text = data.decode("utf-16-le", "replace") if data is not None else None
    return text if text is not None and _printable(text) else None


def _byte_string(memory: Memory, address: int) -> str | None:
    room = min(MAX_BYTE_STRING, 0x1000 - (address & 0xFFF))  # within the page: no read across a hole
    data = memory.read(address, room)
    if data is None or b"\x00" not in data:
        return None
    text = data.split(b"\x00", 1)[0].decode("ascii", "replace")
    return text if _printable(text) else None


def argument_strings(memory: Memory, args: tuple[int, ...]) -> list[ArgString]:
    found = []
    for index, value in enumerate(args):
        if not _kernel_space(value, memory.bits):
            continue
        name = _unicode_string(memory, value)
        if name is not None:
            found.append(ArgString(index, "dS", value, name))
            continue
        text = _byte_string(memory, value)
        if text is not None:
            found.append(ArgString(index, "da", value, text))
    return found
