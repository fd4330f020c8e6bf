"""Windows Error Reporting's record of a blue screen: the ``BlueScreen`` problem signature.

Three layouts, all keyed by ``BlueScreen``:

- Reliability Monitor / Problem Reports: ``Problem Event Name: BlueScreen``, ``Code: 133``,
  ``Parameter 1: 0`` .. ``Parameter 4: fffff8005e6fb320``, ``Bucket ID: 0x133_DPC_nt!KeAccumulateTicks``;
- the WER event 1001 text: ``Event Name: BlueScreen``, ``P1: 50`` (the code) ``P2`` .. ``P5`` (the four
  parameters), ``Fault bucket 0x50_..., type 0``;
- the old dialog: ``BCCode: d1``, ``BCP1: 0000000000000000`` .. ``BCP4``.

Values are hex without ``0x``. The ``Bucket ID``/``Fault bucket`` is kept as the name of the blamed image
when it has the ``module!function`` form (``0xd1_tcpip!TcpBeginTcbSend``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from parsers.base import Line, LineCursor
from parsers.deferred import deferred_compile
from parsers.records import BugCheckRecord, Record, Span

MAX_LINES = 40
_QUOTE = deferred_compile(r"^(?:[ \t]*>)+[ \t]?")
_FIELD = deferred_compile(
    r"^[\s*-]*(?P<key>Code|BCCode|Parameter\s*[1-4]|BCP[1-4]|P[1-5]|Bucket ID|Fault bucket)\s*[:=]?\s+"
    r"(?P<value>\S.*?)\s*$",
    re.IGNORECASE,
)
_NEXT = deferred_compile(r"^[\s>*-]*(?:Problem )?Event Name\s*:?\s*BlueScreen")
_MAX_STRAYS = 8  # lines between the parameters and the Bucket ID (OS version, locale, headings)
_BUCKET_IMAGE = deferred_compile(r"_(?P<image>[A-Za-z0-9.-]+?)(?:\.sys|\.dll|\.exe)?!")


def _hex(text: str) -> int | None:
    try:
        return int(text.replace("`", "").split(",")[0].strip(), 16)
    except ValueError:
        return None


class WerParser:
    name = "wer"
    trigger = r"^[\s>*]*(?:Problem Event Name|Event Name)\s*:?\s*BlueScreen"

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        code: int | None = None
        args: dict[int, int] = {}
        bucket: str | None = None
        last, strays = first.number, 0
        for _ in range(MAX_LINES):
            line = cursor.next()
            if line is None:
                break
            text = _QUOTE.sub("", line.text)
            field = _FIELD.match(text)
            if _NEXT.match(text) or (field is None and strays >= _MAX_STRAYS):
                cursor.push_back(line)
                break
            if field is None:
                strays += 1
                continue
            strays = 0
            key, value = field["key"].lower().replace(" ", ""), field["value"]
            last = line.number
            if key in ("code", "bccode", "p1"):
                code = _hex(value)
            elif key.startswith(("parameter", "bcp")):
                if (number := _hex(value)) is not None:
                    args[int(key[-1])] = number
            elif key[0] == "p":
                if (number := _hex(value)) is not None:
                    args[int(key[1]) - 1] = number
            else:
                bucket = value
        if code is None:
            return
        count = max(args, default=0)
        image = _BUCKET_IMAGE.search(bucket) if bucket else None
        yield BugCheckRecord(
            Span(cursor.path, first.number, last),
            "wer-bluescreen",
            code,
            tuple(args.get(n, 0) for n in range(1, count + 1)),
            missing=tuple(n - 1 for n in range(1, count + 1) if n not in args),
            blamed=image["image"] if image else None,
        )


PARSER = WerParser()
