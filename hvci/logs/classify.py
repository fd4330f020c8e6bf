"""Classification: an incident group -> incidents with category, confidence, decoded details and evidence.

Never from Arg1 alone. Each piece of evidence is weighed by how independent and how specific it is:

* the verifier banner (``Verifier Detected a Code Integrity Issue``) is printed by the kernel at the moment of
  the violation and names the issue in words: on its own it is ``certain``;
* the ``!analyze`` text of Arg1 (``Code Integrity Issue: ...``) comes from the debugger's bug-code table: it
  decides the category (``likely``), and with one more independent piece it is ``certain``;
* Arg2 inside a loaded driver, and non-zero counters of the same category for the same driver, support a
  code-integrity reading;
* the number (Arg1, ``BUGCHECK_STR``/``FAILURE_BUCKET_ID`` that merely repeat it) only suggests: a number
  alone is ``possible``. 0x2000 was once a Storport code; 0x2005 meant Unsupported Relocs on an older build
  and IAT now: the banner or the ``!analyze`` text decides, and with numbers only the evidence says so.

Bug checks other than 0xC4 get the HVCI-related category the knowledge base gives them (0xFC, 0xBE, 0x18B,
0x18C, 0x18D), and every other bug check becomes an incident with ``category: None`` and
``hvci_related: False``: nothing in a log is dropped and nothing gets a false HVCI label.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hvci.bucket import bucket_id, bugcheck_prefix
from hvci.images.rules import FAIL, RULE_WX_INIT, ImageHeaders, check_headers
from hvci.knowledge import decode, kb
from hvci.logs.correlate import (
    CounterGroup,
    CrashGroup,
    EventGroup,
    Group,
    ImageGroup,
    ReadinessGroup,
    same_value,
)
from hvci.model import BugCheck, Caller, Evidence, Incident
from parsers.records import (
    AnalyzeRecord,
    BugCheckRecord,
    MemoryStringRecord,
    Span,
    StackFrame,
    SymbolLineRecord,
    VerifierBannerRecord,
)
from symbols.modules import ModuleMap, normalize_name
from symbols.resolve import Resolution, SymbolResolver

DECIDING = "deciding"
SUPPORTING = "supporting"
CONFLICTING = "conflicting"

_CI_FIRST, _CI_LAST = 0x2000, 0x20FF
_RUNTIME_SUBCODES = (0x2000, 0x2001, 0x2002)
_FIELD_CODE = re.compile(r"^0x([0-9a-f]+)_([0-9a-f]+)", re.IGNORECASE)
_FRAME_SYMBOL = re.compile(
    r"^(?P<module>[^!\s]+)!(?P<function>[^+\s]+)(?:\+(?:0x)?(?P<disp>[0-9a-f]+))?$", re.I
)
_WORDS = re.compile(r"[a-z0-9]+")
_PROBABLY_CAUSED = re.compile(r"^(?P<image>[^\s(]+)(?:\s*\(\s*(?P<symbol>[^\s()]+)\s*\))?")
_DECODERS: dict[str, Callable[[int], decode.Decoded]] = {
    "pool-type": decode.pool_type,
    "page-protection": decode.page_protection,
    "mdl-priority": decode.mdl_priority,
}
_DETAIL_KEYS = {"pool-type": "pool_type", "page-protection": "protection", "mdl-priority": "priority"}
#: Share of distinct words two texts must have in common to be the same sentence reworded.
_SAME_WORDS = 0.85


@dataclass(frozen=True)
class Context:
    """What the whole input tells about every incident in it, whenever it was printed."""

    modules: ModuleMap = field(default_factory=ModuleMap)
    symbol_lines: Mapping[int, SymbolLineRecord] = field(default_factory=dict)
    #: strings the user printed from memory (``dS``/``da``), by the address given to the command
    strings: Mapping[int, MemoryStringRecord] = field(default_factory=dict)
    counters: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # module (lower) -> label -> n
    resolver: SymbolResolver | None = None
    image_names: Mapping[str, str] = field(default_factory=dict)  # normalize_name(module) -> "Name.sys"
    #: (normalize_name(driver), category) -> ids of the banner / bug check incidents that report it
    violations: Mapping[tuple[str, str], Sequence[str]] = field(default_factory=dict)

    def image_name(self, module: str) -> str:
        """The image file name the input uses for a module (``lm`` says ``IntelHaxm``, ``!analyze``
        ``IMAGE_NAME`` or ``lmv`` say ``IntelHaxm.sys``)."""
        return self.image_names.get(normalize_name(module), module)


def classify(group: Group, context: Context) -> list[Incident]:
    """The incidents of one group, ids still unset (the pipeline assigns ``path:first_line``)."""
    if isinstance(group, CrashGroup):
        return [_classify_crash(group, context)]
    if isinstance(group, CounterGroup):
        return _classify_counters(group, context)
    if isinstance(group, ReadinessGroup):
        return [_classify_readiness(group)]
    if isinstance(group, EventGroup):
        return [_classify_event(group)]
    return _classify_image(group, context)


# ---------------------------------------------------------------------------------------------- crashes


@dataclass
class _Verdict:
    category: str | None
    hvci_related: bool
    confidence: str
    evidence: list[Evidence]
    meaning: kb.SubcodeMeaning | None = None


def _norm(text: str) -> str:
    return " ".join(_WORDS.findall(text.lower()))


def _text_matches(printed: str, description: str) -> bool:
    """The debugger's Arg1 text against a known description, tolerant of spacing and punctuation, and of the
    rewording between a debugger's bug-code table and the docs (an old debugger prints "... to
    StorPortInitialize." where the docs say "... to the StorPortInitialize routine.")."""
    a, b = _norm(printed), _norm(description)
    if not a or not b:
        return False
    if a == b or a.startswith(b) or b.startswith(a):
        return True
    words_a, words_b = set(a.split()), set(b.split())
    return len(words_a & words_b) >= _SAME_WORDS * max(len(words_a), len(words_b))


