"""The cheap first pass of the call-site analysis: which functions reference anything relevant.

capstone's ``disasm_lite`` (no operand details) lists each function's memory references and direct
call/jump targets, and the ``jmp [slot]`` import stubs; only functions that reference an interesting IAT
slot, thunk or global are then decoded in detail. Gaps between known functions (x86 code, leaf stubs) are
cut into functions here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import islice
from typing import NamedTuple

from hvci.images.callsites.image import Image, Region
from hvci.images.callsites.x86 import CHUNK_ENDS, MEM_RE, STUB_AFTER, Listed, disassembler

MAX_LITE_INSNS = 20_000_000
#: Bytes of an image's code whose listings are kept for the detailed pass (the rest is decoded again
#: there): what bounds their memory (about 200 bytes an instruction, one or more bytes each).
MAX_KEPT_BYTES = 256 << 10


class Scanned(NamedTuple):
    """One function as the cheap pass saw it."""

    region: Region
    mem: set[int]  # RVAs of image memory it references
    direct: set[int]  # targets of its direct calls and jumps
    stubs: list[tuple[int, int]]  # (address, IAT RVA) of its ``jmp [slot]`` instructions that may be stubs
    hops: list[tuple[int, int]]  # (address, target) of its direct ``jmp`` that may be stubs (thunk chains)


#: :class:`Scanned`'s own constructor is a Python function: records are built by tuple's C core
_make = tuple.__new__


class Prefilter:
    def __init__(self, image: Image) -> None:
        self.image = image
        self.bits = image.bits
        self.lite = disassembler(self.bits, detail=False)
        self.count = 0
        self.scanned_bytes = 0
        self.capped = False
        #: each function listed whole, by (start, end): its instructions, which the detailed pass then
        #: reads instead of decoding the same bytes again
        self.listings: dict[tuple[int, int], list[Listed]] = {}
        self.kept_bytes = 0  # of code whose instructions ``listings`` holds

    def read(self, region: Region) -> bytes:
        """A function's bytes for this pass (counted, and cut at the image's per-function cap)."""
        code, capped = self.image.code(region)
        self.capped |= capped
        self.scanned_bytes += len(code)
        return code

    def scan(self, region: Region, code: bytes | None = None) -> list[Scanned]:
        """The memory RVAs and direct call/jump targets each function references, and the ``jmp [slot]``
        stubs. Gaps between known functions are cut into functions after a ``ret``/``int3`` that no earlier
        jump of the same function reaches past (MSVC puts blocks after the ``ret``). ``code``: the bytes
        :meth:`read` gave for ``region``, when they were read before."""
        out: list[Scanned] = []
        current = _make(Scanned, (Region(region.start, region.end, region.source), set(), set(), [], []))
        previous = before_stub = None
        reach = region.start
        if code is None:
            code = self.read(region)
        gap = region.source == "gap"
        budget = MAX_LITE_INSNS - self.count
        listed = 0
        keep = self.kept_bytes + len(code) <= MAX_KEPT_BYTES
        insns: list[Listed] | None = [] if keep else None
        wide = self.bits == 64
        listing = self.lite.disasm_lite(code, region.start)
        for listed, insn in enumerate(islice(listing, budget), 1):  # noqa: B007 (read after the loop)
            address, size, mnemonic, op_str = insn
            if gap and previous in CHUNK_ENDS and mnemonic not in CHUNK_ENDS and address > reach:
                out.append(_make(Scanned, (Region(current.region.start, address, "gap"), *current[1:])))
                self._keep(current.region.start, address, insns)
                current = _make(Scanned, (Region(address, region.end, "gap"), set(), set(), [], []))
                insns = [] if keep else None
            if insns is not None:
                insns.append(insn)
            if "[" in op_str:
                # x64 code references image memory rip-relative only (absolute addresses are not followed)
                match = None if wide and "[rip " not in op_str else MEM_RE.search(op_str)
                rva = self._mem_rva(address, size, match) if match else None
                if rva is not None:
                    current.mem.add(rva)
                    if mnemonic == "jmp" and (before_stub is None or before_stub in STUB_AFTER):
                        current.stubs.append((address, rva))
            elif op_str[:2] == "0x" and (mnemonic == "call" or mnemonic[0] == "j"):
                target = int(op_str, 16)
                current.direct.add(target)
                if mnemonic == "jmp" and (before_stub is None or before_stub in STUB_AFTER):
                    current.hops.append((address, target))
                if mnemonic != "call" and target < region.end:
                    reach = max(reach, target)  # a block of this function lies there: not a new function
            previous = mnemonic
            if mnemonic != "nop":  # GNU ld pads its import stubs with nops: look through them
                before_stub = mnemonic
        if listed == budget and next(listing, None) is not None:
            listed += 1
            self.capped = True
        else:  # a listing the budget cut short is decoded again in full by the detailed pass
            self._keep(current.region.start, current.region.end, insns)
        self.count += listed
        if keep:
            self.kept_bytes += len(code)
        out.append(current)
        return out

    def _keep(self, start: int, end: int, insns: list[Listed] | None) -> None:
        if insns is not None:
            self.listings[(start, end)] = insns

    def _mem_rva(self, address: int, size: int, match: re.Match[str]) -> int | None:
        sign, number = match.group(1), match.group(2)
        value = int(number, 0)
        if self.bits == 64:
            if sign is None:
                return None  # absolute addressing in x64 code is not an image reference we follow
            return address + size + (value if sign == "+" else -value)
        return (value - self.image.pe.image_base) & 0xFFFFFFFF


class Functions:
    """The image's functions as the cheap pass sees them, listed when needed. Gaps are listed at once (they
    are cut into functions there). In x64 code a ``.pdata``/PDB function is listed only once its bytes may
    hold what the analysis asks about (:mod:`hvci.images.callsites.rawrefs`: the callers of
    :meth:`list_where` ask before each decision); until then it stands as an empty record, which is what
    listing it would give for every question asked so far."""

    def __init__(self, prefilter: Prefilter, regions: list[Region]) -> None:
        self.prefilter = prefilter
        self.items: list[Scanned] = []
        self._unlisted: dict[int, bytes] = {}  # index of a function not listed yet -> its bytes
        for region in regions:
            code = prefilter.read(region)
            if prefilter.bits == 64 and region.source != "gap":
                self._unlisted[len(self.items)] = code
                self.items.append(_make(Scanned, (region, set(), set(), [], [])))
            else:
                self.items.extend(prefilter.scan(region, code))

    def list_where(self, test: Callable[[bytes, int], bool]) -> None:
        """List the functions not listed yet whose bytes pass ``test(code, rva)``."""
        for index in sorted(self._unlisted):
            code = self._unlisted[index]
            region = self.items[index].region
            if test(code, region.start):
                del self._unlisted[index]
                self.items[index] = self.prefilter.scan(region, code)[0]  # not a gap: one function
