"""Who did it: the caller address resolved to module, function and line, and the driver to blame.

Best first: the PDB (``--symbols``/``--images``), what the debugger printed (``ln``, a symbolised frame, the
frame ``!analyze`` blamed), the image's exports or ``.pdata``, module + offset from the module list.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hvci.knowledge import kb
from hvci.logs.classify.context import SUPPORTING, Context
from hvci.logs.classify.faults import fault_address
from hvci.logs.correlate import CrashGroup, same_value
from hvci.model import Caller, Evidence
from parsers.deferred import deferred_compile
from parsers.records import AnalyzeRecord, BugCheckRecord, StackFrame, SymbolLineRecord
from symbols.modules import normalize_name

if TYPE_CHECKING:  # (pefile and the PDB readers: imported only when symbols are given, see AnalyzeOptions)
    from symbols.resolve import Resolution

_FRAME_SYMBOL = re.compile(
    r"^(?P<module>[^!\s]+)!(?P<function>[^+\s]+)(?:\+(?:0x)?(?P<disp>[0-9a-f]+))?$", re.I
)
_MODULE_OFFSET = deferred_compile(r"^(?P<module>[^!\s+]+)\+(?:0x)?(?P<offset>[0-9a-f]+)$", re.I)
_PROBABLY_CAUSED = deferred_compile(r"^(?P<image>[^\s(]+)(?:\s*\(\s*(?P<symbol>[^\s()]+)\s*\))?")


def crash_frames(group: CrashGroup) -> tuple[StackFrame, ...]:
    """The stack to show: the first ``k`` listing, else the ``!analyze`` STACK_TEXT."""
    if group.stacks:
        return group.stacks[0].frames
    if group.analyze is not None and group.analyze.stack is not None:
        return group.analyze.stack.frames
    return ()


def _frame_address(frames: Sequence[StackFrame], index: int) -> int | None:
    """A frame's own code address: printed bare, or the previous physical frame's return address (inline
    frames print no addresses; they and the physical frame below them share one code address)."""
    frame = frames[index]
    if frame.address is not None:
        return frame.address
    previous = index - 1
    while previous >= 0 and frames[previous].inline:
        previous -= 1
    return frames[previous].return_address if previous >= 0 else None


def _frame_for(frames: Sequence[StackFrame], address: int) -> StackFrame | None:
    for index in range(len(frames)):
        found = _frame_address(frames, index)
        if found is not None and same_value(found, address) and frames[index].module is not None:
            return frames[index]
    return None


def _symbol_line_for(context: Context, group: CrashGroup, address: int) -> SymbolLineRecord | None:
    for record in group.symbol_lines:
        if record.address is not None and same_value(record.address, address):
            return record
    for known, record in context.symbol_lines.items():
        if same_value(known, address):
            return record
    return None


def _debugger_symbol(
    address: int, group: CrashGroup, frames: Sequence[StackFrame], context: Context
) -> tuple[str | None, str, int | None, str | None, int | None] | None:
    """What the debugger printed for an address: an ``ln`` answer, else a ``module!function+0x..`` frame.
    Returns (module, function, displacement, file, line)."""
    ln = _symbol_line_for(context, group, address)
    if ln is not None and ln.function is not None:
        return ln.module, ln.function, ln.offset, ln.source_file, ln.source_line
    frame = _frame_for(frames, address)
    if frame is not None and frame.function is not None:
        return frame.module, frame.function, frame.offset, frame.source_file, frame.source_line
    return _followup_symbol(address, group)


def _followup_symbol(
    address: int, group: CrashGroup
) -> tuple[str | None, str, int | None, str | None, int | None] | None:
    """The frame ``!analyze`` blamed (``SYMBOL_NAME``, or ``Probably caused by : x.sys ( x!f+3d )`` of the
    automatic analysis) when no stack frame is printed: for the run-time code-integrity subcodes that frame
    is the driver code at Arg2 (the verifier thunk above it is never blamed)."""
    bc = group.bugcheck
    if group.analyze is None or bc is None or bc.code != 0xC4 or len(bc.args) < 2:
        return None
    if bc.args[0] not in kb.load().caller_subcodes or not same_value(bc.args[1], address):
        return None
    for symbol in (group.analyze.field("SYMBOL_NAME"), probable_cause(group.analyze)[1]):
        match = _FRAME_SYMBOL.match(symbol.strip()) if symbol else None
        if match:
            displacement = int(match["disp"], 16) if match["disp"] else None
            return match["module"], match["function"], displacement, None, None
    return None


def probable_cause(analyze: AnalyzeRecord) -> tuple[str | None, str | None]:
    """``Probably caused by : oldnic.sys ( oldnic!NicAllocRxBuffers+3d )`` as (image, symbol)."""
    match = _PROBABLY_CAUSED.match((analyze.field("Probably caused by") or "").strip())
    return (match["image"], match["symbol"]) if match else (None, None)


def _printed_site(symbol: str | None) -> tuple[str | None, str, int | None, str | None, int | None] | None:
    """A fault site's printed symbol (``IntelHaxm!ept_free+1b``) as a debugger symbol; ``module+0x...`` has
    no function and is not one (:func:`_site_module` reads it)."""
    match = _FRAME_SYMBOL.match(symbol.strip()) if symbol else None
    if match is None:
        return None
    displacement = int(match["disp"], 16) if match["disp"] else None
    return match["module"], match["function"], displacement, None, None


def _site_module(symbol: str | None) -> tuple[str, int] | None:
    """``UniFairy+0xb141d`` / ``adgnetworktdidrv+5715`` as (module, offset)."""
    match = _MODULE_OFFSET.match(symbol.strip()) if symbol else None
    return (match["module"], int(match["offset"], 16)) if match else None


def _resolve(
    address: int,
    group: CrashGroup,
    frames: Sequence[StackFrame],
    context: Context,
    *,
    return_address: bool,
    symbol: str | None = None,
) -> Caller:
    """Module + offset from the module map; then, best first: the PDB (``--symbols``/``--images``), what the
    debugger printed (``ln``, a symbolised frame, the ``symbol`` beside a fault site), the image's exports or
    ``.pdata``, module + offset (from the map, or as the fault site printed it)."""
    module: str | None = None
    offset: int | None = None
    hit = context.modules.lookup(address) if context.modules else None
    notes: list[str] = []
    if hit is not None:
        module, offset = context.image_name(hit.module.file_name), hit.offset
        if hit.module.unloaded:
            notes.append("the address is in an unloaded module")
    resolution = None
    if context.resolver is not None and context.modules:
        resolution = context.resolver.resolve(address, context.modules, return_address=return_address)
        if resolution.resolved_by == "pdb":
            return _from_resolution(resolution, module, offset)
        if resolution.note:
            notes.append(resolution.note)
    printed = _debugger_symbol(address, group, frames, context) or _printed_site(symbol)
    if printed is not None:
        printed_module, function, displacement, file, line = printed
        return Caller(
            address=address,
            module=module or (context.image_name(printed_module) if printed_module else None),
            offset=offset,
            function=function,
            displacement=displacement,
            file=file,
            line=line,
            resolved_by="debugger",
            note="; ".join(notes) or None,
        )
    if resolution is not None and resolution.resolved_by in ("exports", "pdata"):
        return _from_resolution(resolution, module, offset)
    site = _site_module(symbol) if module is None else None
    if site is not None:
        module, offset = context.image_name(site[0]), site[1]
    if module is None:
        notes.append("no module list (lm) in the input covers this address; pass --module NAME=BASE:SIZE")
    return Caller(
        address=address,
        module=module,
        offset=offset,
        resolved_by="module" if module is not None else "none",
        note="; ".join(notes) or None,
    )


def _from_resolution(resolution: Resolution, module: str | None, offset: int | None) -> Caller:
    return Caller(
        address=resolution.address,
        module=module or resolution.module,
        offset=offset if offset is not None else resolution.offset,
        function=resolution.function,
        displacement=resolution.displacement,
        file=resolution.file,
        line=resolution.line,
        inlined=tuple(resolution.inlined),
        resolved_by=resolution.resolved_by,
        note=resolution.note,
    )


def _blamed_frame(frames: Sequence[StackFrame], module_name: str) -> tuple[int, StackFrame] | None:
    wanted = normalize_name(module_name)
    for index, frame in enumerate(frames):
        if frame.module is not None and normalize_name(frame.module) == wanted:
            return index, frame
    return None


def crash_caller(
    group: CrashGroup,
    bc: BugCheckRecord | None,
    meaning: kb.SubcodeMeaning | None,
    frames: Sequence[StackFrame],
    context: Context,
) -> tuple[Caller | None, Evidence | None]:
    """The code address to blame and, when it is not the code-integrity Arg2 or the banner's caller (whose
    evidence the verdict already gives), where it came from."""
    kinds = tuple(meaning.arg_kinds) if meaning is not None else ()
    if kinds and kinds[0] == "code-address" and bc is not None and len(bc.args) > 1:
        return _resolve(bc.args[1], group, frames, context, return_address=True), None
    if bc is None and group.banner is not None and group.banner.caller is not None:
        return _resolve(group.banner.caller, group, frames, context, return_address=True), None
    if kinds:  # an image problem: Arg2 points at a name, not at code
        return None, None
    fault = fault_address(group, bc)
    if fault is not None and fault.address is not None:
        caller = _resolve(fault.address, group, frames, context, return_address=False, symbol=fault.symbol)
        return caller, Evidence(f"caller {fault.address:#x}: {fault.reason}", fault.span, SUPPORTING)
    analyze = group.analyze
    module_name = (analyze.field("MODULE_NAME") or "").strip() if analyze is not None else ""
    blamed = _blamed_frame(frames, module_name) if module_name else None
    if blamed is not None:
        index, frame = blamed
        address = _frame_address(frames, index)
        if address is not None:
            caller = _resolve(address, group, frames, context, return_address=index > 0)
            reason = f"caller {address:#x}: the first frame in {module_name}, the MODULE_NAME !analyze blames"
            return caller, Evidence(reason, analyze.span if analyze else None, SUPPORTING)
    return None, None  # no code address in the input: the caller is null; the bucket uses SYMBOL_NAME


def analyze_symbol(analyze: AnalyzeRecord | None, driver: str | None) -> tuple[str, str] | None:
    """What ``!analyze`` blames as (module, function): ``SYMBOL_NAME`` (``MyDriver!OnInterrupt+69``), else
    the ``module!function`` that ends ``FAILURE_BUCKET_ID`` (``0xc4_2000_VRF_MyDriver!OnInterrupt``) for the
    driver (the bucket's module may itself contain ``_``, so it is looked up by name, not split)."""
    if analyze is None:
        return None
    symbol = analyze.field("SYMBOL_NAME")
    match = _FRAME_SYMBOL.match(symbol.strip()) if symbol else None
    if match:
        return match.group("module"), match.group("function")
    bucket = (analyze.field("FAILURE_BUCKET_ID") or "").strip()
    if not driver or "!" not in bucket:
        return None
    key = re.escape(normalize_name(driver))
    found = re.search(rf"(?:^|_)(?P<module>{key})(?:\.\w+)?!(?P<function>[^\s!+]+)$", bucket, re.IGNORECASE)
    return (found.group("module"), found.group("function")) if found else None
