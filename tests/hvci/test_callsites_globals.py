"""Arguments loaded from globals (issue 15): bits the code sets or clears decide whatever the global holds;
otherwise every store to the global and its initial value decide when they agree, the NX opt-in pattern
(NX value stored after a version check) is safe, and anything else stays unknown with the values listed."""

from __future__ import annotations

import struct

import pytest

from hvci.images.callsites import EXECUTABLE, SAFE, UNKNOWN, CallSite, analyse_calls
from hvci.images.callsites.values import known_bits
from hvci.knowledge import decode
from symbols.pe import PeImage
from tests.conftest import realworld
from tests.hvci.test_callsites_synthetic import DATA, Piece, assemble, image, rip

IAT = {"ExAllocatePoolWithTag": 0x2000, "RtlGetVersion": 0x2008, "MmProtectMdlSystemAddress": 0x2010}
OPT_IN, BITS, PLAIN, AGREED = 0x21E0, 0x21E8, 0x21F0, 0x21F8


def test_known_bits_follow_the_operations() -> None:
    assert known_bits((("or", 0x40000010, 0),), 32) == (0x40000010, 0x40000010)
    assert known_bits((("and", 0xFFFFFF0F, 0),), 32) == (0xF0, 0)
    assert known_bits((("or", 0x200, 0), ("shl", 4, 0)), 32) == (0x200F, 0x2000)
    assert known_bits((("or", 0x10, 0), ("add", 1, 0)), 32) == (0, 0)
    assert known_bits((("or", 0x10, 0), ("or", 0x2134, 4)), 32) == (0x10, 0x10)  # another global: ones stay


def test_the_tables_rules_decide_on_known_bits() -> None:
    assert decode.executable_by_known_bits("pool-type", 0x200, 0x200) is False  # NX bit set
    assert decode.executable_by_known_bits("pool-type", 0x201, 0) is True  # neither NX nor paged
    assert decode.executable_by_known_bits("pool-type", 0x10, 0x10) is None
    assert decode.executable_by_known_bits("mdl-priority", 0x40000000, 0x40000000) is False
    assert decode.executable_by_known_bits("page-protection", 0xF0, 0) is False  # execute bits clear
    assert decode.executable_by_known_bits("page-protection", 0x40, 0x40) is True
    assert decode.executable_by_known_bits("cache-type", 0xFF, 0) is None  # no rule: never guessed


def _program() -> tuple[bytes, dict[str, int]]:
    frame, unframe = bytes.fromhex("4883ec28"), bytes.fromhex("4883c428c3cc")  # sub/add rsp, 0x28; ret
    pieces: dict[str, list[Piece]] = {
        # DriverEntry-like: RtlGetVersion, then the NX pool type into the opt-in global
        "opt_in_init": [frame, rip("ff15", IAT["RtlGetVersion"]), rip("c705", OPT_IN, b"\0\2\0\0"), unframe],
        "opt_in_use": [frame, rip("8b0d", OPT_IN), rip("ff15", IAT["ExAllocatePoolWithTag"]), unframe],
        # wintun's shape: global | NX bit, whatever the global holds
        "bits_use": [
            rip("8b0d", BITS),
            bytes.fromhex("81c900020000"),
            rip("ff25", IAT["ExAllocatePoolWithTag"]),
        ],
        # the execute bits of a protection cleared: not executable whatever the rest
        "protect_use": [
            rip("8b15", BITS),
            bytes.fromhex("81e20fffffff"),  # and edx, 0xffffff0f
            rip("ff25", IAT["MmProtectMdlSystemAddress"]),
        ],
        # NX stored with no version check, over an executable initial value: the values differ
        "plain_init": [rip("c705", PLAIN, b"\0\2\0\0"), bytes.fromhex("c3cc")],
        "plain_use": [rip("8b0d", PLAIN), rip("ff25", IAT["ExAllocatePoolWithTag"])],
        # the initial value (patched into .data below) and the only store agree: NX
        "agreed_init": [rip("c705", AGREED, b"\0\2\0\0"), bytes.fromhex("c3cc")],
        "agreed_use": [rip("8b0d", AGREED), rip("ff25", IAT["ExAllocatePoolWithTag"])],
    }
    flat: list[Piece] = []
    calls: dict[str, int] = {}
    for name, parts in pieces.items():
        last = max(i for i, p in enumerate(parts) if not isinstance(p, bytes))  # the call or jump
        calls[name] = len(flat) + last
        flat += parts
    code, where = assemble(flat)
    return code, {name: where[index] for name, index in calls.items()}


