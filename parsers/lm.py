"""Module lists from the debugger's ``lm`` family (``lm``, ``lmv``, ``lmvm NAME``, ``lm t n``, ``lm f``).

The block starts at the column header (``start    end        module name``, x86 or x64 widths) or at an
``Unloaded modules:`` heading, and runs over the module rows, the indented ``lmv`` detail lines under each row
and the unloaded-module section. The symbol status column is kept as printed (``T (no symbols)``,
``(deferred)``, ``(pdb symbols)`` ...) because its flags mean different things to different readers; the PDB
path or export image name that follows it is split off. ``Browse ...`` DML link text and the debugger's own
symbol-load warnings may be interleaved and are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import msgspec
from msgspec.structs import replace

from parsers.base import Line, LineCursor, read_block
from parsers.deferred import deferred_compile
from parsers.records import Diagnostic, ModuleEntry, ModuleListRecord, Record, Span

# An address as lm prints it: 8 hex digits (x86), 16 with a backtick after the high half (x64), or 16 plain.
_ADDR = r"(?:[0-9a-fA-F]{8}`[0-9a-fA-F]{8}|[0-9a-fA-F]{16}|[0-9a-fA-F]{8})"
_HEADER = deferred_compile(r"^\s*start\s+end\s+module name\b")
_UNLOADED = deferred_compile(r"^\s*Unloaded modules:")
_ROW = deferred_compile(rf"^\s*(?P<start>{_ADDR})\s+(?P<end>{_ADDR})\s+(?P<name>\S+)(?:\s+(?P<rest>.*))?$")
# The status column: optional flag words (#, T, C, M, DIA, Export, PERF, Stripped, PDB, COFF) then "(...)".
_STATUS = deferred_compile(
    r"^(?P<status>(?:(?:[#A-Za-z]+)\s+)*\((?:deferred|[\w ]*symbols[\w ]*)\))\s*(?P<tail>.*)$"
)
_TIMESTAMP_HEX = deferred_compile(r"\(([0-9a-fA-F]{8})\)")
_LEADING_HEX = deferred_compile(r"^([0-9a-fA-F]{8})\b")
_IMAGE_FILE = deferred_compile(
    r"^(?P<image>\S+\.(?:sys|exe|dll|drv|efi|cpl|ocx|mui|ax))\b\s*(?P<after>.*)$", re.IGNORECASE
)
_DETAIL = deferred_compile(r"^\s+(?P<key>[A-Za-z][A-Za-z ]*?)\s*:\s*(?P<value>.*)$")
_INLINE_FIELD = deferred_compile(
    r"\b(Timestamp|Checksum|CheckSum|ImageSize)\s*:\s*(.*?)(?=\s+(?:Timestamp|Checksum|CheckSum|ImageSize)\s*:|$)"
)
_BROWSE = deferred_compile(r"^\s*Browse (?:full module list|all global symbols)")
_DEBUGGER_NOISE = deferred_compile(
    r"^\*\*\* (?:WARNING: Unable to verify|ERROR: Module load completed but symbols could not be loaded"
    r"|ERROR: Symbol file could not be found)"
)
# Indented lines lmv prints without a "key:" shape.
_DETAIL_PHRASE = deferred_compile(
    r"^\s+(?:Image was built with|Information from resource tables|This is a reproducible)"
)

_MAX_BLOCK_LINES = 200_000
_MAX_LINE = 8_192  # no lm row or detail line comes near this; longer lines are not read as part of a listing


def _addr(text: str) -> int:
    return int(text.replace("`", ""), 16)


def _timestamp(value: str) -> int | None:
    """``Wed Jul  8 15:43:44 2015 (559DA7A0)``, ``5F0A3C1B (This is a reproducible build ...)``, ``unavailable
    (00000000)``: the eight hex digits the debugger prints next to its rendering."""
    found = _TIMESTAMP_HEX.search(value)
    if found:
        return int(found.group(1), 16)
    lead = _LEADING_HEX.match(value.strip())
    return int(lead.group(1), 16) if lead else None


def _hex_value(value: str) -> int | None:
    token = value.strip().split(" ", 1)[0] if value.strip() else ""
    try:
        return int(token, 16)
    except ValueError:
        return None


class _Pending(msgspec.Struct):
    """A module row whose ``lmv`` detail lines may still follow; what they say wins over the row."""

    entry: ModuleEntry
    image_name: str | None = None
    loaded_image: str | None = None
    image_path: str | None = None
    pdb_path: str | None = None
    timestamp: int | None = None
    checksum: int | None = None
    image_size: int | None = None

    def finish(self) -> ModuleEntry:
        entry = self.entry
        return replace(
            entry,
            image_name=self.image_name or entry.image_name or self.loaded_image,
            image_path=self.image_path or entry.image_path,
            pdb_path=self.pdb_path or entry.pdb_path,
            timestamp=self.timestamp if self.timestamp is not None else entry.timestamp,
            checksum=self.checksum if self.checksum is not None else entry.checksum,
            image_size=self.image_size if self.image_size is not None else entry.image_size,
        )


def _entry_from_row(match: re.Match[str], number: int, unloaded: bool) -> ModuleEntry:
    rest = (match.group("rest") or "").strip()
    status: str | None = None
    pdb_path: str | None = None
    image_name: str | None = None
    timestamp: int | None = None
    checksum: int | None = None
    image_size: int | None = None
    status_match = _STATUS.match(rest)
    if status_match:
        status = status_match.group("status")
        tail = status_match.group("tail").strip()
        if tail:
            if "(export symbols)" in status or not tail.lower().endswith((".pdb", ".dbg", ".sym")):
                image_name = tail
            else:
                pdb_path = tail
    elif rest:
        # lm t / lm n / lm f columns: image name or path, then a timestamp; unloaded rows: inline fields.
        fields = {k.lower(): v.strip() for k, v in _INLINE_FIELD.findall(rest)}
        if fields:
            timestamp = _timestamp(fields.get("timestamp", "")) if "timestamp" in fields else None
            checksum = _hex_value(fields["checksum"]) if "checksum" in fields else None
            image_size = _hex_value(fields["imagesize"]) if "imagesize" in fields else None
        else:
            image = _IMAGE_FILE.match(rest)
            after = rest
            if image:
                image_name = image.group("image")
                after = image.group("after")
            if after:
                found = _TIMESTAMP_HEX.search(after)
                timestamp = int(found.group(1), 16) if found else None
    return ModuleEntry(
        line=number,
        name=match.group("name"),
        start=_addr(match.group("start")),
        end=_addr(match.group("end")),
        symbol_status=status,
        pdb_path=pdb_path,
        image_name=image_name,
        timestamp=timestamp,
        checksum=checksum,
        image_size=image_size,
        unloaded=unloaded,
    )


def _apply_detail(pending: _Pending, key: str, value: str) -> None:
    """Fold one ``lmv`` detail line into the module it belongs to; keys lmv prints that the record does not
    keep (versions, translations, resource strings) are read past."""
    key = key.lower()
    value = value.strip()
    if key == "image name" and value:
        pending.image_name = value
    elif key == "image path" and value:
        pending.image_path = value
    elif key == "loaded symbol image file" and value:
        pending.loaded_image = value
    elif key in ("symbol file", "pdb file") and value:
        pending.pdb_path = value
    elif key == "timestamp":
        pending.timestamp = _timestamp(value)
    elif key == "checksum":
        pending.checksum = _hex_value(value)
    elif key == "imagesize":
        pending.image_size = _hex_value(value)


class LmParser:
    """Reads one ``lm``-family listing (loaded and unloaded modules) into a :class:`ModuleListRecord`."""

    name = "lm"
    trigger = r"^\s*(?:start\s+end\s+module name\b|Unloaded modules:)"

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        if len(first.text) > _MAX_LINE:
            yield Diagnostic(
                Span(cursor.path, first.number, first.number),
                f"{self.name}: {len(first.text)}-character line is too long for this block; skipped",
            )
            return
        unloaded = bool(_UNLOADED.match(first.text))
        entries: list[ModuleEntry] = []
        pending: _Pending | None = None

        def take(line: Line, after_blank: bool) -> bool:
            nonlocal pending, unloaded
            text = line.text.rstrip()
            if len(text) > _MAX_LINE:
                return False
            row = _ROW.match(text)
            # a blank line ends the listing unless the unloaded section (or more of it) follows
            if after_blank and not (_UNLOADED.match(text) or (row and unloaded)):
                return False
            if row:
                if pending:
                    entries.append(pending.finish())
                pending = _Pending(_entry_from_row(row, line.number, unloaded))
            elif _UNLOADED.match(text):
                if pending:
                    entries.append(pending.finish())
                pending = None
                unloaded = True
            elif _BROWSE.match(text) or _DEBUGGER_NOISE.match(text) or _HEADER.match(text) and not entries:
                pass
            elif pending and (_DETAIL_PHRASE.match(text) or _DETAIL.match(text)):
                detail = _DETAIL.match(text)
                if detail:
                    _apply_detail(pending, detail.group("key"), detail.group("value"))
            elif pending and text[:1] in (" ", "\t"):
                pass  # indented resource-table lines ("CompanyName: ...") and wrapped values of lmv
            else:
                return False
            return True

        end = read_block(cursor, first, take, limit=_MAX_BLOCK_LINES)
        last = end.last_line
        if end.cut:
            yield Diagnostic(
                Span(cursor.path, first.number, last),
                "lm: listing longer than the block limit; the rest is read as separate input",
            )
        if pending:
            entries.append(pending.finish())
        span = Span(cursor.path, first.number, last)
        if entries:
            yield ModuleListRecord(span, tuple(entries))
        else:
            yield Diagnostic(span, "lm: module list header without any module rows", "info")


PARSER = LmParser()