def _banner_meaning(
    banner: VerifierBannerRecord, meanings: Sequence[kb.SubcodeMeaning]
) -> kb.SubcodeMeaning | None:
    for meaning in meanings:
        if banner.issue in meaning.banner_issues:
            return meaning
    return None


def _banner_category(banner: VerifierBannerRecord) -> kb.SubcodeMeaning | None:
    """The meaning a banner announces, whatever bug check (if any) follows it (its first subcode's)."""
    base = kb.load()
    for banner_format in base.banner_formats:
        if banner_format.issue == banner.issue:
            for arg1 in banner_format.subcodes:
                found = _banner_meaning(banner, base.subcode(arg1))
                if found is not None:
                    return found
    return None


def _arg1_text(group: CrashGroup) -> tuple[str, Span] | None:
    for record in _bugcheck_records(group):
        if record.arg_texts and record.arg_texts[0].strip():
            return record.arg_texts[0].strip(), record.span
    return None


def _bugcheck_records(group: CrashGroup) -> list[BugCheckRecord]:
    records = []
    if group.analyze is not None and group.analyze.bugcheck is not None:
        records.append(group.analyze.bugcheck)
    records.extend(group.bugchecks)
    return records


def _field_repeats(analyze: AnalyzeRecord | None, code: int, arg1: int) -> list[Evidence]:
    """``BUGCHECK_STR: 0xc4_2000`` / ``FAILURE_BUCKET_ID: 0xc4_2000_...`` repeat the numbers: supporting."""
    if analyze is None:
        return []
    found = []
    for key in ("BUGCHECK_STR", "FAILURE_BUCKET_ID", "DEFAULT_BUCKET_ID"):
        value = (analyze.field(key) or "").strip()
        match = _FIELD_CODE.match(value)
        if match and int(match.group(1), 16) == code and int(match.group(2), 16) == arg1:
            found.append(Evidence(f"{key} {value} repeats bug check {code:#x} / {arg1:#x}", analyze.span))
    return found


