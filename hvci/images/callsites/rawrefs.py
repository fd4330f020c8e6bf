"""Which x64 functions may reference an address, read from their bytes before any decoding.

The cheap pass need not list every function of an image: most reference none of the addresses the
analysis asks about (an IAT slot, a thunk, a global). In x64 code a reference to image memory is
rip-relative: a 32-bit displacement ``disp`` at some byte offset ``q`` of the function, the target being
``q + 4 + k + disp`` with ``k`` the bytes of immediate after it (0 to 4). A direct ``call``/``jmp``/``jcc``
is a 32-bit ``rel`` with the target ``q + 4 + rel``, or an 8-bit one reaching 128 bytes at most. So for a
target and a function's address range the displacement's three high bytes take a few values only: those are
searched for in the function's bytes (``bytes.find``), and every hit checked. A function without a hit
cannot reference the target, whatever its instructions are; one with a hit may (or the bytes are part of
another instruction), and is listed for real. The tests are supersets by construction: they never lose a
reference, only save listing functions that have none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

#: Bytes of immediate that may follow a rip-relative displacement in one instruction.
_IMMEDIATE = range(5)
#: More high-byte patterns than this for one function and the search costs more than listing it.
MAX_PATTERNS = 48
#: How far an 8-bit branch reaches (``rel8`` after a 2-byte instruction, prefixes aside).
_SHORT_REACH = 160


def may_reference(
    code: bytes, start: int, spans: list[tuple[int, int]], holds: Callable[[int], bool]
) -> bool:
    """Whether the function ``code`` at RVA ``start`` may hold a rip-relative reference to an RVA that
    ``holds``; ``spans`` (RVA ``lo`` to ``hi``, ``hi`` excluded) cover all such RVAs."""
    last = start + len(code) - 4  # the last offset a displacement can start at
    if last < start or not spans:
        return False

    def hit(q: int, disp: int) -> bool:
        return any(holds(q + 4 + k + disp) for k in _IMMEDIATE)

    return _search(code, start, [(lo - last - 8, hi - 1 - start - 4) for lo, hi in spans], hit)


def spans_of(rvas: Iterable[int]) -> list[tuple[int, int]]:
    """Ranges that cover ``rvas``, neighbours less than 256 bytes apart joined (each range costs its own
    patterns)."""
    out: list[tuple[int, int]] = []
    for rva in sorted(rvas):
        if out and rva - out[-1][1] < 256:
            out[-1] = (out[-1][0], rva + 1)
        else:
            out.append((rva, rva + 1))
    return out


def may_branch_to(code: bytes, start: int, targets: frozenset[int]) -> bool:
    """Whether the function ``code`` at RVA ``start`` may hold a direct call or jump to one of
    ``targets``."""
    end = start + len(code)
    if not targets or not code:
        return False
    if any(start - _SHORT_REACH <= t < end + _SHORT_REACH for t in targets):
        return True  # an 8-bit branch may reach it: list the function
    last = end - 4
    if last < start:
        return False

    def hit(q: int, rel: int) -> bool:
        return q + 4 + rel in targets

    return _search(code, start, [(t - last - 4, t - start - 4) for t in targets], hit)


def _search(code: bytes, start: int, spans: list[tuple[int, int]], hit: Callable[[int, int], bool]) -> bool:
    """Whether some 32-bit little-endian value in ``code`` whose high 24 bits a value of ``spans`` (lowest
    and highest value, both included) may have is confirmed by ``hit(rva of the value, value)``."""
    highs: set[int] = set()
    for low, high in spans:
        if (high >> 8) - (low >> 8) >= MAX_PATTERNS:
            return True  # too many patterns: list the function instead
        highs.update(range(low >> 8, (high >> 8) + 1))
        if len(highs) > MAX_PATTERNS:
            return True
    for value in highs:
        pattern = (value & 0xFFFFFF).to_bytes(3, "little")
        at = code.find(pattern, 1)
        while at >= 1 and at + 3 <= len(code):
            offset = at - 1
            disp = int.from_bytes(code[offset : offset + 4], "little", signed=True)
            if hit(start + offset, disp):
                return True
            at = code.find(pattern, at + 1)
    return False
