"""x64 call shapes of issue 15 in an image assembled here: a /guard:cf dispatch call (target in rax, the
dispatch pointer named by the load config), an import thunk reached through a chain of ``jmp`` thunks, and
``call rax`` in another basic block than the ``mov rax, [IAT]``."""

from __future__ import annotations

import struct

from hvci.images.callsites import EXECUTABLE, SAFE, CallSite, analyse_calls
from symbols.pe import PeImage
from tests.hvci.test_callsites_synthetic import DATA, TEXT, assemble, image, rip

IAT = {"ExAllocatePoolWithTag": 0x2000}
LOAD_CONFIG, GUARD_DISPATCH = 0x2070, 0x21D0
THUNK_FIRST, THUNK_SECOND, THUNK_LAST = TEXT + 0x180, TEXT + 0x188, TEXT + 0x190
BASE = 0x140000000


def _rel32(opcode: str, target: int):  # type: ignore[no-untyped-def]
    head = bytes.fromhex(opcode)
    return lambda at: head + struct.pack("<i", target - (at + len(head) + 4))


def _build() -> tuple[bytes, dict[str, int]]:
    frame, unframe = bytes.fromhex("4883ec28"), bytes.fromhex("4883c428c3cc")
    cfg = [
        frame,
        rip("488b05", IAT["ExAllocatePoolWithTag"]),
        bytes.fromhex("31c9"),
        rip("ff15", GUARD_DISPATCH),
    ]
    other_block = [
        frame,
        rip("488b05", IAT["ExAllocatePoolWithTag"]),  # mov rax, [IAT]
        bytes.fromhex("b900020000"),  # mov ecx, 0x200 (NonPagedPoolNx)
        bytes.fromhex("85d27400"),  # test edx, edx; je next: the call starts a new block
        bytes.fromhex("ffd0"),  # call rax
    ]
    chained = [frame, bytes.fromhex("31c9"), _rel32("e8", THUNK_FIRST)]  # NonPagedPool via two jmp thunks
    pieces = [*cfg, unframe, *other_block, unframe, *chained, unframe]
    code, where = assemble(pieces)
    marks = {
        "cfg": where[len(cfg) - 1],
        "other_block": where[len(cfg) + 1 + len(other_block) - 1],
        "chained": where[len(cfg) + 1 + len(other_block) + 1 + len(chained) - 1],
    }
    code = code.ljust(THUNK_FIRST - TEXT, b"\xcc")
    code += _rel32("e9", THUNK_SECOND)(THUNK_FIRST) + b"\xcc" * 3
    code += _rel32("e9", THUNK_LAST)(THUNK_SECOND) + b"\xcc" * 3
    code += rip("ff25", IAT["ExAllocatePoolWithTag"])(THUNK_LAST) + b"\xcc" * 10
    raw = bytearray(image(code, IAT))
    struct.pack_into("<II", raw, 0x58 + 112 + 8 * 10, LOAD_CONFIG, 0x80)  # data directory 10: load config
    struct.pack_into("<I", raw, 0x400 + LOAD_CONFIG - DATA, 0x80)  # its Size field
    struct.pack_into("<Q", raw, 0x400 + LOAD_CONFIG - DATA + 0x78, BASE + GUARD_DISPATCH)
    return bytes(raw), marks


def _sites() -> tuple[dict[int, CallSite], dict[str, int]]:
    raw, marks = _build()
    pe = PeImage.open(raw, name="shapes.sys")
    assert pe.guard_dispatch_rva == GUARD_DISPATCH
    return {s.rva: s for s in analyse_calls(pe).sites}, marks


def test_cfg_dispatch_reaches_what_rax_holds() -> None:
    sites, marks = _sites()
    site = sites[marks["cfg"]]
    assert site.verdict == EXECUTABLE and site.values == (0,) and "CFG dispatch" in site.how


def test_a_register_loaded_from_the_iat_in_another_block() -> None:
    sites, marks = _sites()
    site = sites[marks["other_block"]]
    assert site.verdict == SAFE and site.values == (0x200,) and "rax" in site.how


def test_jmp_thunks_chained_twice() -> None:
    sites, marks = _sites()
    site = sites[marks["chained"]]
    assert site.verdict == EXECUTABLE and site.values == (0,)
    assert f"0x{THUNK_FIRST:x} -> 0x{THUNK_SECOND:x} -> 0x{THUNK_LAST:x} -> [IAT]" in site.how, site.how
    assert sorted(sites) == sorted(marks.values())  # the thunks' own jumps are not call sites
