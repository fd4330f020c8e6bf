"""Stack stores that overlap a slot without starting at it: a qword ``mov`` at ``[rsp+0x30]`` changes the
dword slot at ``[rsp+0x34]``, and a dword at ``[rsp+0x34]`` changes the upper half of a qword at ``0x30``.
The dataflow kept the stale value of the other slot, so a pool type written before the store could pass for
the one the call gets. The bytes were assembled with ``llvm-mc -triple=x86_64 -show-encoding
-x86-asm-syntax=intel``; the functions are laid out as in :mod:`tests.hvci.test_callsites_stores`."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hvci.images.callsites import EXECUTABLE, SAFE, UNKNOWN, CallSite
from hvci.images.callsites.values import State, Val, const, unknown
from tests.hvci.test_callsites_stores import pool_type_sites

UNKNOWN_RAX = bytes.fromhex("488b02")  # mov rax, qword ptr [rdx]
UNKNOWN_EAX = bytes.fromhex("8b02")  # mov eax, dword ptr [rdx]
NX_AT_34 = bytes.fromhex("c744243400020000")  # mov dword ptr [rsp + 0x34], 0x200 (NonPagedPoolNx)
ECX_FROM_34 = bytes.fromhex("8b4c2434")  # mov ecx, dword ptr [rsp + 0x34]
ECX_FROM_30 = bytes.fromhex("8b4c2430")  # mov ecx, dword ptr [rsp + 0x30]

#: name -> the instructions between the prologue and the call (which passes ecx as the pool type)
FUNCTIONS: dict[str, list[bytes]] = {
    "qword_store_covers_slot": [
        NX_AT_34,
        UNKNOWN_RAX,
        bytes.fromhex("4889442430"),  # mov qword ptr [rsp + 0x30], rax
        ECX_FROM_34,
    ],
    "qword_zero_covers_slot": [
        NX_AT_34,
        bytes.fromhex("48c744243000000000"),  # mov qword ptr [rsp + 0x30], 0
        ECX_FROM_34,
    ],
    "store_above_keeps_field_below": [
        bytes.fromhex("c744243000020000"),  # mov dword ptr [rsp + 0x30], 0x200
        UNKNOWN_EAX,
        bytes.fromhex("89442434"),  # mov dword ptr [rsp + 0x34], eax
        ECX_FROM_30,
    ],
    "store_into_qword_keeps_its_low_half": [
        bytes.fromhex("48c744243000020000"),  # mov qword ptr [rsp + 0x30], 0x200
        UNKNOWN_EAX,
        bytes.fromhex("89442434"),  # mov dword ptr [rsp + 0x34], eax
        ECX_FROM_30,
    ],
}


def _sites() -> dict[str, CallSite]:
    return pool_type_sites(FUNCTIONS)


def test_a_wider_store_below_replaces_the_stale_value() -> None:
    sites = _sites()
    unknown_store = sites["qword_store_covers_slot"]
    assert unknown_store.verdict == UNKNOWN and unknown_store.values == ()
    assert "partly written by `mov qword ptr [rsp + 0x30], rax`" in unknown_store.reason
    zeroed = sites["qword_zero_covers_slot"]
    assert zeroed.verdict == EXECUTABLE and zeroed.values == (0,)  # NonPagedPool, not the stale Nx


def test_a_store_above_a_field_leaves_the_field_known() -> None:
    sites = _sites()
    for name in ("store_above_keeps_field_below", "store_into_qword_keeps_its_low_half"):
        assert (sites[name].verdict, sites[name].values) == (SAFE, (0x200,)), name


# -- the model against memory, byte by byte --------------------------------------------------------------

Store = tuple[int, int, int | None]  # offset, size, value (None: unknown)
stores = st.lists(
    st.tuples(
        st.integers(0x20, 0x40), st.sampled_from((1, 2, 4, 8)), st.none() | st.integers(0, (1 << 64) - 1)
    ),
    max_size=12,
)


def _read(slot: Val, width: int) -> int | None:
    """The dataflow's reading of ``width`` bits of a slot (see ``X86Dataflow._read``): one constant or
    nothing."""
    if slot.kind == "const" or (slot.low_bits and width <= slot.low_bits):
        (value,) = slot.consts
        return value & ((1 << width) - 1)
    return None


@given(stores)
def test_every_known_slot_reads_as_memory_holds_it(writes: list[Store]) -> None:
    """After any stores, a slot the dataflow still knows reads (at the width last stored there) exactly as
    the bytes in memory are. Wider reads of a narrow store assume zero above it, as they always did."""
    state = State({}, {})
    memory: dict[int, int | None] = {}
    width: dict[int, int] = {}
    for offset, size, value in writes:
        masked = None if value is None else value & ((1 << (size * 8)) - 1)
        state.store(offset, size, unknown("u") if masked is None else const(masked), lambda: "partly")
        for n in range(size):
            memory[offset + n] = None if masked is None else (masked >> (8 * n)) & 0xFF
        width[offset] = size
    for key, slot in state.slots.items():
        seen = _read(slot, width[key] * 8)
        if seen is None:
            continue
        held = [memory.get(key + n) for n in range(width[key])]
        assert None not in held, (key, slot, held)
        assert seen == int.from_bytes(bytes(held), "little"), (key, slot, held)  # type: ignore[arg-type]
