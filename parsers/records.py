"""Typed records that the parsers emit, each with the span of input it came from.

These are the contract between ingestion (``parsers``) and the engine (``hvci``): a parser turns text into
these records and nothing else; correlation and classification read only these. Every record is frozen and
carries a :class:`Span` so that every verdict can point at the lines behind it.

Records are frozen ``msgspec.Struct`` classes (``msgspec.structs.replace`` makes a changed copy; a record's
fields are ``type(record).__struct_fields__``): defining one costs microseconds, where a frozen, slotted
dataclass costs half a millisecond of generated code compiled at import -- about 14 ms for these records,
on every start of every process that reads a log. No field is validated when a record is made.

Numbers are kept as Python ints exactly as printed (x86 sign-extended pointers stay sign-extended); the raw
text a value was read from is kept where a reader may want to see it.
"""

from __future__ import annotations

from typing import Literal

import msgspec

#: How bad a diagnostic is: ``error`` means the input could not be read in full (never "clean").
Severity = Literal["info", "warning", "error"]


class Span(msgspec.Struct, frozen=True):
    """Where a record came from: the input's display path and 1-based inclusive line numbers. In a binary
    input (a crash dump) the lines are those of the reader's text view, and ``offset`` is the byte offset
    of the field read in the file."""

    path: str
    first_line: int
    last_line: int
    offset: int | None = None


class Diagnostic(msgspec.Struct, frozen=True):
    """Something in the input that could not be read or was read only in part; never fatal."""

    span: Span
    message: str
    severity: Severity = "warning"


class BugCheckRecord(msgspec.Struct, frozen=True):
    """A bug check code with its four parameters, from any of the places a debugger prints them.

    ``form`` says which: ``fatal-system-error`` (``*** Fatal System Error: 0x000000c4 (...)``),
    ``bugcheck-line`` (``BugCheck C4, {...}``), ``dot-bugcheck`` (``.bugcheck``),
    ``analyze`` (``!analyze -v``), ``dump-header`` (a crash dump's header).
    """

    span: Span
    form: str
    code: int
    args: tuple[int, ...]
    name: str | None = None
    arg_texts: tuple[str, ...] = ()  # the debugger's description of each argument, when printed
    pointer_bits: int | None = None  # 32 or 64 when the printed width tells
    #: 0-based positions of arguments the input did not print (held as 0 so that the later ones keep
    #: their place); a report shows them as not printed
    missing: tuple[int, ...] = ()
    #: the image the source itself blames (BlueScreenView "Caused By Driver", WhoCrashed "probably caused
    #: by", the blue screen's "What failed"), as printed
    blamed: str | None = None


class PartialBugCheckRecord(msgspec.Struct, frozen=True):
    """A bug check printed in pieces that may lack its code: ``Arg1:`` .. ``Arg4:`` lines pasted without the
    report around them (``form`` ``arg-lines``; the code when nearby text names it: ``Bug check c4 - ...``,
    ``the 0x3B bugcheck``), or a blue screen's text (``blue-screen``: the stop code's NAME, ``What failed``).
    The engine tells the code from the name or from the arguments' descriptions (it has the knowledge base);
    without one it stays a diagnostic."""

    span: Span
    form: str
    args: tuple[int | None, ...]  # by position; None where the paste left an argument out
    arg_texts: tuple[str, ...] = ()
    code: int | None = None
    name: str | None = None
    pointer_bits: int | None = None
    blamed: str | None = None


class FaultSiteRecord(msgspec.Struct, frozen=True):
    """The instruction that faulted as a debugger prints it beside the bug check: ``FAULTING_IP``, an
    exception record's ``ExceptionAddress``, or the ``rip``/``eip``/``pc`` of a ``.cxr``/``.trap`` register
    dump, with the symbol line printed above the disassembly (``UniFairy+0xb141d:``)."""

    span: Span
    source: str  # "FAULTING_IP" | "ExceptionAddress" | "registers"
    address: int | None
    symbol: str | None = None


class WdfLogRecord(msgspec.Struct, frozen=True):
    """Entries of KMDF's in-flight recorder (``!wdfkd.wdflogdump <driver>``), each ``Class::Method -
    message``; ``Vf_`` methods are KMDF's verifier reporting the driver's misuse of the framework."""

    span: Span
    driver: str | None
    entries: tuple[str, ...]


