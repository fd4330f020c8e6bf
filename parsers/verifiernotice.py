"""What a kernel-debugger session says about Driver Verifier outside ``!verifier``'s own output.

- the kernel's notice at boot or on change: ``Driver Verifier: Enabled for MyDriver.sys, flags 0x2000000,
  build 22621, key ...`` (or ``Removed for USBMidi2.sys, 0:0x1209bb, 1:0x100012, build 27868``);
- the command that asked about one driver: ``20: kd> !verifier 3 netebpfext.sys``.

Each becomes a :class:`~parsers.records.VerifierStatusRecord` (source ``kd-notice``) naming the driver:
the one driver under the verifier is a suspect when a crash names none.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from parsers.base import Line, LineCursor
from parsers.deferred import deferred_compile
from parsers.records import Record, Span, VerifierStatusRecord

_NOTICE = deferred_compile(
    r"Driver Verifier:\s*(?P<what>Enabled|Removed)\s+for\s+(?P<driver>[\w.$-]+\.sys)"
    r"(?:,\s*(?:flags\s+)?(?:0:)?(?P<flags>0x[0-9a-fA-F]+))?",
    re.IGNORECASE,
)
_COMMAND = deferred_compile(
    r"kd> !verifier\s+(?:(?P<flags>0x[0-9a-fA-F]+|\d+)\s+)?(?P<driver>[\w.$-]+\.sys)\b", re.IGNORECASE
)


class VerifierNoticeParser:
    name = "verifiernotice"
    trigger = r"^[\s>*]*Driver Verifier: |^[\s>*0-9:]*kd> ![Vv]erifier [^\n]*\.sys"

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        found = _NOTICE.search(first.text) or _COMMAND.search(first.text)
        if found is None:
            return
        flags = found["flags"]
        value = int(flags, 16) if flags and flags.lower().startswith("0x") else None
        span = Span(cursor.path, first.number, first.number)
        yield VerifierStatusRecord(span, "kd-notice", flags=value, drivers=(found["driver"],))


PARSER = VerifierNoticeParser()
