"""The registered block parsers, in the order their triggers are tried on a candidate line.

Each parser is registered by name with its trigger as data, and its module is imported when the first
block for it turns up: the prefilter and the dispatcher need only the triggers, so an input whose lines are
all noise (most short inputs) imports no parser at all, and one with a bug check imports the few parsers
its lines call for. Each trigger here must be the one its parser's class declares (next to the code that
reads what it matches); a test checks that they agree, name for name.

Adding a log format: write a module with a module-level ``PARSER`` (see ``parsers.base.BlockParser``), add
one ``Registered`` line to ``PARSERS`` with its trigger (and its input format to ``FORMATS`` if it is not a
debugger-session block). Triggers are matched with ``re.MULTILINE`` against one line. For speed, start
every alternative with ``^``, optional leading junk (``\\s*``, ``[\\s>*]*``, ``[\\s0-9:]*`` -- not ``\\d``,
which also matches non-ASCII digits) and then at least three characters of literal text: all such
alternatives share one search that runs from line start to line start (``parsers.prefilter``). Any other
alternative costs an extra pass over every chunk (a case-insensitive one also a lower-cased copy of the
chunk).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from parsers.base import BlockParser, Line, LineCursor
    from parsers.records import Record


class Registered:
    """A registered parser: its name and trigger, and its module (under ``parsers``), imported by the
    first block it reads (:meth:`load`)."""

    __slots__ = ("_parser", "module", "name", "trigger")

    def __init__(self, name: str, module: str, trigger: str) -> None:
        self.name = name
        self.module = module
        self.trigger = trigger
        self._parser: BlockParser | None = None

    def load(self) -> BlockParser:
        """The module's ``PARSER``, importing the module now if no block has needed it yet."""
        if self._parser is None:
            parser: BlockParser = importlib.import_module(f"parsers.{self.module}").PARSER
            self._parser = parser
        return self._parser

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        return self.load().parse(first, cursor)

    def __repr__(self) -> str:
        return f"Registered({self.name!r}, {self.module!r})"


