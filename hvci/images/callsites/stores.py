"""Deciding an argument loaded from a global: every store to that global in the image, and its initial value.

When all the values the global can hold agree, they decide. When they differ, the NX opt-in pattern
(``nx_optin.toml``: the global starts executable and is set to the NX value after the driver asked which
Windows it runs on) is safe where memory integrity can be on; anything else stays unknown, with the values and
where they are stored, so that the reader can check them.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product

from msgspec.structs import replace

from hvci.images.callsites.calls import Pending
from hvci.images.callsites.image import Image, Store
from hvci.images.callsites.results import EXECUTABLE, SAFE, UNKNOWN, CallSite
from hvci.images.callsites.values import MAX_VALUES, apply_ops, operand_globals
from hvci.images.callsites.verdict import Judgement, by_values
from hvci.knowledge import optin

#: A write this many bytes before a global may still cover it (``movups [g-8], xmm0`` zeroing a struct).
WIDEST_STORE = 16


def near(references: set[int], globals_: Sequence[tuple[int, int]]) -> bool:
    """Whether a function referencing ``references`` may write one of the globals (RVA, size)."""
    return any(rva - WIDEST_STORE < ref < rva + size for ref in references for rva, size in globals_)


def decide(site: CallSite, pending: Pending, image: Image) -> CallSite:
    """The site, decided from the values its global can hold when that is possible."""
    judgement = resolve(image, pending)
    return replace(
        site,
        verdict=judgement.verdict,
        reason=judgement.reason,
        values=judgement.values,
        decoded=judgement.decoded,
        replacement=judgement.replacement,
    )


Source = tuple[str, frozenset[int], Store | None]


def resolve(image: Image, pending: Pending) -> Judgement:
    value, where = pending.value, pending.where
    assert isinstance(value.ref, int)
    intro = f"{where}: {value.reason}"
    sources = _sources(image, value.ref, value.size)
    if isinstance(sources, str):
        return Judgement(UNKNOWN, f"{intro}; {sources}")
    others: list[tuple[int, frozenset[int]]] = []
    for rva, size in operand_globals(value.ops):
        theirs = _sources(image, rva, size)
        if isinstance(theirs, str):
            return Judgement(UNKNOWN, f"{intro}; the global at RVA 0x{rva:x} it is combined with: {theirs}")
        others.append((rva, frozenset(v for _, consts, _ in theirs for v in consts)))
    combos = [
        dict(zip([rva for rva, _ in others], combo, strict=True))
        for combo in product(*(v for _, v in others))
    ]
    if len(combos) > MAX_VALUES:
        return Judgement(UNKNOWN, f"{intro}; the globals it is combined with hold too many values")
    judged = [
        (
            label,
            by_values(
                pending.api, frozenset(apply_ops(v, value.ops, c) for v in consts for c in combos), where
            ),
            store,
        )
        for label, consts, store in sources
    ]
    return _combine(intro, judged)


def _sources(image: Image, rva: int, size: int) -> list[Source] | str:
    """The values a global can hold (its initial value, then each store), or why they are not all known."""
    taken = sorted(image.address_taken.get(rva, ()))
    if taken:
        return f"its address is taken at 0x{taken[0]:x}, and writes through it are not followed"
    stores = sorted(
        (s for s in image.stores.values() if s.rva < rva + size and rva < s.rva + s.size),
        key=lambda s: s.address,
    )
    odd = next((s for s in stores if s.rva != rva or s.size != size or s.value.kind != "const"), None)
    if odd is not None:
        what = "a value not known statically" if odd.value.kind != "const" else f"{odd.size} byte(s)"
        return f"the instruction at 0x{odd.address:x} writes {what} into it"
    initial = image.initial_value(rva, size)
    if initial is None:
        return "its initial value cannot be read from the file"
    out: list[Source] = [("its initial value in the file", frozenset({initial}), None)]
    return out + [(f"stored at 0x{s.address:x}", s.value.consts, s) for s in stores]


def _combine(intro: str, judged: list[tuple[str, Judgement, Store | None]]) -> Judgement:
    """One verdict from the values of every source: all non-executable is safe, all executable is a finding,
    a mix is the NX opt-in (safe) when every store follows a version check and one stores only NX values;
    anything else is unknown, with the list."""
    names = {v: n for _, j, _ in judged for v, n in zip(j.values, j.decoded, strict=True)}
    values = tuple(sorted(names))
    decoded = tuple(names[v] for v in values)
    listing = "; ".join(
        f"{', '.join(f'0x{v:x} ({n})' for v, n in zip(j.values, j.decoded, strict=True))} {label}"
        for label, j, _ in judged
    )
    every = [j.verdict for _, j, _ in judged]
    if all(v == SAFE for v in every):
        return Judgement(
            SAFE, f"{intro}; every value it can hold is not executable: {listing}", values, decoded
        )
    if all(
        v == EXECUTABLE and "on some paths" not in j.reason
        for v, (_, j, _) in zip(every, judged, strict=True)
    ):
        replacement = next(j.replacement for _, j, _ in judged)
        return Judgement(
            EXECUTABLE,
            f"{intro}; every value it can hold is executable: {listing}",
            values,
            decoded,
            replacement,
        )
    stores = [store for _, _, store in judged if store is not None]
    nx_stored = [s for (_, j, s) in judged if s is not None and j.verdict == SAFE]
    if nx_stored and all(s.version_check is not None for s in stores) and UNKNOWN not in every:
        check = nx_stored[0].version_check
        assert check is not None
        return Judgement(
            SAFE,
            f"{intro}; safe on {optin.load().minimum} and later (NX opt-in): {listing}; "
            "the NX value is stored "
            f"after the call to {check[0]} at 0x{check[1]:x}, and memory integrity needs Windows 10",
            values,
            decoded,
        )
    return Judgement(UNKNOWN, f"{intro}; the values it can hold differ: {listing}", values, decoded)
