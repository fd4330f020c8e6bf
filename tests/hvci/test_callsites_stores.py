"""Stores capstone 5 marks read-only: an SSE move or a rotate with a memory destination
(`movups xmmword ptr [rsp + 0x30], xmm0`, `rcl dword ptr [rsp + 0x30], 1`) lists its memory operand with
``CS_AC_READ`` only, so the dataflow kept the stack slot's stale value and judged the call by it. The bytes
were assembled with ``llvm-mc -triple=x86_64 -show-encoding -x86-asm-syntax=intel``; the image is the one of
:mod:`tests.hvci.test_callsites_synthetic`."""

from __future__ import annotations

import capstone
import pytest

from hvci.images.callsites import SAFE, UNKNOWN, CallSite, analyse_calls
from hvci.images.callsites.x86 import (
    MEMORY_DESTINATION,
    MEMORY_DESTINATION_PREFIXES,
    Decoder,
    writes_first_operand,
)
from symbols.pe import PeImage
from tests.hvci.test_callsites_synthetic import IAT, Piece, assemble, image, rip

PROLOGUE = bytes.fromhex("4883ec48")  # sub rsp, 0x48
STALE_AT_30 = bytes.fromhex("c744243000020000")  # mov dword ptr [rsp + 0x30], 0x200 (NonPagedPoolNx)
ZERO_XMM0 = bytes.fromhex("0f57c0")  # xorps xmm0, xmm0
EPILOGUE = bytes.fromhex("4883c448c3cc")  # add rsp, 0x48; ret; int3

#: name -> the instructions between the prologue and the call (which passes ecx as the pool type)
FUNCTIONS: dict[str, list[bytes]] = {
    "movups_same_slot": [
        STALE_AT_30,
        ZERO_XMM0,
        bytes.fromhex("0f11442430"),  # movups xmmword ptr [rsp + 0x30], xmm0
        bytes.fromhex("8b4c2430"),  # mov ecx, dword ptr [rsp + 0x30]
    ],
    "movups_covers_slot": [  # the 16-byte store at 0x20 covers the dword at 0x28
        bytes.fromhex("c744242800020000"),  # mov dword ptr [rsp + 0x28], 0x200
        ZERO_XMM0,
        bytes.fromhex("0f11442420"),  # movups xmmword ptr [rsp + 0x20], xmm0
        bytes.fromhex("8b4c2428"),  # mov ecx, dword ptr [rsp + 0x28]
    ],
    "movq_same_slot": [
        STALE_AT_30,
        ZERO_XMM0,
        bytes.fromhex("660fd6442430"),  # movq qword ptr [rsp + 0x30], xmm0
        bytes.fromhex("8b4c2430"),  # mov ecx, dword ptr [rsp + 0x30]
    ],
    "rcl_same_slot": [
        STALE_AT_30,
        bytes.fromhex("d1542430"),  # rcl dword ptr [rsp + 0x30], 1
        bytes.fromhex("8b4c2430"),  # mov ecx, dword ptr [rsp + 0x30]
    ],
    "movups_load_keeps_slot": [  # a load from the slot is no store: the value still holds
        STALE_AT_30,
        bytes.fromhex("0f10442430"),  # movups xmm0, xmmword ptr [rsp + 0x30]
        bytes.fromhex("8b4c2430"),  # mov ecx, dword ptr [rsp + 0x30]
    ],
}


def pool_type_sites(functions: dict[str, list[bytes]]) -> dict[str, CallSite]:
    """Each function (``sub rsp, 0x48``, its instructions, ``call [ExAllocatePoolWithTag]``, the epilogue)
    in one image, analysed: the call site of each, by name."""
    pieces: list[Piece] = []
    calls: dict[str, int] = {}
    for name, body in functions.items():
        pieces += [PROLOGUE, *body]
        calls[name] = len(pieces)
        pieces += [rip("ff15", IAT["ExAllocatePoolWithTag"]), EPILOGUE]
    code, where = assemble(pieces)
    pe = PeImage.open(image(code, IAT), name="stores.sys")
    analysis = analyse_calls(pe)
    assert analysis.status == "done"
    by_rva = {s.rva: s for s in analysis.sites}
    return {name: by_rva[where[index]] for name, index in calls.items()}


def _sites() -> dict[str, CallSite]:
    return pool_type_sites(FUNCTIONS)


STORES = ["movups_same_slot", "movups_covers_slot", "movq_same_slot", "rcl_same_slot"]


@pytest.mark.parametrize("name", STORES)
def test_a_store_capstone_marks_read_only_replaces_the_stale_value(name: str) -> None:
    site = _sites()[name]
    assert site.verdict == UNKNOWN and site.values == ()
    store = "rcl" if name.startswith("rcl") else name.split("_")[0]
    assert f"set by `{store} " in site.reason


def test_a_load_does_not_replace_the_value() -> None:
    site = _sites()["movups_load_keeps_slot"]
    assert site.verdict == SAFE and site.values == (0x200,)


def test_the_memory_destination_is_marked_written() -> None:
    """capstone itself still says read (else this fix is no longer needed: then drop it); ours says write."""
    code = bytes.fromhex("0f11442430")  # movups xmmword ptr [rsp + 0x30], xmm0
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.detail = True
    assert md.disasm(code, 0).__next__().operands[0].access == capstone.CS_AC_READ
    insn = next(Decoder(64).decode(code, 0))
    _, ops = Decoder(64).written(insn)
    assert ops[0].access & capstone.CS_AC_WRITE


def test_every_destination_name_is_one_capstone_knows() -> None:
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    names = {md.insn_name(i) for i in range(1, capstone.x86.X86_INS_ENDING)}
    assert names >= MEMORY_DESTINATION
    for prefix in MEMORY_DESTINATION_PREFIXES:
        assert any(n.startswith(prefix) for n in names), prefix
    assert not any(writes_first_operand(n) for n in ("cmp", "test", "bt", "push", "ucomiss", "ptest"))