def _ci_verdict(group: CrashGroup, bc: BugCheckRecord, context: Context) -> _Verdict:
    base = kb.load()
    arg1 = bc.args[0]
    meanings = base.subcode(arg1)
    hvci_meanings = [m for m in meanings if m.hvci_related]
    evidence: list[Evidence] = []
    chosen: kb.SubcodeMeaning | None = None
    strong = 0
    disputed = False  # two strong pieces of evidence disagree

    banner_choice: kb.SubcodeMeaning | None = None
    if group.banner is not None:
        banner_choice = _banner_meaning(group.banner, meanings)
        if banner_choice is not None:
            evidence.append(
                Evidence(f"verifier banner: {group.banner.message.strip()}", group.banner.span, DECIDING)
            )
            chosen, strong = banner_choice, strong + 2

    text = _arg1_text(group)
    if text is not None:
        printed, span = text
        text_choice = next((m for m in meanings if _text_matches(printed, m.description)), None)
        if text_choice is None:
            evidence.append(Evidence(f"!analyze Arg1 text not recognised: {printed}", span, SUPPORTING))
        elif chosen is None:
            weight = DECIDING
            evidence.append(Evidence(f"!analyze Arg1 text: {printed}", span, weight))
            chosen, strong = text_choice, strong + 1
        elif text_choice is chosen:
            evidence.append(Evidence(f"!analyze Arg1 text agrees: {printed}", span, SUPPORTING))
            strong += 1
        else:
            evidence.append(
                Evidence(
                    f"!analyze Arg1 text says {text_choice.category or 'not code integrity'} ({printed}); "
                    "the debugger's bug-code table can be newer than the crashed build, so the banner wins",
                    span,
                    CONFLICTING,
                )
            )
            strong -= 1
            disputed = True

    number_choice = next(
        (m for m in hvci_meanings if m.era == "current"), hvci_meanings[0] if hvci_meanings else None
    )
    if len(meanings) > 1:
        number_note = f"Arg1 {arg1:#x} has meant: " + "; ".join(
            f"{m.category or 'not code integrity'} ({m.era}: {m.era_note})" for m in meanings
        )
    else:
        number_note = f"Arg1 {arg1:#x}: {number_choice.category if number_choice else 'not HVCI-related'}"
    weight = SUPPORTING
    if chosen is None:
        chosen = number_choice
        if len(meanings) > 1:
            number_note += (
                " - no banner or !analyze text here to tell which, so the current meaning is a guess"
            )
    elif chosen is not number_choice:
        weight = CONFLICTING
        number_note += f" - the banner or text decides for {chosen.category or 'not code integrity'}"
    evidence.append(Evidence(number_note, bc.span, weight))
    evidence.extend(_field_repeats(group.analyze, bc.code, arg1))

    independent = 0
    if chosen is not None and chosen.hvci_related:
        if arg1 in _RUNTIME_SUBCODES and len(bc.args) > 1 and context.modules:
            hit = context.modules.lookup(bc.args[1])
            if hit is not None and not hit.module.unloaded:
                evidence.append(
                    Evidence(
                        f"Arg2 {bc.args[1]:#x} is inside {context.image_name(hit.module.file_name)} "
                        f"(+{hit.offset:#x}, "
                        f"from {hit.module.source}): a driver code address, as code integrity reports it",
                        bc.span,
                        SUPPORTING,
                    )
                )
                independent += 1
        counted = _counter_evidence(group, chosen.category, bc, context)
        if counted is not None:
            evidence.append(counted)
            independent += 1

    if chosen is None or not chosen.hvci_related:
        return _Verdict(None, False, "none", evidence, chosen)
    if strong >= 2 or (strong == 1 and independent >= 1):
        confidence = "certain"
    elif strong == 1 or independent >= 1:
        confidence = "likely"
    else:
        confidence = "possible"
    if disputed and confidence == "certain":
        confidence = "likely"
    return _Verdict(chosen.category, True, confidence, evidence, chosen)


def _counter_evidence(
    group: CrashGroup, category: str | None, bc: BugCheckRecord, context: Context
) -> Evidence | None:
    if category is None or not context.counters:
        return None
    driver = _driver_guess(group, bc, context)
    if driver is None:
        return None
    base = kb.load()
    for module, counters in context.counters.items():
        if normalize_name(module) != normalize_name(driver):
            continue
        for label, value in counters.items():
            if value > 0 and base.category_for_counter(label) == category:
                return Evidence(f"!verifier counts {label}: {value} for {module}", None, SUPPORTING)
    return None


def _driver_guess(group: CrashGroup, bc: BugCheckRecord, context: Context) -> str | None:
    if group.banner is not None and group.banner.image:
        return group.banner.image
    if len(bc.args) > 1 and context.modules:
        hit = context.modules.lookup(bc.args[1])
        if hit is not None:
            return hit.module.file_name
    if group.analyze is not None:
        return group.analyze.field("IMAGE_NAME") or group.analyze.field("MODULE_NAME")
    return None


