"""PE headers as the debugger dumps them: ``!dh`` (``-f``, ``-s``, ``-a``) and ``!lmi``.

``!dh`` prints ``FILE HEADER VALUES`` and ``OPTIONAL HEADER VALUES`` as ``<hex> <label>`` lines (section and
file alignment, ``DLL characteristics`` with one decoded flag per line, image base, ``<rva> [<size>] address
[size] of ... Directory`` lines) and a ``SECTION HEADER #n`` block per section (name, virtual size, virtual
address, ``<hex> flags`` plus decoded lines). These are exactly the fields the HVCI image rules judge
(alignment, W+X sections, IAT placement), so a dump pasted from a debugger session can be checked like a
``.sys`` file. ``!dh`` never prints the module's name: it comes from the command's argument when the prompt
line is part of the block, or from ``!lmi``'s ``Image Name``/``Module`` lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from parsers.base import Line, LineCursor, read_block
from parsers.deferred import deferred_compile
from parsers.records import Diagnostic, ImageHeaderRecord, Record, SectionHeader, Span

_HEX = r"[0-9a-fA-F`]+"
_COMMAND = deferred_compile(r">\s*!(?P<cmd>dh|lmi)\b(?P<args>[^\r\n]*)", re.IGNORECASE)
_FILE_TYPE = deferred_compile(r"^\s*File Type:")
_FILE_HEADER = deferred_compile(r"^\s*FILE HEADER VALUES")
_OPTIONAL_HEADER = deferred_compile(r"^\s*OPTIONAL HEADER VALUES")
_SECTION = deferred_compile(r"^\s*SECTION HEADER #(?P<index>\d+)")
_LMI = deferred_compile(r"^\s*Loaded Module Info:\s*\[(?P<name>[^\]]*)\]")
_VALUE = deferred_compile(rf"^\s*(?P<value>{_HEX})\s+(?P<label>\S.*)$")
_DIRECTORY = deferred_compile(
    rf"^\s*(?P<rva>{_HEX})\s*\[\s*(?P<size>{_HEX})\s*\]\s*address \[size\] of (?P<name>.+)$"
)
_SECTION_NAME = deferred_compile(r"^\s*(?P<name>\S*)\s+name$")
_KEY_VALUE = deferred_compile(r"^\s*(?P<key>[A-Za-z][A-Za-z ]*?)\s*:\s*(?P<value>.*)$")
_DEBUG_DIRS = deferred_compile(r"^\s*Debug Directories\s*\(\d+\)")
# Labels that a !dh value line may carry at the start of a line (the rest of !dh is indented).
_LABELS = deferred_compile(
    r"^(?:time date stamp|image base|flags|size of|machine|number of|magic|linker version|address of|base of"
    r"|section alignment|file alignment|subsystem|operating system|image version|checksum|DLL characteristics"
    r"|characteristics|virtual (?:size|address)|file pointer|name$|\[)",
)

_MAX_BLOCK_LINES = 50_000
_MAX_LINE = 4_096


def _hex(text: str) -> int | None:
    try:
        return int(text.replace("`", ""), 16)
    except ValueError:
        return None


_ADDRESS = deferred_compile(r"(?:0x)?(?P<digits>[0-9a-fA-F`]{8,17})")


def _target_from_args(args: str) -> tuple[str | None, int | None]:
    """``!dh -f nt`` -> (``nt``, None); an address argument (``!dh fffff801`7b2c0000``, as the collectors
    send it: ``!dh 0xfffff8017b2c0000``) names no module: (None, the address)."""
    words = [w for w in args.split() if not w.startswith("-")]
    if not words:
        return None, None
    target = words[-1]
    address = _ADDRESS.fullmatch(target)
    if address:
        return None, int(address["digits"].replace("`", ""), 16)
    return target, None


@dataclass
class _Section:
    index: int
    line: int
    name: str | None = None
    virtual_size: int | None = None
    virtual_address: int | None = None
    characteristics: int | None = None


@dataclass
class _Dump:
    module: str | None = None
    address: int | None = None
    machine: int | None = None
    image_base: int | None = None
    section_alignment: int | None = None
    file_alignment: int | None = None
    dll_characteristics: int | None = None
    iat_rva: int | None = None
    iat_size: int | None = None
    sections: list[_Section] = field(default_factory=list)
    seen_file_type: bool = False
    seen_file_header: bool = False
    seen_lmi: bool = False
    read_anything: bool = False


class ImageDumpParser:
    """Reads one ``!dh``/``!lmi`` dump into an :class:`ImageHeaderRecord`."""

    name = "imagedump"
    trigger = (
        r"^[\s0-9:]*kd> !(?:dh|lmi)\b|^\s*File Type:\s+(?:EXECUTABLE IMAGE|DLL)|^\s*FILE HEADER VALUES"
        r"|^\s*OPTIONAL HEADER VALUES|^\s*SECTION HEADER #\d+|^\s*Loaded Module Info:\s*\["
    )

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        if len(first.text) > _MAX_LINE:
            yield Diagnostic(
                Span(cursor.path, first.number, first.number),
                f"{self.name}: {len(first.text)}-character line is too long for this block; skipped",
            )
            return
        dump = _Dump()
        command = _COMMAND.search(first.text)
        if command:
            dump.module, dump.address = _target_from_args(command.group("args"))
        else:
            self._take(dump, first.text, first.number)
        end = read_block(
            cursor,
            first,
            lambda line, _after_blank: (
                self._belongs(dump, line.text) and self._take(dump, line.text, line.number)
            ),
            limit=_MAX_BLOCK_LINES,
        )
        yield from self._records(dump, Span(cursor.path, first.number, end.last_line))

    def _belongs(self, dump: _Dump, text: str) -> bool:
        """Whether a line continues this dump (a second dump's own start ends this one)."""
        if len(text) > _MAX_LINE or _COMMAND.search(text):
            return False
        started = bool(dump.sections) or dump.seen_file_header or dump.seen_lmi
        if _FILE_TYPE.match(text):
            return not (started or dump.seen_file_type)
        if _FILE_HEADER.match(text) or _LMI.match(text):
            return not started
        section = _SECTION.match(text)
        if section:
            return not any(s.index == int(section.group("index")) for s in dump.sections)
        if text[:1] in (" ", "\t"):
            return True
        value = _VALUE.match(text)
        return bool(
            (value and _LABELS.match(value.group("label")))
            or _OPTIONAL_HEADER.match(text)
            or _DEBUG_DIRS.match(text)
            or _SECTION_NAME.match(text)
            or _KEY_VALUE.match(text)
            and dump.module is not None
            and dump.sections == []
            and not dump.seen_file_header
        )

    def _take(self, dump: _Dump, text: str, number: int) -> bool:
        """Fold one line into ``dump``; always ``True`` (lines that carry no field are part of the dump)."""
        text = text.rstrip()
        if _FILE_TYPE.match(text):
            dump.seen_file_type = True
            return True
        if _FILE_HEADER.match(text):
            dump.seen_file_header = True
            return True
        if lmi := _LMI.match(text):
            dump.seen_lmi = True
            dump.module = dump.module or (lmi.group("name").strip() or None)
            dump.read_anything = True
            return True
        if section := _SECTION.match(text):
            dump.sections.append(_Section(int(section.group("index")), number))
            return True
        if directory := _DIRECTORY.match(text):
            if directory.group("name").strip().lower().startswith("import address table"):
                dump.iat_rva, dump.iat_size = _hex(directory.group("rva")), _hex(directory.group("size"))
            dump.read_anything = True
            return True
        current = dump.sections[-1] if dump.sections else None
        if current is not None and current.name is None and (name := _SECTION_NAME.match(text)):
            current.name = name.group("name")
            return True
        if value := _VALUE.match(text):
            self._value(dump, current, _hex(value.group("value")), value.group("label").strip())
            return True
        if key_value := _KEY_VALUE.match(text):
            key, val = key_value.group("key").strip().lower(), key_value.group("value").strip()
            if key == "image name" and val or key == "module" and val and dump.module is None:
                dump.module = val
            elif key == "base address":
                dump.image_base = _hex(val.split()[0]) if val else None
                dump.read_anything = True
        return True

    def _value(self, dump: _Dump, current: _Section | None, value: int | None, label: str) -> None:
        label = label.lower()
        if value is None:
            return
        if current is not None:
            if label == "virtual size":
                current.virtual_size = value
            elif label == "virtual address":
                current.virtual_address = value
            elif label == "flags":
                current.characteristics = value
            return
        dump.read_anything = True
        if label == "image base":
            dump.image_base = value
        elif label.startswith("machine"):
            dump.machine = value
        elif label == "section alignment":
            dump.section_alignment = value
        elif label == "file alignment":
            dump.file_alignment = value
        elif label == "dll characteristics":
            dump.dll_characteristics = value

    def _records(self, dump: _Dump, span: Span) -> Iterator[Record]:
        sections: list[SectionHeader] = []
        for section in dump.sections:
            if (
                section.name is None
                or section.virtual_size is None
                or section.virtual_address is None
                or section.characteristics is None
            ):
                yield Diagnostic(
                    Span(span.path, section.line, span.last_line),
                    f"imagedump: SECTION HEADER #{section.index} is incomplete (truncated dump?)",
                )
                continue
            sections.append(
                SectionHeader(
                    section.name, section.virtual_address, section.virtual_size, section.characteristics
                )
            )
        if not dump.read_anything and not sections:
            yield Diagnostic(span, "imagedump: image header dump without any readable header field")
            return
        yield ImageHeaderRecord(
            span=span,
            module=dump.module,
            machine=dump.machine,
            image_base=dump.image_base,
            section_alignment=dump.section_alignment,
            file_alignment=dump.file_alignment,
            dll_characteristics=dump.dll_characteristics,
            iat_rva=dump.iat_rva,
            iat_size=dump.iat_size,
            sections=tuple(sections),
            address=dump.address,
        )


PARSER = ImageDumpParser()
