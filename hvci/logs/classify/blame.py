"""The driver to blame for a crash, as ``!analyze`` and the crash viewers would name it.

Candidates, best first: the image the verifier banner names; the module of the caller; for an image
problem the image ``dS`` printed or the module Arg3 lies in; ``!analyze``'s ``IMAGE_NAME``/``MODULE_NAME``/
"Probably caused by"; the driver a crash viewer or the blue screen blames (BlueScreenView "Caused By
Driver", WhoCrashed, "What failed"); the module of the symbol printed beside the fault site; the first stack
frame outside the kernel's own images (``triage.toml``); the one driver Driver Verifier was verifying; the
driver the prose just before the output names. The kernel's own images are blamed only when nothing else is
named (and never for an image problem, where ``!analyze`` names the kernel's checker).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from hvci.knowledge import kb, triage
from hvci.logs.classify.callers import probable_cause
from hvci.logs.classify.context import Context
from hvci.logs.classify.faults import fault_symbol
from hvci.logs.correlate import CrashGroup
from hvci.model import Caller
from parsers.records import BugCheckRecord, StackFrame
from symbols.modules import normalize_name


def _image_problem_names(group: CrashGroup, bc: BugCheckRecord | None, context: Context) -> Iterator[str]:
    if bc is not None and len(bc.args) > 1 and (name := context.strings.get(bc.args[1])):
        yield name.text.replace("\\", "/").rsplit("/", 1)[-1]  # dS Arg2: the image's name or path
    if bc is not None and context.modules and len(bc.args) > 2:
        # Arg3 (section header, IAT directory entry, reloc block) lies inside the offending image's mapping
        hit = context.modules.lookup(bc.args[2])
        if hit is not None:
            yield context.image_name(hit.module.file_name)


def read_blamed(record: BugCheckRecord) -> str | None:
    """The image a record blames; a name typed off a blue screen is read through the l/I confusion."""
    if record.blamed and record.form == "blue-screen":
        return triage.load().retyped(record.blamed) or record.blamed
    return record.blamed


def _first_foreign_frame(frames: Sequence[StackFrame]) -> str | None:
    """The module of the first frame outside the kernel's own images (the code that called into them)."""
    skip = triage.load().kernel_frames
    for frame in frames:
        if frame.module and normalize_name(frame.module) not in skip and not frame.module.startswith("0x"):
            return frame.module
    return None


def _candidates(
    group: CrashGroup,
    caller: Caller | None,
    image_problem: bool,
    bc: BugCheckRecord | None,
    frames: Sequence[StackFrame],
    context: Context,
) -> Iterator[str | None]:
    if group.banner is not None:
        yield group.banner.image
    yield caller.module if caller is not None else None
    if image_problem:
        yield from _image_problem_names(group, bc, context)
    analyze = group.analyze
    if analyze is not None:
        yield analyze.field("IMAGE_NAME")
        yield analyze.field("MODULE_NAME")
        yield probable_cause(analyze)[0]
    for record in (*group.bugchecks, *([analyze.bugcheck] if analyze and analyze.bugcheck else [])):
        yield read_blamed(record)
    symbol = fault_symbol(group)
    yield symbol.split("!")[0].split("+")[0] if symbol else None
    yield _first_foreign_frame(frames)
    if len(context.verified_drivers) == 1:
        yield context.verified_drivers[0]
    if group.mention is not None:
        yield group.mention.image


def crash_driver(
    group: CrashGroup,
    caller: Caller | None,
    meaning: kb.SubcodeMeaning | None,
    bc: BugCheckRecord | None,
    frames: Sequence[StackFrame],
    context: Context,
) -> str | None:
    """The first candidate outside the kernel's own images; a kernel image only when nothing else is named
    (never for an image problem)."""
    image_problem = meaning is not None and meaning.arg_kinds[:1] == ("unicode-string-ptr",)
    kernel = triage.load().kernel_frames | kb.load().kernel_images
    fallback: str | None = None
    for named in _candidates(group, caller, image_problem, bc, frames, context):
        value = (named or "").strip()
        if not value:
            continue
        if normalize_name(value) not in kernel:
            return value
        fallback = fallback or (None if image_problem else value)
    return fallback
