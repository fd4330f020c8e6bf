"""The registered block parsers, in the order their triggers are tried on a candidate line.

Adding a log format: write a module with a module-level ``PARSER`` (see ``parsers.base.BlockParser``) and
add one line to ``PARSERS`` (and its input format to ``FORMATS`` if it is not a debugger-session block).
Triggers are matched with ``re.MULTILINE`` against one line. For speed, start every alternative with ``^``,
optional leading junk (``\\s*``, ``[\\s>*]*``, ``[\\s0-9:]*`` -- not ``\\d``, which also matches non-ASCII
digits) and then at least three characters of literal text: all such alternatives share one
search that runs from line start to line start (``parsers.prefilter``). Any other alternative costs an
extra pass over every chunk (a case-insensitive one also a lower-cased copy of the chunk).
"""

from __future__ import annotations

from parsers import (
    analyze,
    arglines,
    banner,
    bluescreen,
    crashviewers,
    events,
    faultsite,
    imagedump,
    kd,
    kernelpower,
    lm,
    ln,
    memint,
    memstring,
    readiness,
    rebooted,
    stack,
    verifier,
    verifiernotice,
    wdflog,
    wer,
)
from parsers.base import BlockParser

PARSERS: tuple[BlockParser, ...] = (
    kd.PARSER,
    banner.PARSER,
    analyze.PARSER,
    stack.PARSER,
    ln.PARSER,
    lm.PARSER,
    verifier.PARSER,
    readiness.PARSER,
    events.PARSER,
    imagedump.PARSER,
    memstring.PARSER,
    faultsite.PARSER,
    arglines.PARSER,
    rebooted.PARSER,
    kernelpower.PARSER,
    wer.PARSER,
    crashviewers.PARSER,
    bluescreen.PARSER,
    memint.PARSER,
    verifiernotice.PARSER,
    wdflog.PARSER,
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
