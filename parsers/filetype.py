"""What a file is, from its first bytes: the one sniffer every front end goes through.

Test labs collect crash dumps, binary event logs and archives next to their text logs, and users pass
them to ``analyze`` by mistake or on purpose. Reading any of them as cp1252 text finds nothing and would
call a crashed machine clean, so every input is sniffed first (magic numbers, then a text test) and
gets one of three fates:

* read by a reader we have (``reader``): text logs, kernel crash dumps, ``.evtx`` event logs;
* an input we cannot read (archives, user-mode minidumps, PE images, PDBs, other binaries): one line
  that names what the file is and what to do with it (:attr:`FileType.message`), never "clean";
* text that happens to hold a few NUL bytes (a serial-port capture of a KD session) stays text;
* bytes that match no magic number and do not look like text are still read as text (a log may follow
  line noise), but with an ``error`` diagnostic saying they are binary data, so that nothing found in them
  is ever called clean.

Magic numbers: ZIP ``PK\\x03\\x04`` (APPNOTE 4.3.7), gzip ``1F 8B 08`` (RFC 1952 2.3.1), 7z
``7z\\xBC\\xAF\\x27\\x1C``, cabinet ``MSCF`` and four zero bytes, tar ``ustar`` at offset 257 (POSIX.1),
xz ``FD 37 7A 58 5A 00``, RAR ``Rar!\\x1A\\x07``, zstd ``28 B5 2F FD``; Windows kernel dumps ``PAGEDU64`` /
``PAGEDUMP`` (``DUMP_HEADER64``/``DUMP_HEADER32``), user-mode minidumps ``MDMP`` + version ``0xA793``
(``MINIDUMP_HEADER``), ``.evtx`` ``ElfFile\\0`` (the EVTX file header), the older ``.evt`` ``LfLe`` at
offset 4, PE ``MZ`` with ``PE\\0\\0`` at ``e_lfanew``, PDB ``Microsoft C/C++ MSF 7.00``, ELF ``\\x7FELF``.
"""

from __future__ import annotations

import struct

import msgspec

#: Bytes read from the start of an input to decide what it is (and, for text, its encoding).
HEAD_BYTES = 4096

#: A text head may hold this share of control bytes other than NUL (tabs, newlines, ESC, BS, BEL excluded),
#: and this share of NUL bytes (outside UTF-16).
_MAX_CONTROL_SHARE = 0.03
_MAX_NUL_SHARE = 0.25

_TEXT_CONTROLS = frozenset(b"\t\n\r\x0b\x0c\x1b\x08\x07")
_BINARY_BYTES = bytes(b for b in range(32) if b not in _TEXT_CONTROLS and b != 0) + b"\x7f"


class FileType(msgspec.Struct, frozen=True):
    """What an input is. ``reader`` names the reader that handles it (``text``, ``kernel-dump``,
    ``evtx``) or is ``None`` when no reader of ours can; ``advice`` then says what to do instead."""

    kind: str  # short id, e.g. "text", "kernel-dump-64", "zip-archive", "pe-image"
    what: str  # what the file is, for people ("a ZIP archive")
    reader: str | None = "text"
    advice: str = ""
    textual: bool = True  # False: read as text only in case a log hides in it, with a diagnostic

    @property
    def message(self) -> str:
        """The one-line diagnostic for an input no reader takes."""
        return f"{self.what}, not a text log" + (f": {self.advice}" if self.advice else "")


TEXT = FileType("text", "text")

_ARCHIVE_ADVICE = "extract it and analyse the files inside (or the folder they are in)"
_DECOMPRESS = "decompress it ({}) and analyse the result"