def _other_verdict(bc: BugCheckRecord) -> _Verdict:
    info = kb.load().bugcheck(bc.code)
    evidence = [Evidence(f"bug check {bc.code:#x}" + (f" {info.name}" if info else ""), bc.span, DECIDING)]
    if info is not None and info.hvci_related and info.category:
        evidence.append(
            Evidence(
                f"{info.name} is a way memory integrity stops a driver; the bug check alone does not prove "
                "memory integrity was the cause",
                bc.span,
                SUPPORTING,
            )
        )
        return _Verdict(info.category, True, "possible", evidence)
    return _Verdict(None, False, "none", evidence)


def _banner_only_verdict(banner: VerifierBannerRecord) -> _Verdict:
    meaning = _banner_category(banner)
    evidence = [Evidence(f"verifier banner: {banner.message.strip()}", banner.span, DECIDING)]
    if meaning is None:
        evidence.append(Evidence(f"banner message kind {banner.issue!r} is not a known format", banner.span))
        return _Verdict(None, True, "possible", evidence)
    evidence.append(
        Evidence(
            "no bug check followed: log-only mode (/log.code_integrity) or a print-only action", banner.span
        )
    )
    return _Verdict(meaning.category, True, "certain", evidence, meaning)


def _classify_crash(group: CrashGroup, context: Context) -> Incident:
    bc = group.bugcheck
    if bc is None and group.banner is not None:
        verdict = _banner_only_verdict(group.banner)
        kind = "verifier-banner"
    elif bc is None:
        verdict = _Verdict(None, False, "none", [Evidence("!analyze output without a bug check", group.span)])
        kind = "bugcheck"
    elif bc.code == 0xC4 and bc.args and _CI_FIRST <= bc.args[0] <= _CI_LAST:
        verdict = _ci_verdict(group, bc, context)
        kind = "bugcheck"
    else:
        verdict = _other_verdict(bc)
        kind = "bugcheck"
    if bc is not None and len(_bugcheck_records(group)) > 1:
        forms = sorted({r.form for r in _bugcheck_records(group)})
        verdict.evidence.append(Evidence(f"the same bug check is printed by: {', '.join(forms)}", group.span))
    bugcheck = _bugcheck_model(bc)
    subcode = verdict.meaning
    details = _crash_details(group, bc, subcode, context)
    frames = _frames(group)
    caller = _crash_caller(group, bc, subcode, frames, context)
    driver = _crash_driver(group, caller, subcode, bc, context)
    verdict.evidence.extend(_printed_names(group, bc, subcode, context))
    title = _crash_title(verdict.category, bc, details, driver, group.banner)
    prefix = verdict.category or (bugcheck_prefix(bc.code) if bc is not None else kind)
    bucket = _bucket(prefix, caller, driver, _analyze_symbol(group.analyze, driver))
    return Incident(
        id="",
        source=group.span,
        kind=kind,
        category=verdict.category,
        hvci_related=verdict.hvci_related,
        confidence=verdict.confidence,
        title=title,
        bugcheck=bugcheck,
        caller=caller,
        driver=driver,
        details=details,
        evidence=tuple(verdict.evidence),
        stack=frames,
        bucket=bucket,
        count=1,
    )


def _printed_names(
    group: CrashGroup, bc: BugCheckRecord | None, meaning: kb.SubcodeMeaning | None, context: Context
) -> list[Evidence]:
    """Where the image and section names of an image-compliance 0xC4 came from when no banner printed
    them: the ``dS``/``da`` output for Arg2 / Arg4."""
    if group.banner is not None or bc is None or meaning is None:
        return []
    if meaning.arg_kinds[0] != "unicode-string-ptr":
        return []
    found = []
    for index, what in ((1, "image name"), (3, "section name")):
        printed = context.strings.get(bc.args[index]) if len(bc.args) > index else None
        if printed is not None:
            command = f"{printed.command} Arg{index + 1} {bc.args[index]:#x}"
            found.append(Evidence(f"{command} printed the {what} {printed.text!r}", printed.span))
    return found


