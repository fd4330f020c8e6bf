"""What crash-dump viewers print about a crash: NirSoft BlueScreenView and Resplendence WhoCrashed.

- BlueScreenView's table row (tab separated, or aligned with spaces when retyped): dump file, crash time,
  bug check string, ``0x00000139``, four parameters (``00000000`00000000``, sometimes with ``'``), the
  driver it blames and ``driver+offset``, ..., the crash address (``ntoskrnl.exe+3f5780``);
- its "save selected items" text: ``Bug Check Code : 0x1000007e``, ``Parameter 1 : ...`` or one
  ``Parameters : a, b, c, d`` line, ``Caused By Driver : btrfs.sys``, ``Caused By Address : btrfs.sys+43808``;
- WhoCrashed: ``This was probably caused by the following module: windivert64.sys (WinDivert64+0x279D)``,
  ``Bugcheck code: 0xC2 (0x7, 0x0, 0x0, 0xFFFFBE073F1A7E28)``, ``Error: BAD_POOL_CALLER``.

Each becomes a :class:`~parsers.records.BugCheckRecord` whose ``blamed`` is the driver the tool blames.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from parsers.base import Line, LineCursor
from parsers.deferred import deferred_compile
from parsers.records import BugCheckRecord, Record, Span

MAX_LINES = 30
_QUOTE = deferred_compile(r"^(?:[ \t]*>)+[ \t]?")
_PARAM = r"[0-9a-fA-F]{1,8}(?:[`'][0-9a-fA-F]{8})?|[0-9a-fA-F]{9,16}"
_ROW_CODE = deferred_compile(r"^0x[0-9a-fA-F]{8}$")
_ROW_PARAM = deferred_compile(rf"^(?:{_PARAM})$")
_IMAGE = deferred_compile(r"^[\w.$-]+\.(?:sys|dll|exe)$", re.IGNORECASE)
_KV = deferred_compile(r"^\s*(?P<key>[A-Za-z][A-Za-z0-9 ]*?)\s*:\s*(?P<value>.*?)\s*$")
_WHO_CAUSED = deferred_compile(
    r"probably caused by the following module\s*:\s*(?P<image>[^\s(]+)(?:\s*\((?P<site>[^()]*)\))?", re.I
)
_WHO_CODE = deferred_compile(r"Bugcheck code\s*:\s*(?P<code>0x[0-9a-fA-F]+)\s*\((?P<args>[^()]*)\)", re.I)
_WHO_ERROR = deferred_compile(r"^\s*Error\s*:\s*(?P<name>[A-Z][A-Z0-9_]+)\s*$")


def _hex(text: str) -> int | None:
    try:
        return int(text.strip().replace("`", "").replace("'", "").removeprefix("0x").removeprefix("0X"), 16)
    except ValueError:
        return None


def _width_bits(texts: list[str]) -> int | None:
    digits = {len(re.sub(r"[`']|^0[xX]", "", t.strip())) for t in texts}
    return 32 if digits == {8} else 64 if digits == {16} else None


def _record(
    span: Span, form: str, code: int, texts: list[str], blamed: str | None, name: str | None = None
) -> BugCheckRecord:
    args = tuple(value for value in (_hex(t) for t in texts) if value is not None)
    return BugCheckRecord(span, form, code, args, name=name, pointer_bits=_width_bits(texts), blamed=blamed)


class CrashViewerParser:
    name = "crashviewers"
    trigger = (
        r"\.dmp(?:\t| {2})|^[\s>*]*Bug ?[Cc]heck (?:[Cc]ode|[Ss]tring)\s*:"
        r"|^[\s>*]*This was probably caused by the following module"
    )

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        text = _QUOTE.sub("", first.text)
        if ".dmp" in text and not _KV.match(text):
            record = self._row(first, text, cursor.path)
            if record is not None:
                yield record
            return
        if _WHO_CAUSED.search(text) or _WHO_CODE.search(text):
            yield from self._whocrashed(first, cursor)
            return
        yield from self._key_values(first, cursor)

    @staticmethod
    def _row(first: Line, text: str, path: str) -> BugCheckRecord | None:
        cells = [c.strip() for c in re.split(r"\t| {2,}", text) if c.strip()]
        at = next((n for n, cell in enumerate(cells) if _ROW_CODE.match(cell)), None)
        if at is None or len(cells) < at + 5 or not all(_ROW_PARAM.match(c) for c in cells[at + 1 : at + 5]):
            return None
        blamed = cells[at + 5] if len(cells) > at + 5 and _IMAGE.match(cells[at + 5]) else None
        name = cells[at - 1] if at >= 1 and re.fullmatch(r"[A-Z][A-Z0-9_]{3,}", cells[at - 1]) else None
        span = Span(path, first.number, first.number)
        return _record(span, "bluescreenview", int(cells[at], 16), cells[at + 1 : at + 5], blamed, name)

    @staticmethod
    def _whocrashed(first: Line, cursor: LineCursor) -> Iterator[Record]:
        lines = [first]
        caused = _WHO_CAUSED.search(first.text)
        code = _WHO_CODE.search(first.text)
        name: str | None = None
        while len(lines) < 4 and (caused is None or code is None or name is None):
            line = cursor.next()
            if line is None:
                break
            if (caused and _WHO_CAUSED.search(line.text)) or (code and _WHO_CODE.search(line.text)):
                cursor.push_back(line)  # the next crash of the report
                break
            lines.append(line)
            caused = caused or _WHO_CAUSED.search(line.text)
            code = code or _WHO_CODE.search(line.text)
            error = _WHO_ERROR.match(_QUOTE.sub("", line.text))
            name = name or (error["name"] if error else None)
        if code is None:
            for line in reversed(lines[1:]):
                cursor.push_back(line)
            return
        texts = [t for t in re.split(r"\s*,\s*", code["args"].strip()) if t]
        span = Span(cursor.path, first.number, lines[-1].number)
        blamed = caused["image"] if caused else None
        yield _record(span, "whocrashed", int(code["code"], 16), texts, blamed, name)

    @staticmethod
    def _key_values(first: Line, cursor: LineCursor) -> Iterator[Record]:
        values: dict[str, str] = {}
        last = first.number
        line: Line | None = first
        for _ in range(MAX_LINES):
            if line is None:
                break
            field = _KV.match(_QUOTE.sub("", line.text))
            if field is None or (field["key"].lower().replace(" ", "") in values):
                if line is not first:
                    cursor.push_back(line)
                break
            values[field["key"].lower().replace(" ", "")] = field["value"]
            last = line.number
            line = cursor.next()
        code = _hex(values.get("bugcheckcode", ""))
        if code is None:
            return
        if "parameters" in values:
            texts = [t for t in re.split(r"\s*,\s*", values["parameters"]) if t.strip()]
        else:
            texts = [values[f"parameter{n}"] for n in range(1, 5) if f"parameter{n}" in values]
        blamed = values.get("causedbydriver") or None
        name = values.get("bugcheckstring") or None
        yield _record(Span(cursor.path, first.number, last), "bluescreenview", code, texts, blamed, name)


PARSER = CrashViewerParser()