def _sites() -> tuple[dict[int, CallSite], dict[str, int]]:
    code, marks = _program()
    raw = bytearray(image(code + b"\xcc", IAT))
    struct.pack_into("<I", raw, 0x400 + AGREED - DATA, 0x200)  # .data is at file offset 0x400
    analysis = analyse_calls(PeImage.open(bytes(raw), name="globals.sys"))
    return {s.rva: s for s in analysis.sites}, marks


@pytest.mark.parametrize(
    ("use", "verdict", "words"),
    [
        ("opt_in_use", SAFE, "NX opt-in"),
        ("bits_use", SAFE, "whatever the global holds"),
        ("protect_use", SAFE, "whatever the global holds"),
        ("plain_use", UNKNOWN, "values it can hold differ"),
        ("agreed_use", SAFE, "every value it can hold is not executable"),
    ],
)
def test_globals_decide(use: str, verdict: str, words: str) -> None:
    sites, marks = _sites()
    site = sites[marks[use]]
    assert site.verdict == verdict and words in site.reason, site.reason


def test_the_opt_in_names_the_store_and_the_version_check() -> None:
    sites, marks = _sites()
    reason = sites[marks["opt_in_use"]].reason
    assert "0x0 (NonPagedPool) its initial value" in reason and "0x200 (NonPagedPoolNx) stored at" in reason
    assert "RtlGetVersion" in reason
    listed = sites[marks["plain_use"]]
    assert listed.values == (0, 0x200) and listed.verdict != EXECUTABLE


def test_windivert_2_2_2_every_argument_is_decided() -> None:
    """By hand, from the disassembly: at 0x2f01 the driver calls RtlGetVersion; if the version is at least
    6.2 (``cmp eax, 6; ja`` / ``cmp [rbp+0x88], 2; jb``) it stores 0x200 into the dword at RVA 0x12130
    (``mov dword ptr [rip+0xf205], 0x200`` at 0x2f21), 0x40000000 into 0x12138 (at 0x2f2b) and 0x80000000
    into 0x12134 (at 0x2f35); the three start as 0 in the file. Every ExAllocatePoolWithTag passes the
    dword at 0x12130 in ecx; MmMapLockedPagesSpecifyCache passes ``[0x12138] | 0x10`` (and at 0xb726
    ``[0x12138] | [0x12134] | 0x10``) as its 6th argument. So on Windows 8 and later, the only systems
    memory integrity runs on, the pool is NonPagedPoolNx and the mappings carry MdlMappingNoExecute."""
    analysis = analyse_calls(PeImage.open(realworld("drivers", "WinDivert64-2.2.2.sys")))
    pools = {0x777F, 0x7DA0, 0x99A9, 0x9A0B, 0x9A82, 0xB812}
    mappings = {0x57DD, 0xA0D6, 0xB726}
    assert {s.rva for s in analysis.sites} == pools | mappings
    for site in analysis.sites:
        assert site.verdict == SAFE and "NX opt-in" in site.reason, site.reason
        assert "after the call to RtlGetVersion at 0x2f01" in site.reason
        if site.rva in pools:
            assert (
                "global at RVA 0x12130" in site.reason
                and "0x200 (NonPagedPoolNx) stored at 0x2f21" in site.reason
            )
            assert site.values == (0, 0x200)
        else:
            assert "global at RVA 0x12138" in site.reason and "stored at 0x2f2b" in site.reason
            assert all(v & 0x40000000 for v in site.values if v != 0x10 and v != 0x80000010)


@pytest.mark.parametrize("name", ["WinDivert64-1.3.sys", "WinDivert32-1.3.sys"])
def test_windivert_1_3_keeps_its_executable_findings(name: str) -> None:
    analysis = analyse_calls(PeImage.open(realworld("drivers", name)))
    assert len(analysis.sites) == 8 and all(s.verdict == EXECUTABLE for s in analysis.sites)
