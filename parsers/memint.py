"""What a text says about memory integrity (HVCI) on the machine it came from.

- ``Win32_DeviceGuard`` (``Get-CimInstance``/``Get-WmiObject``, with or without the colons):
  ``SecurityServicesRunning : {1, 2}`` -- 2 is memory integrity (hypervisor-enforced code integrity),
  ``SecurityServicesConfigured``, ``VirtualizationBasedSecurityStatus`` (2 running, 1 enabled not running);
- ``Get-ComputerInfo``: ``DeviceGuardSecurityServicesRunning : {CredentialGuard,
  HypervisorEnforcedCodeIntegrity}``;
- msinfo32: ``Virtualization-based security Services Running  Hypervisor enforced Code Integrity``;
- the debugger: ``dd/db nt!HalpHvciEnabled`` (a non-zero first value: the kernel runs with HVCI);
- Windows Security: the notice "A driver can't load on this device" (memory integrity is on and blocks a
  driver) and the "Incompatible drivers" list (memory integrity cannot be turned on), in the languages it
  ships (headings at the start of a line; non-Latin ones unindented, so the shared line-start search finds
  them without a pass of its own).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from parsers.base import Line, LineCursor
from parsers.deferred import deferred_compile
from parsers.records import MemoryIntegrityRecord, Record, Span

MAX_LINES = 24
HVCI_SERVICE = 2  # Win32_DeviceGuard security service number of memory integrity
_QUOTE = deferred_compile(r"^(?:[ \t]*>)+[ \t]?")
_WMI_FIELD = deferred_compile(r"^\s*(?P<key>[A-Za-z][A-Za-z]+)\s*(?::\s*|\s+)(?P<value>\{[^}]*\}?|\S.*?)\s*$")
_COMPUTER_INFO = deferred_compile(
    r"^\s*DeviceGuard(?P<key>SecurityServices(?:Running|Configured))\s*:\s*(?P<value>.*)$"
)
_MSINFO = deferred_compile(
    r"^\s*Virtualization-based security Services (?P<key>Running|Configured)\s*[:\t ]?\s*(?P<value>.*)$", re.I
)
_HVCI_WORDS = deferred_compile(r"Hypervisor\s*enforced\s*Code\s*Integrity", re.I)
_HALP = deferred_compile(r"HalpHvciEnabled")
_DUMP_VALUE = deferred_compile(r"^\s*[0-9a-fA-F`]{8,17}\s+(?P<value>[0-9a-fA-F]{2,8})\b")
_DRIVER = deferred_compile(r"(?P<name>[\w.$-]+\.sys)\b", re.I)
_LIST_HEADINGS = (
    "Incompatible drivers",
    "Inkompatible Treiber",
    "Pilotes incompatibles",
    "Controladores incompatibles",
    "Driver incompatibili",
    "Drivers incompatíveis",
)
_NATIVE_HEADINGS = ("비호환 드라이버", "互換性のないドライバー", "不兼容的驱动程序", "Несовместимые драйверы")


def _numbers(value: str) -> set[int]:
    return {int(n) for n in re.findall(r"\d+", value)}


class MemoryIntegrityParser:
    name = "memint"
    trigger = (
        r"^[\s>*]*(?:AvailableSecurityProperties|RequiredSecurityProperties|SecurityServicesConfigured"
        r"|SecurityServicesRunning|VirtualizationBasedSecurityStatus|DeviceGuardSecurityServices"
        r"|Virtualization-based security Services|A driver can.t load on this device"
        r"|" + "|".join(_LIST_HEADINGS) + r")"
        r"|^(?:" + "|".join(_NATIVE_HEADINGS) + r")"
        r"|^[\s>*0-9:]*kd> d[bdw] (?:nt!)?HalpHvciEnabled"
    )

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        text = _QUOTE.sub("", first.text).strip()
        if text.startswith(_LIST_HEADINGS) or text.startswith(_NATIVE_HEADINGS):
            yield from self._incompatible_list(first, text, cursor)
        elif text.startswith("A driver can"):
            yield from self._notice(first, text, cursor)
        elif _HALP.search(text):
            yield from self._halp(first, cursor)
        else:
            yield from self._settings(first, cursor)

    @staticmethod
    def _block(first: Line, cursor: LineCursor, keep: re.Pattern[str]) -> tuple[list[Line], int]:
        lines, last = [first], first.number
        for _ in range(MAX_LINES):
            line = cursor.next()
            if line is None:
                break
            text = _QUOTE.sub("", line.text)
            if not text.strip():
                if len(lines) > 1:
                    cursor.push_back(line)
                    break
                continue
            if not keep.match(text):
                cursor.push_back(line)
                break
            lines.append(line)
            last = line.number
        return lines, last

    def _settings(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        """Win32_DeviceGuard, Get-ComputerInfo or msinfo32 lines: what runs and what is configured."""
        pattern = _MSINFO if _MSINFO.match(_QUOTE.sub("", first.text)) else _WMI_FIELD
        lines, last = self._block(first, cursor, pattern)
        running: bool | None = None
        configured: bool | None = None
        services: dict[str, set[int]] = {}
        facts: list[str] = []
        source = "Win32_DeviceGuard"
        for line in lines:
            text = _QUOTE.sub("", line.text).strip()
            found = _COMPUTER_INFO.match(text) or _MSINFO.match(text)
            if found is not None:
                source = "Get-ComputerInfo" if text.startswith("DeviceGuard") else "msinfo32"
                key, on = found["key"].lower(), bool(_HVCI_WORDS.search(found["value"]))
            else:
                field = _WMI_FIELD.match(text)
                if field is None or field["key"] not in (
                    "SecurityServicesRunning",
                    "SecurityServicesConfigured",
                ):
                    continue
                key, on = field["key"].lower(), HVCI_SERVICE in _numbers(field["value"])
                services[key] = _numbers(field["value"])
            if key.endswith("running"):
                running = on
            else:
                configured = on
            facts.append(text)
        if running is None and configured is None:
            return
        span = Span(cursor.path, first.number, last)
        missing = services.get("securityservicesconfigured", set()) - services.get(
            "securityservicesrunning", set()
        )
        if configured and running is False:
            missing.add(HVCI_SERVICE)
        yield MemoryIntegrityRecord(
            span,
            source,
            running,
            "; ".join(facts),
            configured=configured,
            not_running=tuple(sorted(missing - {0})),
        )

    def _notice(self, first: Line, text: str, cursor: LineCursor) -> Iterator[Record]:
        """Windows Security's notice: memory integrity is on and keeps a driver from loading."""
        lines, last = self._block(first, cursor, re.compile(r".*\S"))
        drivers = tuple(dict.fromkeys(m["name"] for line in lines for m in _DRIVER.finditer(line.text)))
        span = Span(cursor.path, first.number, last)
        yield MemoryIntegrityRecord(span, "Windows Security", True, text, configured=True, drivers=drivers)

    def _incompatible_list(self, first: Line, text: str, cursor: LineCursor) -> Iterator[Record]:
        """Windows Security's incompatible-driver list: memory integrity cannot be turned on until the listed
        drivers are gone (a driver and its ``oemNN.inf``, sometimes listed twice)."""
        names: list[str] = []
        last = first.number
        blanks = 0
        for _ in range(MAX_LINES):
            line = cursor.next()
            if line is None:
                break
            if not line.text.strip():
                blanks += 1
                if blanks > 1 or names:  # the list ends at the first blank line after its drivers
                    break
                continue
            blanks = 0
            names.extend(m["name"] for m in _DRIVER.finditer(line.text))
            last = line.number
        drivers = tuple(dict.fromkeys(names))
        span = Span(cursor.path, first.number, last)
        yield MemoryIntegrityRecord(span, "Windows Security", False, text, configured=None, drivers=drivers)

    def _halp(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        following = cursor.next()
        value = _DUMP_VALUE.match(following.text) if following is not None else None
        if following is None or value is None:
            if following is not None:
                cursor.push_back(following)
            return
        running = int(value["value"], 16) != 0
        span = Span(cursor.path, first.number, following.number)
        fact = f"{_QUOTE.sub('', first.text).strip()} -> {following.text.strip()}"
        yield MemoryIntegrityRecord(span, "HalpHvciEnabled", running, fact)


PARSER = MemoryIntegrityParser()