class MentionRecord(msgspec.Struct, frozen=True):
    """A driver image the text names in the lines just before a crash's output ("the IntelHaxm.sys is
    reported as the driver who crashes", "BSOD caused by cng.sys"): the weakest blame, used only when the
    crash output names no driver."""

    span: Span
    image: str
    text: str


class MemoryIntegrityRecord(msgspec.Struct, frozen=True):
    """What a text says about memory integrity (HVCI) on the machine it was taken from.

    ``running`` is True (running), False (configured or expected but not running, or off), or None (the
    text shows only configuration); ``source`` names the tool (``Win32_DeviceGuard``, ``msinfo32``,
    ``Get-ComputerInfo``, ``HalpHvciEnabled``, ``CodeIntegrity event``, ``Windows Security``);
    ``fact`` is the line that says it, ``drivers`` the incompatible drivers Windows Security lists.
    """

    span: Span
    source: str
    running: bool | None
    fact: str
    configured: bool | None = None
    drivers: tuple[str, ...] = ()
    #: virtualization-based security services configured but not running (Win32_DeviceGuard numbers:
    #: 1 Credential Guard, 2 memory integrity, 3 System Guard Secure Launch, ...)
    not_running: tuple[int, ...] = ()


class StackFrame(msgspec.Struct, frozen=True):
    """One frame of a stack listing (``k``-family or ``STACK_TEXT``)."""

    line: int  # input line number of this frame
    text: str  # the frame line as printed, for display
    index: int | None = None
    child_sp: int | None = None
    return_address: int | None = None
    args: tuple[int, ...] = ()
    module: str | None = None
    function: str | None = None
    offset: int | None = None
    address: int | None = None  # the frame's own address when printed bare (no symbol)
    source_file: str | None = None
    source_line: int | None = None
    inline: bool = False
    trap_frame: int | None = None


class StackRecord(msgspec.Struct, frozen=True):
    """A stack listing. ``style`` names the layout seen (``k``, ``kb``, ``kv``, ``kn``, ``kf``, ``kP``,
    ``stack_text``, ``x86``)."""

    span: Span
    style: str
    frames: tuple[StackFrame, ...]


class AnalyzeRecord(msgspec.Struct, frozen=True):
    """One ``!analyze -v`` block: header, arguments, and the ``KEY: value`` fields of Debugging Details.

    ``fields`` keeps every key in input order, unknown ones included; multi-line values are joined with
    ``\\n``. ``key_values`` holds the newer ``KEY_VALUES_STRING`` pairs. The embedded ``STACK_TEXT`` is
    parsed into ``stack``.
    """

    span: Span
    bugcheck: BugCheckRecord | None
    fields: tuple[tuple[str, str], ...] = ()
    key_values: tuple[tuple[str, str], ...] = ()
    stack: StackRecord | None = None

    def field(self, key: str) -> str | None:
        """The first value of ``key`` (case-sensitive, as printed), or ``None``."""
        for name, value in self.fields:
            if name == key:
                return value
        return None


class VerifierBannerRecord(msgspec.Struct, frozen=True):
    """The verifier's ``Verifier Detected a Code Integrity Issue`` banner with its message decoded.

    ``issue`` is the message kind: ``pool-type``, ``page-protection``, ``mdl-mapping``, ``wx-section``,
    ``alignment``, ``iat``, ``unsupported-relocs``, ``straddled-relocs``, or ``unknown`` when the banner's
    message did not match a known format (the raw ``message`` is always kept).
    """

    span: Span
    issue: str
    message: str
    caller: int | None = None
    value: int | None = None  # pool type, protection or priority
    tag: int | None = None
    image: str | None = None
    address: int | None = None  # section header, IAT directory or reloc entry address
    section_name: str | None = None
    reloc_section: int | None = None


class ModuleEntry(msgspec.Struct, frozen=True):
    """A module from an ``lm``-family listing."""

    line: int
    name: str
    start: int
    end: int  # first address after the module
    symbol_status: str | None = None
    pdb_path: str | None = None
    image_name: str | None = None
    image_path: str | None = None
    timestamp: int | None = None
    checksum: int | None = None
    image_size: int | None = None
    unloaded: bool = False
    source: str = "lm"  # where the row comes from: "lm", or a crash dump's driver list or module list


