"""The records :class:`symbols.pe.PeImage` hands out: sections with their flags, imports with their IAT
slots, exports, base relocations and the CodeView record that keys the PDB. Plain values, so that rules,
call-site analysis and symbol lookup can be tested without a PE file.
"""

from __future__ import annotations

import msgspec

IMAGE_SCN_MEM_DISCARDABLE = 0x02000000
IMAGE_SCN_MEM_EXECUTE = 0x20000000
IMAGE_SCN_MEM_READ = 0x40000000
IMAGE_SCN_MEM_WRITE = 0x80000000
IMAGE_SCN_CNT_CODE = 0x00000020


class Section(msgspec.Struct, frozen=True):
    """A section header; ``name`` is its 8 raw bytes decoded as Latin-1 without trailing NULs."""

    name: str
    virtual_address: int
    virtual_size: int
    raw_offset: int
    raw_size: int
    characteristics: int

    @property
    def readable(self) -> bool:
        return bool(self.characteristics & IMAGE_SCN_MEM_READ)

    @property
    def writable(self) -> bool:
        return bool(self.characteristics & IMAGE_SCN_MEM_WRITE)

    @property
    def executable(self) -> bool:
        return bool(self.characteristics & IMAGE_SCN_MEM_EXECUTE)

    @property
    def discardable(self) -> bool:
        return bool(self.characteristics & IMAGE_SCN_MEM_DISCARDABLE)

    @property
    def flags(self) -> str:
        """``RWX``-style summary as WinDbg and dumpbin readers expect (``-`` for a missing right)."""
        rights = (("R", self.readable), ("W", self.writable), ("X", self.executable))
        return "".join(letter if present else "-" for letter, present in rights)

    @property
    def mapped_size(self) -> int:
        """How many bytes the loader maps: the virtual size, or the raw size when the linker left it 0."""
        return self.virtual_size or self.raw_size

    def contains(self, rva: int) -> bool:
        return self.virtual_address <= rva < self.virtual_address + self.mapped_size


class Import(msgspec.Struct, frozen=True):
    """One imported symbol, by ``name`` or by ``ordinal`` (``name`` None); ``iat_rva`` is its IAT slot."""

    dll: str
    name: str | None
    ordinal: int | None
    iat_rva: int


class Export(msgspec.Struct, frozen=True):
    """An exported symbol. ``forwarder`` is set (and ``rva`` points at its text) for forwarded exports."""

    name: str | None
    ordinal: int
    rva: int
    forwarder: str | None = None


class Relocation(msgspec.Struct, frozen=True):
    """A base relocation: the RVA it patches, its type (3 HIGHLOW, 10 DIR64, ...) and its block's page RVA."""

    rva: int
    type: int
    block_rva: int


class CodeView(msgspec.Struct, frozen=True):
    """The CodeView RSDS record: the PDB the linker wrote and the GUID + age that identify it.

    ``guid`` is the canonical upper-case form with dashes (``5EB305B7-2EAE-48AE-9B07-F718F663A473``).
    """

    pdb_name: str
    guid: str
    age: int

    @property
    def debug_id(self) -> str:
        """symbolic's identifier: lower-case GUID with dashes, ``-``, age in hex."""
        return f"{self.guid.lower()}-{self.age:x}"

    @property
    def store_key(self) -> str:
        """The symbol-store directory name: GUID upper-case without dashes, then the age in upper-case hex."""
        return f"{self.guid.replace('-', '')}{self.age:X}"
