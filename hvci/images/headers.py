"""What the load-time rules read about an image, from either source: a parsed ``.sys`` (``symbols.pe``) or a
debugger's ``!dh`` header dump (``parsers.records.ImageHeaderRecord``), so one predicate judges both."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from parsers.records import ImageHeaderRecord, SectionHeader

if TYPE_CHECKING:
    from symbols.pe import PeImage

#: Machines whose images are PE32 (the rest are PE32+).
PE32_MACHINES = frozenset({"x86", "arm"})


class ImageHeaders(msgspec.Struct, frozen=True):
    """What the load-time rules read; ``None`` means the input did not show it.

    ``from_dump`` marks headers printed by a debugger, where a missing field means "not printed" rather than
    "absent from the image".

    ``relocations`` holds ``(rva, type)`` per base-relocation entry; ``pe32_plus`` is taken from the machine
    when not given. ``import_directory`` (data directory 1) only feeds a note about BinSkim's variant of the
    IAT rule.
    """

    module: str | None
    machine: str | None
    section_alignment: int | None
    dll_characteristics: int | None
    iat: tuple[int, int] | None
    sections: tuple[SectionHeader, ...]
    relocations: tuple[tuple[int, int], ...] | None
    pe32_plus: bool | None = None
    import_directory: tuple[int, int] | None = None
    from_dump: bool = False
    relocations_complete: bool = True  # False: a damaged reloc directory; ``relocations`` is what was read

    @classmethod
    def from_pe(cls, pe: PeImage, module: str | None = None) -> ImageHeaders:
        sections = tuple(
            SectionHeader(s.name, s.virtual_address, s.virtual_size, s.characteristics) for s in pe.sections
        )
        return cls(
            module=module,
            machine=pe.machine,
            section_alignment=pe.section_alignment,
            dll_characteristics=pe.dll_characteristics,
            iat=pe.iat_directory,
            sections=sections,
            relocations=tuple((r.rva, r.type) for r in pe.relocations),
            pe32_plus=pe.is_pe32_plus,
            import_directory=pe.import_directory,
            relocations_complete=pe.relocations_complete,
        )

    @classmethod
    def from_record(cls, record: ImageHeaderRecord) -> ImageHeaders:
        from symbols.pe import MACHINES  # (pefile: only for a !dh dump, not for every log with a crash)

        iat = (record.iat_rva, record.iat_size or 0) if record.iat_rva is not None else None
        machine = None if record.machine is None else MACHINES.get(record.machine, f"{record.machine:#06x}")
        return cls(
            module=record.module,
            machine=machine,
            section_alignment=record.section_alignment,
            dll_characteristics=record.dll_characteristics,
            iat=iat,
            sections=record.sections,
            relocations=None,
            from_dump=True,
        )

    @property
    def is_pe32_plus(self) -> bool | None:
        if self.pe32_plus is not None:
            return self.pe32_plus
        if self.machine is None:
            return None
        return self.machine not in PE32_MACHINES
