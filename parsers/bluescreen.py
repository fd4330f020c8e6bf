"""The blue screen itself, as people copy it off the monitor.

- Windows 8 and later: ``Stop code: CRITICAL_PROCESS_DIED`` (or ``If you'd like to know more, you can
  search online later for this error: DRIVER_IRQL_NOT_LESS_OR_EQUAL (ndis.sys)``) and ``What failed:
  CI.dll``, sometimes with the stop code name alone on the line above (lower case when retyped);
- Windows 7 and earlier: ``*** STOP: 0x000000D1 (0x0000000C,0x00000002,0x00000000,0xF86B5A89)`` with
  ``***  gv3.sys - Address F86B5A89 base at F86B5000, DateStamp 3dd991eb`` below.

With a code (``STOP:``) this is a :class:`~parsers.records.BugCheckRecord`; with a name only, a
:class:`~parsers.records.PartialBugCheckRecord` the engine names the code of.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from parsers.base import Line, LineCursor
from parsers.deferred import deferred_compile
from parsers.records import BugCheckRecord, PartialBugCheckRecord, Record, Span

_QUOTE = deferred_compile(r"^(?:[ \t]*>)+[ \t]?")
_CLEAN = deferred_compile(r"[`*\"]")
_STOP = deferred_compile(r"STOP:\s*0x(?P<code>[0-9a-fA-F]{1,8})\s*\((?P<args>[0-9a-fA-Fx,\s]*)\)")
_STOP_DRIVER = deferred_compile(r"^\s*\*{3}\s+(?P<image>[\w.$-]+\.(?:sys|dll|exe))\s+-\s+Address", re.I)
_STOP_CODE = deferred_compile(
    r"(?:Stop\s*code|search online later for this error)\s*:?\s*(?P<name>[A-Za-z][A-Za-z0-9_]{3,})"
    r"(?:\s*\((?P<image>[\w.$-]+\.(?:sys|dll|exe))\))?",
    re.IGNORECASE,
)
_WHAT_FAILED = deferred_compile(r"What failed\s*:\s*(?P<image>[\w.$-]+\.(?:sys|dll|exe))", re.IGNORECASE)
_NAME_ALONE = deferred_compile(r"^\s*(?P<name>[A-Za-z]+(?:_[A-Za-z0-9]+){1,})\s*$")


class BlueScreenParser:
    name = "bluescreen"
    #: line-start anchors only (one shared search, see parsers.registry): the screen's lines start with them
    trigger = r"^[\s>*]*(?:STOP: 0x|Stop code|Stop Code|stop code|STOP CODE|What failed|what failed)"

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        text = _CLEAN.sub("", _QUOTE.sub("", first.text))
        stop = _STOP.search(text)
        if stop is not None:
            yield self._stop(first, stop, cursor)
            return
        name: str | None = None
        image: str | None = None
        last = first.number
        lines = [(first, text)]
        following = cursor.next()
        if following is not None:
            lines.append((following, _CLEAN.sub("", _QUOTE.sub("", following.text))))
        for line, line_text in lines:
            code = _STOP_CODE.search(line_text)
            failed = _WHAT_FAILED.search(line_text)
            if code is None and failed is None and line is not first:
                cursor.push_back(line)
                break
            if code is not None:
                name, image = code["name"].upper(), image or code["image"]
            if failed is not None:
                image = failed["image"]
            last = line.number
        if name is None:
            name = self._name_above(cursor)
        if name is None and image is None:
            return
        span = Span(cursor.path, first.number, last)
        yield PartialBugCheckRecord(span, "blue-screen", (), name=name, blamed=image)

    @staticmethod
    def _name_above(cursor: LineCursor) -> str | None:
        """``attempted_write_to_readonly_memory`` on the line above ``What failed:`` (a retyped screen)."""
        lookbehind = getattr(cursor, "lookbehind", None)
        for line in reversed(lookbehind(2) if lookbehind is not None else []):
            found = _NAME_ALONE.match(_CLEAN.sub("", _QUOTE.sub("", line.text)))
            if found is not None:
                return found["name"].upper()
        return None

    @staticmethod
    def _stop(first: Line, stop: re.Match[str], cursor: LineCursor) -> BugCheckRecord:
        texts = [t.strip() for t in stop["args"].split(",") if t.strip()]
        args = tuple(int(t, 16) for t in texts if re.fullmatch(r"(?:0x)?[0-9a-fA-F]+", t))
        last = first.number
        blamed = None
        taken: list[Line] = []
        while len(taken) < 2 and (following := cursor.next()) is not None:  # driver line, maybe after a blank
            taken.append(following)
            driver = _STOP_DRIVER.match(following.text)
            if driver is not None:
                blamed, last, taken = driver["image"], following.number, []
                break
            if following.text.strip():
                break
        for line in reversed(taken):
            cursor.push_back(line)
        digits = {len(t.lower().removeprefix("0x")) for t in texts}
        bits = 32 if digits == {8} else 64 if digits == {16} else None
        return BugCheckRecord(
            Span(cursor.path, first.number, last),
            "blue-screen",
            int(stop["code"], 16),
            args,
            pointer_bits=bits,
            blamed=blamed,
        )


PARSER = BlueScreenParser()
