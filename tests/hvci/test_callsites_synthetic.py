"""Call shapes no fixture has, in a PE32+ image assembled here byte by byte: an import thunk (GNU ld's
``jmp [IAT]`` stub) called directly, ``mov rax,[IAT]`` + ``call rax``, and a routine pointer obtained from
``MmGetSystemRoutineAddress`` with a name built by ``RtlInitUnicodeString``, stored in a global and called
through it from another function."""

from __future__ import annotations

import struct
from collections.abc import Callable

from hvci.images.callsites import EXECUTABLE, SAFE, UNKNOWN, CallSite, analyse_calls
from symbols.pe import PeImage

TEXT, DATA = 0x1000, 0x2000
IAT = {"ExAllocatePoolWithTag": 0x2000, "MmGetSystemRoutineAddress": 0x2008, "RtlInitUnicodeString": 0x2010}
ILT, IMPORTS, DLL_NAME, HINTS, WIDE_NAME, GLOBAL = 0x2020, 0x2040, 0x2100, 0x2110, 0x2190, 0x21E0

Piece = bytes | Callable[[int], bytes]  # a callable gets its own RVA (for rip-relative displacements)


def rip(prefix: str, target: int, suffix: bytes = b"") -> Callable[[int], bytes]:
    """An instruction with a rip-relative ``disp32`` operand aimed at ``target``."""
    head = bytes.fromhex(prefix)

    def encode(at: int) -> bytes:
        end = at + len(head) + 4 + len(suffix)
        return head + struct.pack("<i", target - end) + suffix

    return encode


def assemble(pieces: list[Piece]) -> tuple[bytes, dict[int, int]]:
    """The code, and the RVA where each piece starts (keyed by its index)."""
    code, where = b"", {}
    for index, piece in enumerate(pieces):
        where[index] = TEXT + len(code)
        code += piece if isinstance(piece, bytes) else piece(TEXT + len(code))
    return code, where


def program() -> tuple[bytes, dict[str, int]]:
    thunk_at = TEXT + 0x100
    a = [  # routine pointer by name, kept in a global
        bytes.fromhex("4883ec38"),  # sub rsp, 0x38
        rip("488d15", WIDE_NAME),  # lea rdx, [rip+L"ExAllocatePoolWithTag"]
        bytes.fromhex("488d4c2420"),  # lea rcx, [rsp+0x20]
        rip("ff15", IAT["RtlInitUnicodeString"]),
        bytes.fromhex("488d4c2420"),  # lea rcx, [rsp+0x20]
        rip("ff15", IAT["MmGetSystemRoutineAddress"]),
        rip("488905", GLOBAL),  # mov [rip+global], rax
        bytes.fromhex("4883c438c3cc"),  # add rsp, 0x38; ret; int3
    ]
    b = [  # tail call through the global: NonPagedPool
        bytes.fromhex("31c9"),  # xor ecx, ecx
        bytes.fromhex("ba40000000"),  # mov edx, 0x40
        rip("ff25", GLOBAL),  # jmp [rip+global]
        bytes.fromhex("cc"),
    ]
    d = [  # call the thunk with NonPagedPoolNx
        bytes.fromhex("4883ec28b900020000"),  # sub rsp, 0x28; mov ecx, 0x200
        lambda at: b"\xe8" + struct.pack("<i", thunk_at - (at + 5)),  # call thunk
        bytes.fromhex("4883c428c3cc"),  # add rsp, 0x28; ret; int3
    ]
    e = [  # mov rax, [IAT]; call rax with NonPagedPool
        bytes.fromhex("4883ec28"),
        rip("488b05", IAT["ExAllocatePoolWithTag"]),  # mov rax, [rip+IAT]
        bytes.fromhex("31c9ffd0"),  # xor ecx, ecx; call rax
        bytes.fromhex("4883c428c3cc"),
    ]
    f = [  # a stack variable written through a pointer to it: its old value no longer holds
        bytes.fromhex("4883ec48"),  # sub rsp, 0x48
        bytes.fromhex("c744243000020000"),  # mov dword ptr [rsp+0x30], 0x200 (NonPagedPoolNx)
        bytes.fromhex("488d4c2430"),  # lea rcx, [rsp+0x30]
        bytes.fromhex("c70100000000"),  # mov dword ptr [rcx], 0 (NonPagedPool, through the pointer)
        bytes.fromhex("8b4c2430"),  # mov ecx, dword ptr [rsp+0x30]
        rip("ff15", IAT["ExAllocatePoolWithTag"]),
        bytes.fromhex("4883c448c3cc"),
    ]
    pieces: list[Piece] = [*a, *b, *d, *e, *f]
    code, where = assemble(pieces)
    marks = {
        "tail_global": where[len(a) + 2],
        "call_thunk": where[len(a) + len(b) + 1],
        "call_rax": where[len(a) + len(b) + len(d) + 2] + 2,
        "escaped_local": where[len(a) + len(b) + len(d) + len(e) + 5],
    }
    code = code.ljust(thunk_at - TEXT, b"\xcc")
    code += rip("ff25", IAT["ExAllocatePoolWithTag"])(thunk_at) + b"\xcc" * 10  # the GNU ld-style thunk
    return code, marks