PARSERS: tuple[Registered, ...] = (
    Registered(
        "kd",
        "kd",
        r"^[\s>*]*(?:Fatal System Error:|BugCheck\s+[0-9a-fA-F]+\s*,\s*\{"
        r"|Bugcheck code\s+[0-9a-fA-F]+)",
    ),
    Registered("banner", "banner", r"^[\s>*]*Verifier Detected a Code Integrity Issue"),
    Registered(
        "analyze",
        "analyze",
        r"^\*{70,}\s*$|^[\s>*]*Bugcheck Analysis|^[\s>*]*Debugging Details:|^[\s>*]*Arguments:\s*$"
        r"|^[\s>*]*BUGCHECK(?:\\?_)(?:CODE|STR)\s*:",
    ),
    Registered(
        "stack",
        "stack",
        r"^[\s#>]*Memory\s+Child-SP|^[\s#>]*Child-SP\s+RetAddr|^[\s#>]*ChildEBP\s+RetAddr"
        r"|^[\s#>]*Call Site\s*$|^[\s#>]*RetAddr\s+:\s+Args to Child"
        r"|^[\s>*]*[0-9: ]*kd> k[a-zA-Z]*(?:\s|$)|^[\s>*]*STACK_TEXT:",
    ),
    Registered("ln", "ln", r"^[\s>*]*[0-9: ]*kd> ln\b"),
    Registered("lm", "lm", r"^\s*(?:start\s+end\s+module name\b|Unloaded modules:)"),
    Registered(
        "verifier",
        "verifier",
        r"(?i)^\s*(?:Verify Flags Level\s|Verify Level\s+[0-9a-f]+\b|Verifier Flags\s*:"
        r"|Level:\s+[0-9a-f]{8}\s*$|Code Integrity Statistics\s*:|Module:\s+\S+\s+\("
        r"|No drivers are currently verified|Execute\s+Pool\s+Type\s+Count"
        r"|Execute\s+Page\s+Protection\s+Count|Execute\s+Page\s+Mapping\s+Count"
        r"|Execute\-Write\s+Section\s+Count|Section\s+Alignment\s+Failures"
        r"|Unsupported\s+Relocs\s+Count|IAT\s+in\s+Executable\s+Section\s+Count)",
    ),
    Registered(
        "readiness",
        "readiness",
        r"(?i)^\s*(?:incompatible HVCI Kernel Driver Modules found|No Incompatible Drivers found"
        r"|VbsGetIssues\s*:|VbsIsRecommended\s*:|HVCI incompatible driver scan (?:start|passed))"
        r"|^\s*====*\s*Step\s+\d+\s+Driver Compat",
    ),
    Registered(
        "events",
        "events",
        r"^Event\[\d+\]:|^\s*<Event(?:\s+xmlns\s*=|>)|^\s*<Events>[^\n]*<Event[\s>]"
        r"|^\s*<\?xml\b[^\n]*<Event[\s>]|^\ufeff?Level,Date and Time,Source,Event ID,Task Category"
        r"|^(?:TimeCreated|ProviderName|Message)\s+: |^Log Name:\s+\S|^\s+ProviderName: \S",
    ),
    Registered(
        "imagedump",
        "imagedump",
        r"^[\s0-9:]*kd> !(?:dh|lmi)\b|^\s*File Type:\s+(?:EXECUTABLE IMAGE|DLL)|^\s*FILE HEADER VALUES"
        r"|^\s*OPTIONAL HEADER VALUES|^\s*SECTION HEADER #\d+|^\s*Loaded Module Info:\s*\[",
    ),
    Registered("memstring", "memstring", r"^[\s0-9:]*kd> (?:dS|du|da) +(?:0x)?[0-9a-fA-F`]+\s*$"),
    Registered(
        "faultsite",
        "faultsite",
        r"^[\s>*]*FAULTING_IP\s*:|^[\s>*]*ExceptionAddress\s*:|^[\s>*]*(?:rip|eip|pc)=[0-9a-fA-F]",
    ),
    Registered(
        "arglines",
        "arglines",
        r"^[\s>*]*Arg[1-4]\s*:|^[\s>*]*(?:- |\+ )Arg[1-4]\s*:|^[\s>*]*[0-9]+(?:\. |\) )Arg[1-4]\s*:"
        r"|^[\s>*]*Bug check [0-9a-fA-F]{1,8} - ",
    ),
    Registered("rebooted", "rebooted", r"^[\s>*]*The computer has rebooted from a|[Bb]ugcheck was"),
    Registered("kernelpower", "kernelpower", r"^[\s>*]*(?:BugcheckCode|<Data Name=.BugcheckCode)"),
    Registered("wer", "wer", r"^[\s>*]*(?:Problem Event Name|Event Name)\s*:?\s*BlueScreen"),
    Registered(
        "crashviewers",
        "crashviewers",
        r"\.dmp(?:\t| {2})|^[\s>*]*Bug ?[Cc]heck (?:[Cc]ode|[Ss]tring)\s*:"
        r"|^[\s>*]*This was probably caused by the following module",
    ),
    Registered(
        "bluescreen",
        "bluescreen",
        r"^[\s>*]*(?:STOP: 0x|Stop code|Stop Code|stop code|STOP CODE|What failed|what failed)",
    ),
    Registered(
        "memint",
        "memint",
        r"^[\s>*]*(?:AvailableSecurityProperties|RequiredSecurityProperties|SecurityServicesConfigured"
        r"|SecurityServicesRunning|VirtualizationBasedSecurityStatus|DeviceGuardSecurityServices"
        r"|Virtualization-based security Services|A driver can.t load on this device"
        r"|Incompatible drivers|Inkompatible Treiber|Pilotes incompatibles|Controladores incompatibles"
        r"|Driver incompatibili|Drivers incompatíveis)"
        r"|^(?:비호환 드라이버|互換性のないドライバー|不兼容的驱动程序"
        r"|Несовместимые драйверы)|^[\s>*0-9:]*kd> d[bdw] (?:nt!)?HalpHvciEnabled",
    ),
    Registered(
        "verifiernotice",
        "verifiernotice",
        r"^[\s>*]*Driver Verifier: |^[\s>*0-9:]*kd> ![Vv]erifier [^\n]*\.sys",
    ),
    Registered(
        "wdflog",
        "wdflog",
        r"^[\s>*0-9:]*(?:FxIoQueue|FxRequest|FxDevice|FxPkgPnp|FxPkgIo|FxPkgFdo|FxPkgPdo|FxDriver"
        r"|FxIoTarget|FxInterrupt|FxDmaEnabler|FxUsbDevice|FxUsbPipe|FxObject|FxWorkItem|FxTimer|FxDpc"
        r"|FxPowerIdleMachine|FxSelfManagedIoMachine|FxWmiIrpHandler|FxVerifier)::"
        r"|^[\s>*0-9:]*kd> !(?:wdfkd\.)?wdflogdump ",
    ),
)

#: ``InputInfo.format`` contributed by each parser's blocks (by parser name); unlisted ones are debugger
#: output ("kd-log").
FORMATS: dict[str, str] = {
    "analyze": "analyze",
    "verifier": "verifier",
    "readiness": "readiness",
    "events": "event-log",
    "rebooted": "event-log",
    "kernelpower": "event-log",
    "wer": "wer-report",
    "crashviewers": "crash-viewer",
}
