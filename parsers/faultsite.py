"""Where the faulting instruction is, as a debugger prints it beside a bug check.

- ``FAULTING_IP:`` with the symbol (``adgnetworktdidrv+5715``, ``IntelHaxm!ept_free+1b [file @ line]``) and
  the disassembly line (``fffff880`00c8d715 8b6e28  mov ...``) below it;
- a ``.cxr``/``.trap`` register dump (``rax=... rip=fffff807...``; ``eip=`` on x86, ``pc=`` on ARM64),
  optionally followed by the symbol line (``UniFairy+0xb141d:``) and the disassembly of that instruction;
- an exception record's ``ExceptionAddress: fffff800... (nt!KiFoo+0x12)``.

Inside ``!analyze -v`` these are field values (the engine reads them with :func:`site_in_text`); pasted
alone (a blog quoting ``.cxr`` output, a fragment of an analysis) this parser emits a
:class:`~parsers.records.FaultSiteRecord`.
"""

from __future__ import annotations

from collections.abc import Iterator

from parsers.base import Line, LineCursor, read_block
from parsers.deferred import deferred_compile
from parsers.records import FaultSiteRecord, Record, Span

MAX_LINES = 16  # a register dump with its symbol and disassembly lines is about ten lines

_ADDRESS = r"[0-9a-fA-F]{8}(?:`?[0-9a-fA-F]{8})?"
_QUOTE = deferred_compile(r"^(?:[ \t]*>)+[ \t]?")
_FAULTING_IP = deferred_compile(r"^\s*FAULTING_IP\s*:\s*(?P<rest>.*)$")
_EXCEPTION_ADDRESS = deferred_compile(
    rf"ExceptionAddress\s*:\s*(?P<address>{_ADDRESS})(?:\s*\((?P<symbol>[^()\s]+)\))?"
)
_REGISTER_IP = deferred_compile(rf"(?<![\w])(?:rip|eip|pc)=(?P<address>{_ADDRESS})\b")
_REGISTER_LINE = deferred_compile(r"^\s*(?:[a-z][a-z0-9]{1,4}=[0-9a-fA-F`]+\s*)+(?:\s+\S.*)?$")
_FLAGS_LINE = deferred_compile(r"^\s*(?:iopl=|cs=|nzcv=|cpsr=)")
_SYMBOL = deferred_compile(
    r"^(?P<symbol>[A-Za-z_][\w.$-]*(?:!\S+?)?(?:\+(?:0x)?[0-9a-fA-F`]+)?)(?:\s+\[[^\]]*\])?\s*:?\s*$"
)
_DISASSEMBLY = deferred_compile(rf"^(?P<address>{_ADDRESS})\s+[0-9a-fA-F]{{2,}}\s+[a-z]")


def _hex(text: str) -> int:
    return int(text.replace("`", ""), 16)


def _symbol_and_address(lines: list[str]) -> tuple[str | None, int | None]:
    """The symbol line and the disassembly line's address of a FAULTING_IP value or a register dump."""
    symbol: str | None = None
    address: int | None = None
    for text in lines:
        text = text.strip()
        disassembly = _DISASSEMBLY.match(text)
        if disassembly is not None:
            address = address if address is not None else _hex(disassembly["address"])
            continue
        found = _SYMBOL.match(text)
        if found is not None and symbol is None and "=" not in text:
            symbol = found["symbol"]
    return symbol, address


def site_in_text(source: str, text: str) -> tuple[int | None, str | None] | None:
    """(address, symbol) of one kind of fault site in a block of text (an ``!analyze`` field's value), or
    ``None`` when the text has none. ``source`` is ``FAULTING_IP``, ``registers`` or ``ExceptionAddress``."""
    lines = text.splitlines()
    if source == "FAULTING_IP":
        symbol, address = _symbol_and_address(lines)
        return (address, symbol) if address is not None or symbol is not None else None
    if source == "ExceptionAddress":
        found = _EXCEPTION_ADDRESS.search(text)
        return (_hex(found["address"]), found["symbol"]) if found else None
    registers = _REGISTER_IP.search(text)
    if registers is None:
        return None
    after = text[registers.end() :].splitlines()[1:]
    symbol, _ = _symbol_and_address([t for t in after if not _REGISTER_LINE.match(t)])
    return _hex(registers["address"]), symbol


class FaultSiteParser:
    name = "faultsite"
    # A register dump is read from its instruction-pointer line (rip= on x64, eip= on x86, pc= on ARM64),
    # the one that tells where the fault is, not from its first line: a session's noise holds register
    # lines at every break, and each trigger costs a block read.
    trigger = (
        r"^[\s>*]*FAULTING_IP\s*:|^[\s>*]*ExceptionAddress\s*:|^[\s>*]*(?:rip|eip|pc)=[0-9a-fA-F]"
    )

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        text = _QUOTE.sub("", first.text)
        if _FAULTING_IP.match(text):
            yield from self._faulting_ip(first, cursor)
        elif "ExceptionAddress" in text:
            found = site_in_text("ExceptionAddress", text)
            if found is not None:
                span = Span(cursor.path, first.number, first.number)
                yield FaultSiteRecord(span, "ExceptionAddress", found[0], found[1])
        else:
            yield from self._registers(first, cursor)

    @staticmethod
    def _faulting_ip(first: Line, cursor: LineCursor) -> Iterator[Record]:
        lines = [_FAULTING_IP.match(_QUOTE.sub("", first.text))["rest"]]  # type: ignore[index]

        def take(line: Line, after_blank: bool) -> bool:
            text = _QUOTE.sub("", line.text).strip()
            if after_blank or len(lines) >= 3 or not (_SYMBOL.match(text) or _DISASSEMBLY.match(text)):
                return False
            lines.append(text)
            return True

        end = read_block(cursor, first, take, limit=3)
        symbol, address = _symbol_and_address(lines)
        if symbol is not None or address is not None:
            span = Span(cursor.path, first.number, end.last_line)
            yield FaultSiteRecord(span, "FAULTING_IP", address, symbol)

    @staticmethod
    def _registers(first: Line, cursor: LineCursor) -> Iterator[Record]:
        lines = [_QUOTE.sub("", first.text)]
        state = {"tail": 0}  # lines read after the registers: the symbol line and its disassembly

        def take(line: Line, after_blank: bool) -> bool:
            text = _QUOTE.sub("", line.text)
            if after_blank:
                return False
            if state["tail"] == 0 and (_REGISTER_LINE.match(text) or _FLAGS_LINE.match(text)):
                lines.append(text)
                return True
            stripped = text.strip()
            if state["tail"] < 2 and (_SYMBOL.match(stripped) or _DISASSEMBLY.match(stripped)):
                state["tail"] += 1
                lines.append(text)
                return True
            return False

        end = read_block(cursor, first, take, limit=MAX_LINES)
        found = site_in_text("registers", "\n".join(lines))
        if found is not None:
            span = Span(cursor.path, first.number, end.last_line)
            yield FaultSiteRecord(span, "registers", found[0], found[1])


PARSER = FaultSiteParser()