def data_section(iat: dict[str, int]) -> bytes:
    """Imports of ``iat`` (name -> IAT slot RVA, slots 8 bytes apart from 0x2000) from ntoskrnl.exe."""
    data = bytearray(0x200)
    names = list(iat)
    for i, name in enumerate(names):
        hint = HINTS + 0x30 * i
        struct.pack_into("<H", data, hint - DATA, 0)
        data[hint - DATA + 2 : hint - DATA + 2 + len(name)] = name.encode()
        struct.pack_into("<Q", data, iat[name] - DATA, hint)
        struct.pack_into("<Q", data, ILT - DATA + 8 * i, hint)
    struct.pack_into("<IIIII", data, IMPORTS - DATA, ILT, 0, 0, DLL_NAME, min(iat.values()))
    data[DLL_NAME - DATA : DLL_NAME - DATA + 12] = b"ntoskrnl.exe"
    wide = "ExAllocatePoolWithTag\0".encode("utf-16-le")
    data[WIDE_NAME - DATA : WIDE_NAME - DATA + len(wide)] = wide
    return bytes(data)


def build() -> tuple[bytes, dict[str, int]]:
    code, marks = program()
    return image(code, IAT), marks


def image(code: bytes, iat: dict[str, int]) -> bytes:
    """A PE32+ driver image with ``code`` in .text (at most 0x200 bytes) and the imports of ``iat``."""
    text = code.ljust(0x200, b"\xcc")
    headers = bytearray(0x200)
    headers[0:2] = b"MZ"
    struct.pack_into("<I", headers, 0x3C, 0x40)
    headers[0x40:0x44] = b"PE\0\0"
    struct.pack_into("<HHIIIHH", headers, 0x44, 0x8664, 2, 0, 0, 0, 0xF0, 0x22)
    opt = 0x58
    struct.pack_into("<HBBIIIII", headers, opt, 0x20B, 14, 0, 0x200, 0x200, 0, TEXT, TEXT)
    struct.pack_into("<QII", headers, opt + 24, 0x140000000, 0x1000, 0x200)
    struct.pack_into("<HHHHHHI", headers, opt + 40, 6, 0, 0, 0, 6, 0, 0)
    struct.pack_into("<IIIHH", headers, opt + 56, 0x3000, 0x200, 0, 1, 0x160)
    struct.pack_into("<QQQQII", headers, opt + 72, 0x100000, 0x1000, 0x100000, 0x1000, 0, 16)
    directories = opt + 112
    struct.pack_into("<II", headers, directories + 8 * 1, IMPORTS, 40)
    struct.pack_into("<II", headers, directories + 8 * 12, min(iat.values()), 0x20)
    table = opt + 0xF0
    for i, (name, rva, raw, flags) in enumerate(
        [(b".text", TEXT, 0x200, 0x60000020), (b".data", DATA, 0x400, 0xC0000040)]
    ):
        struct.pack_into(
            "<8sIIIIIIHHI", headers, table + 40 * i, name, 0x200, rva, 0x200, raw, 0, 0, 0, 0, flags
        )
    return bytes(headers) + text + data_section(iat)


def _sites() -> tuple[dict[int, CallSite], dict[str, int]]:
    image, marks = build()
    pe = PeImage.open(image, name="synthetic.sys")
    assert [i.name for i in pe.imports] == list(IAT)
    analysis = analyse_calls(pe)
    assert analysis.status == "done"
    return {s.rva: s for s in analysis.sites}, marks


def test_routine_pointer_through_a_global() -> None:
    sites, marks = _sites()
    site = sites[marks["tail_global"]]
    assert site.verdict == EXECUTABLE and site.values == (0,)
    assert "stored at RVA 0x21e0" in site.how and site.how.startswith("tail jump")


def test_call_to_an_import_thunk() -> None:
    sites, marks = _sites()
    site = sites[marks["call_thunk"]]
    assert site.verdict == SAFE and site.values == (0x200,) and "thunk" in site.how


def test_register_loaded_from_the_iat() -> None:
    sites, marks = _sites()
    site = sites[marks["call_rax"]]
    assert site.verdict == EXECUTABLE and "rax" in site.how


def test_a_local_written_through_a_pointer_is_not_trusted() -> None:
    sites, marks = _sites()
    site = sites[marks["escaped_local"]]
    assert site.verdict == UNKNOWN and "stack variable" in site.reason


def test_the_thunk_itself_is_not_a_call_site() -> None:
    sites, marks = _sites()
    assert sorted(sites) == sorted(marks.values())