def _bugcheck_model(bc: BugCheckRecord | None) -> BugCheck | None:
    if bc is None:
        return None
    name = bc.name
    if name is None:
        info = kb.load().bugcheck(bc.code)
        name = info.name if info is not None else None
    return BugCheck(bc.code, name, tuple(bc.args))


def _frames(group: CrashGroup) -> tuple[StackFrame, ...]:
    """The stack to show: the first ``k`` listing, else the ``!analyze`` STACK_TEXT."""
    if group.stacks:
        return group.stacks[0].frames
    if group.analyze is not None and group.analyze.stack is not None:
        return group.analyze.stack.frames
    return ()


# ---------------------------------------------------------------------------------------------- details


def _fresh(value: Any) -> Any:
    """A copy of cached details (dicts, lists and scalars) that an incident can own."""
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fresh(v) for v in value]
    return value


@functools.lru_cache(maxsize=4096)
def _decode(kind: str, value: int) -> dict[str, Any]:
    """A decoded argument as report details (cached: a log repeats the same few values many times; callers
    get a copy, the cache keeps the original)."""
    decoder = _DECODERS[kind]
    return _decoded(decoder(value), decode.safe_replacement(kind, value), decoder)


def _decoded(
    value: decode.Decoded, replacement: int | None, decoder: Callable[[int], decode.Decoded]
) -> dict[str, Any]:
    out: dict[str, Any] = {"value": value.value, "name": value.name, "executable": value.executable}
    if value.parts and value.parts != (value.name,):
        out["parts"] = list(value.parts)
    if value.note:
        out["note"] = value.note
    if replacement is not None and replacement != value.value:
        out["safe_value"] = {"value": replacement, "name": decoder(replacement).name}
    return out


def _hex(value: int | None) -> str | None:
    return None if value is None else f"{value:#x}"


def _crash_details(
    group: CrashGroup, bc: BugCheckRecord | None, meaning: kb.SubcodeMeaning | None, context: Context
) -> dict[str, Any]:
    """Every argument with its meaning, then the decoded value (pool type, protection, priority, tag) and
    the image/section names the banner printed (in a text log, Arg2/Arg4 are only pointers to them)."""
    details: dict[str, Any] = {}
    args = tuple(bc.args) if bc is not None else ()
    banner = group.banner
    if bc is not None:
        info = kb.load().bugcheck(bc.code)
        meanings: Sequence[str] = ("", *meaning.args) if meaning is not None else (info.args if info else ())
        if meaning is not None:
            details["subcode"] = {"value": args[0], "meaning": meaning.description, "era": meaning.era}
        details["arguments"] = [
            {"index": n + 1, "value": value, "meaning": meanings[n] if n < len(meanings) else None}
            for n, value in enumerate(args)
            if not (n == 0 and meaning is not None)
        ]
    if meaning is None:
        return details
    kinds = meaning.arg_kinds
    value = args[2] if len(args) > 2 else (banner.value if banner is not None else None)
    tag = args[3] if len(args) > 3 else (banner.tag if banner is not None else None)
    if kinds[1] in _DECODERS and value is not None:
        details[_DETAIL_KEYS[kinds[1]]] = _fresh(_decode(kinds[1], value))
    if kinds[2] == "pool-tag" and tag:
        text = decode.pool_tag(tag)
        details["pool_tag"] = text if text is not None else _hex(tag)
    if banner is not None:
        if banner.image:
            details["image"] = banner.image
        if banner.section_name:
            details["section"] = banner.section_name
        pointer_kinds = [k for k in kinds[1:] if k.endswith("-ptr") and k != "section-name-ptr"]
        if banner.reloc_section is not None:
            details["reloc_block"] = _hex(banner.reloc_section)
            details["reloc_entry"] = _hex(banner.address)
        elif banner.address is not None and pointer_kinds:
            details[pointer_kinds[0].removesuffix("-ptr").replace("-", "_")] = _hex(banner.address)
        if banner.caller is not None and len(args) > 1 and not same_value(banner.caller, args[1]):
            details["banner_caller"] = _hex(banner.caller)
    elif kinds[0] == "unicode-string-ptr":
        # no banner: the names are only where the user dereferenced Arg2 / Arg4 (dS / da); !analyze's
        # IMAGE_NAME here is the kernel's own checker, not the image
        for key, index in (("image", 1), ("section", 3)):
            printed = context.strings.get(args[index]) if len(args) > index else None
            if printed is not None and (key == "image" or kinds[index - 1] == "section-name-ptr"):
                details[key] = printed.text
    return details