#: (offset, magic, file type), checked in order.
_MAGIC: tuple[tuple[int, bytes, FileType], ...] = (
    (0, b"PAGEDU64", FileType("kernel-dump-64", "a 64-bit Windows kernel crash dump", "kernel-dump")),
    (0, b"PAGEDUMP", FileType("kernel-dump-32", "a 32-bit Windows kernel crash dump", "kernel-dump")),
    (
        0,
        b"MDMP\x93\xa7",
        FileType(
            "user-minidump",
            "a user-mode minidump, not a kernel crash",
            None,
            "open it in WinDbg or Visual Studio; kernel crashes are in C:\\Windows\\Minidump or MEMORY.DMP",
        ),
    ),
    (0, b"ElfFile\x00", FileType("evtx", "a Windows event log (.evtx)", "evtx")),
    (
        4,
        b"LfLe",
        FileType(
            "evt",
            "a pre-Vista Windows event log (.evt)",
            None,
            "export it as XML (wevtutil qe /lf:true FILE /f:xml) and analyse the export",
        ),
    ),
    (0, b"PK\x03\x04", FileType("zip-archive", "a ZIP archive", None, _ARCHIVE_ADVICE)),
    (0, b"PK\x05\x06", FileType("zip-archive", "an empty ZIP archive", None, _ARCHIVE_ADVICE)),
    (0, b"\x1f\x8b\x08", FileType("gzip", "a gzip-compressed file", None, _DECOMPRESS.format("gunzip"))),
    (0, b"7z\xbc\xaf\x27\x1c", FileType("7z-archive", "a 7-Zip archive", None, _ARCHIVE_ADVICE)),
    (
        0,
        b"MSCF\x00\x00\x00\x00",
        FileType("cab-archive", "a cabinet (.cab) archive", None, _ARCHIVE_ADVICE + " (expand -F:*)"),
    ),
    (257, b"ustar", FileType("tar-archive", "a tar archive", None, _ARCHIVE_ADVICE)),
    (0, b"\xfd7zXZ\x00", FileType("xz", "an xz-compressed file", None, _DECOMPRESS.format("unxz"))),
    (0, b"Rar!\x1a\x07", FileType("rar-archive", "a RAR archive", None, _ARCHIVE_ADVICE)),
    (0, b"\x28\xb5\x2f\xfd", FileType("zstd", "a zstd-compressed file", None, _DECOMPRESS.format("unzstd"))),
    (
        0,
        b"Microsoft C/C++ MSF 7.00",
        FileType(
            "pdb",
            "a PDB symbol file",
            None,
            "pass its folder with --images DIR or a symbol path with --symbols to resolve callers",
        ),
    ),
    (0, b"\x7fELF", FileType("elf", "an ELF executable", None, "Windows logs, dumps and event logs only")),
)

PE_IMAGE = FileType(
    "pe-image",
    "a PE image (driver or executable)",
    None,
    "check a driver image with `hvci-triage scan FILE`",
)
DOS_IMAGE = FileType(
    "mz-image", "an MS-DOS/PE executable (MZ header)", None, "check a driver with `hvci-triage scan FILE`"
)
BINARY = FileType(
    "binary",
    "binary data",
    "text",
    "give a debugger log, verifier output, an event export or a crash dump",
    textual=False,
)
ZEROS = FileType("zeros", "a file of NUL bytes only", None, "was it captured or copied in full?")


def _is_pe(head: bytes) -> bool:
    if len(head) < 0x40:
        return False
    (e_lfanew,) = struct.unpack_from("<I", head, 0x3C)
    return head[e_lfanew : e_lfanew + 4] == b"PE\x00\x00"


def _is_utf16(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    sample = head[:1024]
    pairs = len(sample) // 2
    if pairs < 2:
        return False
    even, odd = sample[0 : 2 * pairs : 2].count(0), sample[1 : 2 * pairs : 2].count(0)
    return (odd >= 0.4 * pairs and even <= 0.05 * pairs) or (even >= 0.4 * pairs and odd <= 0.05 * pairs)


def looks_textual(head: bytes) -> bool:
    """Text in an encoding a debugger log uses: UTF-16 (with or without BOM), or bytes where, NUL bytes
    aside (serial captures and crashed writers leave some), almost nothing is a control character. Random
    bytes have about 9% of them; logs next to none."""
    if not head or _is_utf16(head):
        return True
    rest = head.replace(b"\x00", b"")
    if not rest or len(head) - len(rest) > _MAX_NUL_SHARE * len(head):
        return False
    controls = len(rest) - len(rest.translate(None, _BINARY_BYTES))
    return controls <= _MAX_CONTROL_SHARE * len(rest)


def sniff(head: bytes) -> FileType:
    """The type of a file that starts with ``head`` (give at least :data:`HEAD_BYTES` when the file has
    them; a shorter head is the whole file)."""
    for offset, magic, file_type in _MAGIC:
        if head.startswith(magic, offset):
            return file_type
    if head.startswith(b"MZ") and _is_pe(head):
        return PE_IMAGE
    if looks_textual(head):
        return TEXT
    if head.startswith(b"MZ"):
        return DOS_IMAGE
    return ZEROS if not head.strip(b"\x00") else BINARY
