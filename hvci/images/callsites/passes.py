"""The two passes over x86 and x64 code: the cheap pass lists what each function references (x64
functions only once their bytes may reference something, :mod:`hvci.images.callsites.rawrefs`), import
thunks are found, then the functions that matter are interpreted in detail
(:mod:`hvci.images.callsites.calls`), and sites whose argument comes from a global are decided from its
stores."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from hvci.images.callsites import dataflow
from hvci.images.callsites.calls import CallInterpreter
from hvci.images.callsites.image import Image, Region, Target
from hvci.images.callsites.prefilter import Functions, Prefilter, Scanned
from hvci.images.callsites.rawrefs import may_branch_to, may_reference, spans_of
from hvci.images.callsites.results import CallSite
from hvci.images.callsites.stores import WIDEST_STORE, decide, near


def _branching(code: bytes, start: int, *, targets: frozenset[int]) -> bool:
    return may_branch_to(code, start, targets)


def _referencing(rvas: set[int]) -> Callable[[bytes, int], bool]:
    """The test of a function's bytes: may it reference one of ``rvas``."""
    spans = spans_of(rvas)
    return lambda code, start: may_reference(code, start, spans, rvas.__contains__)


class Analyser:
    """Both passes over one image."""

    def __init__(self, image: Image) -> None:
        self.image = image
        self.prefilter = Prefilter(image)
        self.interpreter = CallInterpreter(image)
        self.interpreter.listings = self.prefilter.listings
        self.notes: list[str] = []

    @property
    def capped(self) -> bool:
        return self.prefilter.capped or self.interpreter.capped

    def _chain_thunks(self, scanned: list[Scanned], branched_to: set[int]) -> None:
        """``jmp thunk`` stubs in front of thunks (incremental linking; chained twice or more) are thunks."""
        hops = [hop for chunk in scanned for hop in chunk.hops if hop[0] in branched_to]
        changed = True
        while changed:
            changed = False
            for stub, target in hops:
                reached = self.image.thunks.get(target)
                if reached is not None and stub not in self.image.thunks:
                    how = f"call thunk 0x{stub:x} -> {reached.how.removeprefix('call thunk ')}"
                    self.image.thunks[stub] = Target(reached.api, reached.dll, how)
                    changed = True

    def _list_branchers(self, functions: Functions) -> None:
        """List every function that may branch to an import stub, or to a ``jmp`` that reaches one (a
        chain of them): what decides which stubs are thunks."""
        slots = self.image.slots
        aims = {stub for chunk in functions.items for stub, rva in chunk.stubs if rva in slots}
        while aims:
            functions.list_where(partial(_branching, targets=frozenset(aims)))
            hops = {hop for chunk in functions.items for hop, target in chunk.hops if target in aims}
            if hops <= aims:
                return
            aims = aims | hops

    def _find_thunks(self, functions: Functions) -> None:
        """Import stubs something branches to, and ``jmp`` stubs chained in front of them, are thunks."""
        self._list_branchers(functions)
        scanned = functions.items
        # a stub nothing branches to stays a plain tail jump (its own site), so no call is lost
        branched_to = set().union(*(chunk.direct for chunk in scanned))
        for chunk in scanned:
            for stub, rva in chunk.stubs:
                target = self.image.slots.get(rva)
                if target is not None and stub in branched_to:
                    self.image.thunks[stub] = Target(
                        target.api, target.dll, f"call thunk 0x{stub:x} -> [IAT]"
                    )
        self._chain_thunks(scanned, branched_to)

    def _decide_pending(
        self, functions: Functions, results: dict[int, list[CallSite]], sites: list[CallSite]
    ) -> list[CallSite]:
        """Sites whose argument is loaded from a global, decided from every function that may write it
        (each is run for its stores)."""
        pending = self.interpreter.pending
        wanted = sorted(
            {(p.value.ref, p.value.size) for p in pending.values() if isinstance(p.value.ref, int)}
        )
        around = [(rva - WIDEST_STORE + 1, rva + size) for rva, size in wanted]
        functions.list_where(
            lambda code, rva: may_reference(
                code, rva, around, lambda ref: any(lo <= ref < hi for lo, hi in around)
            )
        )
        for index, chunk in enumerate(functions.items):
            if index not in results and near(chunk.mem, wanted):
                self.interpreter.analyse(chunk.region)
        return [decide(s, pending[s.rva], self.image) if s.rva in pending else s for s in sites]

    def run(self, found: list[Region]) -> tuple[list[CallSite], list[str]]:
        functions = Functions(self.prefilter, found)
        interesting = set(self.image.slots)
        if self.image.wdf is not None:  # KMDF methods are called through the WdfFunctions table
            interesting.add(self.image.wdf.rva)
        functions.list_where(_referencing(interesting))
        self._find_thunks(functions)
        thunks = set(self.image.thunks)
        results: dict[int, list[CallSite]] = {}
        for index, chunk in enumerate(functions.items):
            if chunk.mem & interesting or chunk.direct & thunks:
                results[index] = self.interpreter.analyse(chunk.region)
        if self.image.global_fns:
            again = set(self.image.global_fns)
            functions.list_where(_referencing(again))
            for index, chunk in enumerate(functions.items):
                if chunk.mem & again:
                    results[index] = self.interpreter.analyse(chunk.region)
        sites = [s for index in sorted(results) for s in results[index]]
        if self.interpreter.pending:
            sites = self._decide_pending(functions, results, sites)
        unique = {s.rva: s for s in sites}
        if self.capped:
            self.notes.append(
                f"analysis capped (at most {dataflow.MAX_DETAILED_INSNS} decoded instructions per image, "
                f"{dataflow.MAX_INSNS_PER_FUNCTION} per function): some call sites may be missing"
            )
        return [unique[rva] for rva in sorted(unique)], self.notes