# ----------------------------------------------------------------------------------------------- caller


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
    if bc.args[0] not in _RUNTIME_SUBCODES or not same_value(bc.args[1], address):
        return None
    for symbol in (group.analyze.field("SYMBOL_NAME"), _probable_cause(group.analyze)[1]):
        match = _FRAME_SYMBOL.match(symbol.strip()) if symbol else None
        if match:
            displacement = int(match["disp"], 16) if match["disp"] else None
            return match["module"], match["function"], displacement, None, None
    return None


def _probable_cause(analyze: AnalyzeRecord) -> tuple[str | None, str | None]:
    """``Probably caused by : oldnic.sys ( oldnic!NicAllocRxBuffers+3d )`` as (image, symbol)."""
    match = _PROBABLY_CAUSED.match((analyze.field("Probably caused by") or "").strip())
    return (match["image"], match["symbol"]) if match else (None, None)


def _resolve(
    address: int, group: CrashGroup, frames: Sequence[StackFrame], context: Context, *, return_address: bool
) -> Caller:
    """Module + offset from the module map; then, best first: the PDB (``--symbols``/``--images``), what the
    debugger printed (``ln``, a symbolised frame), the image's exports or ``.pdata``, module + offset."""
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
    printed = _debugger_symbol(address, group, frames, context)
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


def _crash_caller(
    group: CrashGroup,
    bc: BugCheckRecord | None,
    meaning: kb.SubcodeMeaning | None,
    frames: Sequence[StackFrame],
    context: Context,
) -> Caller | None:
    kinds = tuple(meaning.arg_kinds) if meaning is not None else ()
    if kinds and kinds[0] == "code-address" and bc is not None and len(bc.args) > 1:
        return _resolve(bc.args[1], group, frames, context, return_address=True)
    if bc is None and group.banner is not None and group.banner.caller is not None:
        return _resolve(group.banner.caller, group, frames, context, return_address=True)
    if kinds:  # an image problem: Arg2 points at a name, not at code
        return None
    analyze = group.analyze
    if analyze is None:
        return None
    module_name = analyze.field("MODULE_NAME")
    if not module_name:
        return None
    blamed = _blamed_frame(frames, module_name.strip())
    if blamed is not None:
        index, frame = blamed
        address = _frame_address(frames, index)
        if address is not None:
            return _resolve(address, group, frames, context, return_address=index > 0)
    return None  # no code address in the input: DESIGN.md's caller is null; the bucket uses SYMBOL_NAME


def _analyze_symbol(analyze: AnalyzeRecord | None, driver: str | None) -> tuple[str, str] | None:
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


def _crash_driver(
    group: CrashGroup,
    caller: Caller | None,
    meaning: kb.SubcodeMeaning | None,
    bc: BugCheckRecord | None,
    context: Context,
) -> str | None:
    if group.banner is not None and group.banner.image:
        return group.banner.image
    if caller is not None and caller.module:
        return caller.module
    image_problem = meaning is not None and meaning.arg_kinds[:1] == ("unicode-string-ptr",)
    if image_problem and bc is not None and len(bc.args) > 1 and (name := context.strings.get(bc.args[1])):
        return name.text.replace("\\", "/").rsplit("/", 1)[-1]  # dS Arg2: the image's name or path
    if image_problem and bc is not None and context.modules:
        # Arg3 (section header, IAT directory entry, reloc block) lies inside the offending image's mapping
        hit = context.modules.lookup(bc.args[2]) if len(bc.args) > 2 else None
        if hit is not None:
            return context.image_name(hit.module.file_name)
    analyze = group.analyze
    if analyze is not None:
        for named in (analyze.field("IMAGE_NAME"), analyze.field("MODULE_NAME"), _probable_cause(analyze)[0]):
            value = (named or "").strip()
            # for an image problem !analyze blames the kernel's own checker (nt!VfCheckImageCompliance)
            if value and not (image_problem and normalize_name(value) in kb.load().kernel_images):
                return value
    return None


# ------------------------------------------------------------------------------------------------ titles


