"""Driver-compatibility verdicts from Microsoft's readiness tools.

Two tools print them:

- the Device Guard readiness script (``DG_Readiness_Tool*.ps1 -Capable HVCI``, console or
  ``C:\\DGLogs\\DeviceGuardCheckLog.txt``): a ``Step N Driver Compat`` header, then ``InCompatible HVCI Kernel
  Driver Modules found`` (the casing differs between versions) with ``Module: X.sys`` / ``Reason: counter: N``
  pairs, ``Windows Signed: X.sys`` exemptions, ``No Incompatible Drivers found`` and, when printed, a list of
  compatible modules;
- ``hvciscan.exe``: ``VbsGetIssues: 0x...``, ``VbsIsRecommended: 0|1``,
  ``HVCI incompatible driver scan start``, lines naming incompatible ``*.sys`` files and their ``oemNN.inf``
  packages, ``... scan passed``.

Each named module becomes a :class:`ReadinessRecord`; compatible and exempted ones carry
``incompatible=False`` so that a reader can tell "checked and fine" from "not mentioned". A clean verdict with
no modules is kept as an informational diagnostic rather than dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from parsers.base import Line, LineCursor, read_block
from parsers.deferred import deferred_compile
from parsers.records import Diagnostic, ReadinessRecord, Record, Span

_STEP = deferred_compile(r"Step\s+\d+\s+Driver\s+Compat", re.IGNORECASE)
_INCOMPATIBLE_HEADING = deferred_compile(
    r"incompatible\s+HVCI\s+Kernel\s+Driver\s+Modules\s+found", re.IGNORECASE
)
_NONE_FOUND = deferred_compile(r"No\s+Incompatible\s+Drivers\s+found", re.IGNORECASE)
_COMPATIBLE_HEADING = deferred_compile(
    r"^\s*(?:List\s+of\s+)?Compatible\s+(?:HVCI\s+)?(?:Kernel\s+)?(?:Driver\s+)?Modules(?:\s+found)?\s*:?\s*$",
    re.IGNORECASE,
)
_MODULE = deferred_compile(r"^\s*Module\s*:\s*(?P<name>[^\s(]+)", re.IGNORECASE)
_REASON = deferred_compile(r"^\s*Reason\s*:\s*(?P<reason>.*?)(?:\s*:\s*(?P<count>\d+))?\s*$", re.IGNORECASE)
_WINDOWS_SIGNED = deferred_compile(r"^\s*Windows\s+Signed\s*:\s*(?P<name>\S+)", re.IGNORECASE)
_DG_MESSAGE = deferred_compile(
    r"HVCI is already enabled|Please disable HVCI|Completed scan|driver compat list|Checking\s+Driver"
    r"|verifier|reboot",
    re.IGNORECASE,
)
_RULE = deferred_compile(r"={5,}")
_PROMPT = deferred_compile(r"^(?:PS )?[A-Za-z]:\\[^>]*>")
_MAX_LINE = 8_192
_BARE_MODULE = deferred_compile(r"^\s*(?P<name>[\w.$~+-]+\.(?:sys|dll|exe))\s*$", re.IGNORECASE)

_VBS_ISSUES = deferred_compile(r"^\s*VbsGetIssues\s*:\s*(?P<value>0x[0-9a-fA-F]+|\d+)", re.IGNORECASE)
_VBS_RECOMMENDED = deferred_compile(r"^\s*VbsIsRecommended\s*:\s*(?P<value>\d+)", re.IGNORECASE)
_HVCISCAN_LINE = deferred_compile(r"^\s*Vbs\w+\s*:|HVCI\s+incompatible\s+driver\s+scan", re.IGNORECASE)
_SCAN_START = deferred_compile(r"HVCI\s+incompatible\s+driver\s+scan\s+start", re.IGNORECASE)
_SCAN_PASSED = deferred_compile(r"HVCI\s+incompatible\s+driver\s+scan\s+passed", re.IGNORECASE)
_SCAN_WORDS = deferred_compile(r"hvci|vbs|scan|driver|incompatib|hint", re.IGNORECASE)
_SYS_SUFFIX = deferred_compile(r"\.sys\b", re.IGNORECASE)
_NAME_STOP = frozenset(" \t\"'<>|,;()[]=")
_INF_FILE = deferred_compile(r"\b(?P<inf>oem\d+\.inf)\b", re.IGNORECASE)

_MAX_BLOCK_LINES = 100_000


def _basename(path: str) -> str:
    return path.replace("/", "\\").rsplit("\\", 1)[-1]


def _sys_file(text: str) -> str | None:
    """The first ``*.sys`` path on a line, found from its suffix backwards (linear even on huge lines)."""
    for suffix in _SYS_SUFFIX.finditer(text):
        start = suffix.start()
        while start > 0 and text[start - 1] not in _NAME_STOP:
            start -= 1
        if start < suffix.start():
            return text[start : suffix.end()]
    return None


class ReadinessParser:
    """Reads a DG Readiness driver-compat section or an ``hvciscan`` run into :class:`ReadinessRecord` s."""

    name = "readiness"
    trigger = (
        r"(?i)^\s*(?:incompatible HVCI Kernel Driver Modules found|No Incompatible Drivers found"
        r"|VbsGetIssues\s*:|VbsIsRecommended\s*:|HVCI incompatible driver scan (?:start|passed))"
        r"|^\s*====*\s*Step\s+\d+\s+Driver Compat"
    )

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        if len(first.text) > _MAX_LINE:
            yield Diagnostic(
                Span(cursor.path, first.number, first.number),
                f"readiness: {len(first.text)}-character line is too long for this block; skipped",
            )
            return
        if _HVCISCAN_LINE.search(first.text) and not _INCOMPATIBLE_HEADING.search(first.text):
            yield from self._hvciscan(first, cursor)
        else:
            yield from self._dg_readiness(first, cursor)

    def _lines(self, first: Line, cursor: LineCursor, belongs: Callable[[str], bool]) -> list[Line]:
        """``first`` and then each following line ``belongs`` accepts (see :func:`read_block`). A run of
        blank lines inside the block is kept as one blank line (the last of the run), which ends a module's
        entry; blanks after the block go back to the cursor."""
        lines = [first]

        def take(line: Line, after_blank: bool) -> bool:
            if not belongs(line.text):
                return False
            if after_blank:
                lines.append(Line(line.number - 1, ""))
            lines.append(line)
            return True

        read_block(cursor, first, take, limit=_MAX_BLOCK_LINES)
        return lines

    def _dg_readiness(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        in_step = bool(_STEP.search(first.text))

        def belongs(text: str) -> bool:
            if len(text) > _MAX_LINE:
                return False
            if in_step:
                # The tool's log: everything up to the next "=== Step N ... ===" header is this step's output.
                return not (_RULE.search(text) or _PROMPT.match(text))
            return bool(
                _INCOMPATIBLE_HEADING.search(text)
                or _NONE_FOUND.search(text)
                or _COMPATIBLE_HEADING.match(text)
                or _MODULE.match(text)
                or _REASON.match(text)
                or _WINDOWS_SIGNED.match(text)
                or _BARE_MODULE.match(text)
                or _DG_MESSAGE.search(text)
                and not _RULE.search(text)
            )

        records: list[Record] = []
        module: ReadinessRecord | None = None
        in_compatible_list = False
        none_found: Line | None = None
        last = first.number
        for line in self._lines(first, cursor, belongs):
            last = line.number
            text = line.text
            span = Span(cursor.path, line.number, line.number)
            if _INCOMPATIBLE_HEADING.search(text):
                in_compatible_list = False
            elif _COMPATIBLE_HEADING.match(text):
                in_compatible_list = True
            elif _NONE_FOUND.search(text):
                none_found = line
            elif found := _MODULE.match(text):
                if module:
                    records.append(module)
                module = ReadinessRecord(span, "dg-readiness", found.group("name"), incompatible=True)
                continue
            elif (reason := _REASON.match(text)) and module:
                count = reason.group("count")
                module = ReadinessRecord(
                    Span(cursor.path, module.span.first_line, line.number),
                    "dg-readiness",
                    module.module,
                    reason=reason.group("reason").strip() or None,
                    count=int(count) if count is not None else None,
                    incompatible=True,
                )
            elif signed := _WINDOWS_SIGNED.match(text):
                records.append(
                    ReadinessRecord(
                        span,
                        "dg-readiness",
                        signed.group("name"),
                        reason="Windows Signed",
                        incompatible=False,
                    )
                )
            elif (bare := _BARE_MODULE.match(text)) and in_compatible_list:
                records.append(ReadinessRecord(span, "dg-readiness", bare.group("name"), incompatible=False))
            if module and not _REASON.match(text):
                records.append(module)
                module = None
        if module:
            records.append(module)
        if none_found is not None and not any(
            isinstance(r, ReadinessRecord) and r.incompatible for r in records
        ):
            records.append(
                Diagnostic(
                    Span(cursor.path, none_found.number, none_found.number),
                    "DG Readiness tool: no incompatible drivers found",
                    "info",
                )
            )
        if not records:
            records.append(
                Diagnostic(
                    Span(cursor.path, first.number, last),
                    "DG Readiness tool: driver-compat section without any module verdict",
                    "info",
                )
            )
        yield from records

    def _hvciscan(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        def belongs(text: str) -> bool:
            if len(text) > _MAX_LINE or _PROMPT.match(text):
                return False
            return bool(_SCAN_WORDS.search(text) or _sys_file(text) or _INF_FILE.search(text))

        records: list[Record] = []
        passed: Line | None = None
        started = False
        last = first.number
        for line in self._lines(first, cursor, belongs):
            last = line.number
            text = line.text.strip()
            if _SCAN_START.search(text):
                started = True
            elif _SCAN_PASSED.search(text):
                passed = line
            elif _VBS_ISSUES.match(text) or _VBS_RECOMMENDED.match(text):
                continue
            elif started and (found := _sys_file(text)):
                records.append(
                    ReadinessRecord(
                        Span(cursor.path, line.number, line.number),
                        "hvciscan",
                        _basename(found),
                        reason=text,
                        incompatible=True,
                    )
                )
            elif started and _INF_FILE.search(text) and records and isinstance(records[-1], ReadinessRecord):
                # The package name printed on the line after its driver: keep it with that driver's verdict.
                previous = records[-1]
                records[-1] = ReadinessRecord(
                    Span(cursor.path, previous.span.first_line, line.number),
                    "hvciscan",
                    previous.module,
                    reason=f"{previous.reason} {text}" if previous.reason else text,
                    incompatible=True,
                )
        if passed is not None and not records:
            records.append(
                Diagnostic(
                    Span(cursor.path, passed.number, passed.number),
                    "hvciscan: incompatible driver scan passed",
                    "info",
                )
            )
        if not records:
            records.append(
                Diagnostic(
                    Span(cursor.path, first.number, last),
                    "hvciscan: output without a driver verdict (scan not finished?)",
                    "info",
                )
            )
        yield from records


PARSER = ReadinessParser()
