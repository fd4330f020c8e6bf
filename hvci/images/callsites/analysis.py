"""The call-site analysis of one image: what can be decided without decoding (no affected import, an
unreadable import directory), then the passes over the code (:mod:`hvci.images.callsites.passes` for x86
and x64, :mod:`hvci.images.callsites.arm64`), and the per-import counts.

The passes and capstone are imported only when an image has code to decode: a scan of images that import
none of the affected APIs never loads the disassembler."""

from __future__ import annotations

import gc
import importlib
import sys
from collections.abc import Callable, Sequence

from msgspec.structs import replace

from hvci.images.callsites.image import Image, function_ranges, pdata_namer, regions
from hvci.images.callsites.results import CallSite, CallSiteAnalysis, FunctionName, ImportedApi
from hvci.knowledge import kb
from symbols.pe import PeImage


def analyse_calls(
    pe: PeImage,
    *,
    extra_functions: Sequence[tuple[int, int]] = (),
    namer: Callable[[int], FunctionName] | None = None,
    table: kb.KnowledgeBase | None = None,
) -> CallSiteAnalysis:
    """Find and judge every call to an affected API in ``pe``.

    ``extra_functions`` are function ranges from the PDB (leaf functions have no ``.pdata``); ``namer`` maps
    a call-site RVA to its function (PDB, exports, ``.pdata``), defaulting to ``.pdata`` ranges.
    """
    if pe.machine not in ("x64", "x86", "arm64"):
        return CallSiteAnalysis(
            "not-applicable",
            notes=(f"call-site analysis covers x64, x86 and ARM64; {pe.machine}: header rules only",),
        )
    image = Image(pe, table or kb.load())
    namer = namer or pdata_namer(pe)
    if not pe.imports and pe.import_directory is not None:
        return CallSiteAnalysis(
            "could-not-analyse", notes=("the import directory could not be read: calls to the APIs unknown",)
        )
    if not image.slots and image.wdf is None:
        return CallSiteAnalysis("done", notes=("the image imports none of the affected APIs",), imported=())
    known, overlapping = function_ranges(pe, extra_functions)
    notes = []
    if overlapping:
        notes.append(
            f"{overlapping} function range(s) of .pdata or the PDB overlap others and were not analysed "
            "on their own (each byte of code is analysed once)"
        )
    if pe.machine == "arm64":
        load_decoder("arm64")
        from hvci.images.callsites.arm64 import analyse_arm64  # the decoder loads when code is decoded

        sites, instructions, code_bytes = analyse_arm64(image, regions(pe, known))
        return _result(image, namer, sites, bool(overlapping), notes, (instructions, code_bytes, code_bytes))
    load_decoder("passes")
    from hvci.images.callsites.passes import Analyser  # with capstone, as for ARM64 above

    analyser = Analyser(image)
    sites, more = analyser.run(regions(pe, known))
    counted = (
        analyser.interpreter.detailed,
        analyser.interpreter.code_bytes,
        analyser.prefilter.scanned_bytes,
    )
    return _result(image, namer, sites, analyser.capped or bool(overlapping), notes + more, counted)


def load_decoder(name: str) -> None:
    """Import the decoding module ``name`` (and capstone with the first) once, at the first image with code
    to decode. When the process froze its start-up objects out of the cyclic collector's sight (the command
    line does, :func:`cli.commands.load`), these modules are start-up objects that came late, and are
    frozen too: capstone's tables are tens of thousands of objects that live as long as the process, and
    the collections of a scan would otherwise traverse them (about 4 ms of a scan of 20 drivers)."""
    module = f"hvci.images.callsites.{name}"
    if module in sys.modules or not gc.get_freeze_count() or not gc.isenabled():
        importlib.import_module(module)
        return
    gc.disable()  # no collection while importing: what is imported lives on
    try:
        importlib.import_module(module)
    finally:
        gc.freeze()
        gc.enable()


def _result(
    image: Image,
    namer: Callable[[int], FunctionName],
    sites: list[CallSite],
    partial: bool,
    notes: list[str],
    counted: tuple[int, int, int],
) -> CallSiteAnalysis:
    """The sites named, and each affected import with the number of its call sites found."""
    named = tuple(replace(s, function=namer(s.rva)) for s in sites)
    counts: dict[str, int] = {}
    for s in named:
        counts[s.api] = counts.get(s.api, 0) + 1
    imported = []
    for name, (dll, iat) in sorted(image.imported.items()):
        api = image.kb.affected_api(name)
        assert api is not None
        imported.append(ImportedApi(name, dll, api.category, iat, counts.get(name, 0)))
    return CallSiteAnalysis("partial" if partial else "done", named, tuple(imported), tuple(notes), *counted)