def _named(details: Mapping[str, Any], key: str) -> str | None:
    value = details.get(key)
    return str(value["name"]) if isinstance(value, Mapping) and "name" in value else None


def _crash_title(
    category: str | None,
    bc: BugCheckRecord | None,
    details: Mapping[str, Any],
    driver: str | None,
    banner: VerifierBannerRecord | None,
) -> str:
    who = driver or "A driver"
    section = details.get("section")
    in_section = f" ({section})" if section else ""
    if category == "execute-pool-type":
        parts = [
            p
            for p in (
                _named(details, "pool_type"),
                f"tag {details['pool_tag']}" if "pool_tag" in details else None,
            )
            if p
        ]
        return f"{who} allocated executable pool" + (f" ({', '.join(parts)})" if parts else "")
    if category == "execute-page-protection":
        name = _named(details, "protection")
        return f"{who} asked for an executable page protection" + (f" ({name})" if name else "")
    if category == "execute-page-mapping":
        name = _named(details, "priority")
        return f"{who} mapped an MDL without MdlMappingNoExecute" + (f" (priority {name})" if name else "")
    if category == "execute-write-section":
        return f"{who} has a section that is both writable and executable{in_section}"
    if category == "section-alignment":
        return f"{who} has a section that is not page aligned{in_section}"
    if category == "iat-in-executable-section":
        return f"{who} has its import address table in an executable section{in_section}"
    if category == "unsupported-relocs":
        return f"{who} has unsupported or page-straddling relocations"
    if bc is None:
        if banner is not None:
            return f"Verifier code-integrity banner: {banner.message.strip()}"
        return "!analyze output without a bug check"
    info = kb.load().bugcheck(bc.code)
    name = (bc.name or (info.name if info else None)) or "unknown bug check"
    where = f" in {driver}" if driver else ""
    if category is not None:
        return f"{name} ({bc.code:#x}){where}, a stop that memory integrity can cause"
    return f"Bug check {bc.code:#x} {name}{where} (not HVCI-related)"


def _bucket(
    prefix: str, caller: Caller | None, driver: str | None, symbol: tuple[str, str] | None = None
) -> str:
    """From the caller; without one, from the driver and the function ``SYMBOL_NAME`` names in it.
    ``.pdata`` names a function by its start (``module+0x1000``): bucket on that start offset."""
    if caller is not None and caller.module:
        if caller.resolved_by == "pdata" and caller.offset is not None and caller.displacement is not None:
            return bucket_id(prefix, module=caller.module, offset=caller.offset - caller.displacement)
        return bucket_id(prefix, module=caller.module, function=caller.function, offset=caller.offset)
    function = None
    if symbol is not None and driver is not None and normalize_name(symbol[0]) == normalize_name(driver):
        function = symbol[1]
    return bucket_id(prefix, module=driver, function=function)


# ------------------------------------------------------------------------------------- other group kinds


def _classify_counters(group: CounterGroup, context: Context) -> list[Incident]:
    """One incident per non-zero counter, pointing at the banners and bug checks in the same input that
    report the same driver and category (the counter says how often; they say where)."""
    base = kb.load()
    driver = group.counter_set.module
    source = group.status.source
    incidents = []
    for label, value in group.counter_set.counters:
        if value <= 0:
            continue
        category = base.category_for_counter(label)
        evidence = [
            Evidence(
                f"{source}: {label}: {value}" + (f" for {driver}" if driver else ""), group.span, DECIDING
            )
        ]
        if category is None:
            evidence.append(
                Evidence(f"counter {label!r} is not one of the code-integrity counters", group.span)
            )
        seen = context.violations.get((normalize_name(driver), category or ""), ()) if driver else ()
        if seen:
            evidence.append(
                Evidence(f"{len(seen)} banner(s) or bug check(s) in this input report it: {', '.join(seen)}")
            )
        who = driver or "All verified drivers"
        incidents.append(
            Incident(
                id="",
                source=group.span,
                kind="verifier-counters",
                category=category,
                hvci_related=category is not None,
                confidence="certain" if category is not None else "none",
                title=f"{who}: {label} = {value} ({source})",
                driver=driver,
                details={"counter": label, "value": value, "source": source},
                evidence=tuple(evidence),
                bucket=bucket_id(category or "verifier-counters", module=driver),
                count=value,
            )
        )
    return incidents