class ModuleListRecord(msgspec.Struct, frozen=True):
    span: Span
    modules: tuple[ModuleEntry, ...]


class CounterSet(msgspec.Struct, frozen=True):
    """The seven code-integrity counters for one driver (or for the whole system when ``module`` is None).

    ``counters`` maps the label as printed (e.g. ``Execute Pool Type Count``) to its value, in input order.
    """

    module: str | None
    counters: tuple[tuple[str, int], ...]
    line: int


class VerifierStatusRecord(msgspec.Struct, frozen=True):
    """``!verifier`` or ``verifier /query`` output: flags, verified drivers and code-integrity counters."""

    span: Span
    source: str  # "!verifier" | "verifier-query" | "kd-notice" (``Driver Verifier: Enabled for X.sys``)
    flags: int | None = None
    enabled_flags: tuple[tuple[int, str], ...] = ()
    drivers: tuple[str, ...] = ()
    counter_sets: tuple[CounterSet, ...] = ()


class ReadinessRecord(msgspec.Struct, frozen=True):
    """A driver-compatibility verdict from the Device Guard readiness tool or ``hvciscan``.

    ``reason`` is the counter label or text the tool gave (e.g. ``execute pool type count``); ``count`` its
    number when given.
    """

    span: Span
    tool: str  # "dg-readiness" | "hvciscan"
    module: str
    reason: str | None = None
    count: int | None = None
    incompatible: bool = True


class EventRecord(msgspec.Struct, frozen=True):
    """A Windows event (CodeIntegrity, DeviceGuard, ...) read from an exported event log."""

    span: Span
    provider: str
    event_id: int
    message: str
    module: str | None = None
    process: str | None = None
    status: int | None = None
    failure_bitmap: int | None = None
    timestamp: str | None = None


class SectionHeader(msgspec.Struct, frozen=True):
    """A PE section as printed by ``!dh``/``!lmi`` (or read from an image)."""

    name: str
    virtual_address: int
    virtual_size: int
    characteristics: int


class ImageHeaderRecord(msgspec.Struct, frozen=True):
    """A PE image's headers as dumped in the debugger (``!dh``, ``!dh -s``, ``!lmi``)."""

    span: Span
    module: str | None
    machine: int | None = None  # IMAGE_FILE_MACHINE_* value as printed (0x8664, 0x14c, 0xaa64 ...)
    image_base: int | None = None
    section_alignment: int | None = None
    file_alignment: int | None = None
    dll_characteristics: int | None = None
    iat_rva: int | None = None
    iat_size: int | None = None
    sections: tuple[SectionHeader, ...] = ()
    address: int | None = None  # the address ``!dh`` was given when it named no module (whose, ``lm`` says)


class SymbolLineRecord(msgspec.Struct, frozen=True):
    """An ``ln`` answer: the nearest symbol to an address as the debugger resolved it."""

    span: Span
    address: int | None
    module: str | None
    function: str | None
    offset: int | None
    source_file: str | None = None
    source_line: int | None = None


class MemoryStringRecord(msgspec.Struct, frozen=True):
    """A string the debugger printed from memory (``dS``, ``du``, ``da``): how a user reads the image and
    section names that the image-compliance 0xC4 subcodes pass only as pointers (Arg2, Arg4).

    ``address`` is the address given to the command (for ``dS`` the UNICODE_STRING, which is what Arg2
    holds), ``text`` the string as printed (continuation lines joined).
    """

    span: Span
    command: str  # "dS" | "du" | "da"
    address: int
    text: str


Record = (
    BugCheckRecord
    | AnalyzeRecord
    | StackRecord
    | VerifierBannerRecord
    | ModuleListRecord
    | VerifierStatusRecord
    | ReadinessRecord
    | EventRecord
    | ImageHeaderRecord
    | SymbolLineRecord
    | MemoryStringRecord
    | PartialBugCheckRecord
    | FaultSiteRecord
    | MentionRecord
    | WdfLogRecord
    | MemoryIntegrityRecord
    | Diagnostic
)


class InputInfo(msgspec.Struct, frozen=True):
    """What was learnt about one input as a whole."""

    path: str
    format: str  # best description of the content: "kd-log", "analyze", "verifier", "event-log", ...
    encoding: str
    lines: int = 0
    bytes_read: int = 0
    diagnostics: tuple[Diagnostic, ...] = ()