def _classify_readiness(group: ReadinessGroup) -> Incident:
    record = group.record
    base = kb.load()
    category = base.category_for_counter(record.reason) if record.reason else None
    tool = {"dg-readiness": "the Device Guard readiness tool", "hvciscan": "hvciscan"}.get(
        record.tool, record.tool
    )
    verdict = "incompatible" if record.incompatible else "compatible"
    reason = (
        f": {record.reason}" + (f" {record.count}" if record.count is not None else "")
        if record.reason
        else ""
    )
    evidence = [Evidence(f"{tool} reports {record.module} {verdict}{reason}", record.span, DECIDING)]
    hvci_related = record.incompatible
    if hvci_related and category is None:
        evidence.append(Evidence("the reason does not name one of the seven categories", record.span))
    return Incident(
        id="",
        source=record.span,
        kind="readiness",
        category=category if hvci_related else None,
        hvci_related=hvci_related,
        confidence=("certain" if category else "likely") if hvci_related else "none",
        title=f"{record.module} reported {verdict} with memory integrity by {tool}{reason}",
        driver=record.module,
        details={
            "tool": record.tool,
            "reason": record.reason,
            "count": record.count,
            "incompatible": record.incompatible,
        },
        evidence=tuple(evidence),
        bucket=bucket_id((category or "readiness") if hvci_related else "readiness", module=record.module),
        count=record.count or 1,
    )


def _event_info(event_id: int, provider: str) -> kb.EventInfo | None:
    """The knowledge base's entry for an event, only when the provider is the one it is about."""
    info = kb.load().event(event_id)
    if info is None or _norm(info.provider) != _norm(provider):
        return None
    return info


def _classify_event(group: EventGroup) -> Incident:
    record = group.record
    info = _event_info(record.event_id, record.provider)
    category = info.category if info is not None else None
    message = " ".join(record.message.split())
    evidence = [Evidence(f"{record.provider} event {record.event_id}: {message}", record.span, DECIDING)]
    if info is not None and info.explanation:
        evidence.append(Evidence(info.explanation, record.span))
    details: dict[str, Any] = {
        "provider": record.provider,
        "event_id": record.event_id,
        "message": record.message,
    }
    for key, value in (("process", record.process), ("timestamp", record.timestamp)):
        if value is not None:
            details[key] = value
    if record.status is not None:
        details["status"] = _hex(record.status)
    if record.failure_bitmap is not None:
        details["failure_bitmap"] = _hex(record.failure_bitmap)
    who = record.module.replace("/", "\\").rsplit("\\", 1)[-1] if record.module else "a driver"
    title = f"{record.provider} event {record.event_id} about {who}"
    return Incident(
        id="",
        source=record.span,
        kind="event",
        category=category,
        hvci_related=category is not None,
        confidence="certain" if category is not None else "none",
        title=title,
        driver=record.module,
        details=details,
        evidence=tuple(evidence),
        bucket=bucket_id(category or f"event-{record.event_id}", module=record.module),
    )


def _classify_image(group: ImageGroup, context: Context) -> list[Incident]:
    """A ``!dh`` dump judged by the same rules as ``hvci-triage scan`` judges a ``.sys`` file."""
    record = group.record
    driver = context.image_name(record.module) if record.module else None
    incidents = []
    for result in check_headers(ImageHeaders.from_record(record)):
        if result.status != FAIL:
            continue
        # an RWX INIT is tolerated (Windows strips W, the verifier skips it): a note, not a violation that
        # fails the run (hvci-domain.md 9.3); `scan` shows it as a warning-level rule result
        category = None if result.rule_id == RULE_WX_INIT else result.category
        evidence = [Evidence(result.message, record.span, DECIDING)]
        evidence.extend(Evidence(text, record.span) for text in result.evidence)
        details: dict[str, Any] = {"rule": result.rule_id, "level": result.level, **dict(result.details)}
        who = driver or "image"
        incidents.append(
            Incident(
                id="",
                source=record.span,
                kind="image",
                category=category,
                hvci_related=category is not None,
                confidence="certain" if category is not None else "none",
                title=f"{who}: {result.message}",
                driver=driver,
                details=details,
                evidence=tuple(evidence),
                bucket=bucket_id(category or result.rule_id, module=driver),
                count=result.count,
            )
        )
    return incidents
