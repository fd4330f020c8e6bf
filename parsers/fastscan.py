"""The prefilter's scan of a bytes chunk with Hyperscan, when it is installed: the same candidates, faster.

:class:`parsers.prefilter.ChunkScanner` finds candidate lines with the standard library's ``re``: one search
that tries every line start (junk, then an alternation of the line-start anchors) plus one literal search
per floating anchor. That costs ~0.29 s of CPU per 100 MB of benchmark log (0.21 s for the line starts,
0.04 s each for the two floating anchors), four times grep's whole run. Hyperscan matches all anchors in
one pass of SIMD literal search: 0.05 s per 100 MB.

The candidates must be exactly those of the ``re`` scan (a test generates lines to compare both), so each
anchor becomes one Hyperscan expression that states the same condition:

- a line-start anchor after junk: ``\\n`` + junk class ``*`` + the anchor's bytes. ``re`` skips the junk
  *possessively*, so the anchor must begin at the first byte that is not junk; an anchor whose first byte
  is junk (``) Arg``) never matches there and is left out here too, and for one that does not, Hyperscan's
  backtracking junk stops at the same place. A case-insensitive anchor gets one expression per case of
  its first character (as ``re``'s first-character groups have it) and ``(?i:...)`` for the rest: both
  engines fold ASCII letters only in bytes;
- a line-start anchor right at the line start (a line of stars): ``\\n`` + its bytes;
- a floating anchor: its bytes (``(?i:...)`` when case-insensitive), anywhere in the line.

A match's line is where the last ``\\n`` before its end is (no anchor or junk byte is a newline). The
unanchored triggers (regexes Hyperscan might not take; none in today's registry) stay with ``re``.

Compiling the database costs ~0.2 s, so it is built once per set of anchors and kept serialized in the
user's cache folder (:mod:`parsers.usercache`); a run that finds it imports Hyperscan and loads it in
~8 ms. The feed (:mod:`parsers.feed`) therefore uses it only once an input has proved large
(:data:`FAST_AFTER`), for chunks of :data:`MIN_CHUNK` or more, and not at all without a cache folder.
Scratch space is per thread (the TUI reads in threads). Without the package (no wheel for a platform),
or if it fails in any way, the ``re`` scan does the work.
"""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from parsers import usercache

if TYPE_CHECKING:
    from parsers.prefilter import Anchor

#: Chunks shorter than this are scanned with ``re`` (which needs no import nor database).
MIN_CHUNK = 256 * 1024
#: Bytes of an input read with the ``re`` scan before Hyperscan takes over: its import and cached database
#: cost ~8 ms once, what ``re`` takes for ~3 MB, so a small log never loads it.
FAST_AFTER = 4 << 20
_ENTRY_PREFIX = "prefilter-"
_MAGIC = b"hvci-triage prefilter database 1\n"


def _hex(data: bytes) -> bytes:
    return b"".join(b"\\x%02x" % byte for byte in data)


def junk_bytes(junk_pattern: bytes) -> frozenset[int]:
    """The bytes a one-class junk pattern (``[...]*+``) matches."""
    item = re.compile(junk_pattern.removesuffix(b"*+"))
    return frozenset(byte for byte in range(256) if item.fullmatch(bytes((byte,))))


def expressions(
    line_start: Sequence[Anchor], floating: Sequence[Anchor], junk: frozenset[int]
) -> list[bytes] | None:
    """The Hyperscan expressions that find the lines ``re`` finds (see the module docstring), or ``None``
    when some anchor holds a newline (no such trigger exists; the line lookup would not hold)."""
    junk_class = b"[" + _hex(bytes(sorted(junk))) + b"]*"
    found: set[bytes] = set()
    for anchor in (*line_start, *floating):
        if "\n" in anchor.text:
            return None
    for anchor in line_start:
        raw = anchor.text.encode("utf-8", "replace")
        if not anchor.after_junk:
            found.add(b"\\n" + (b"(?i:" + _hex(raw) + b")" if anchor.ignore_case else _hex(raw)))
            continue
        head, rest = anchor.text[0], anchor.text[1:].encode("utf-8", "replace")
        heads = {head.lower(), head.upper()} if anchor.ignore_case else {head}
        tail = (b"(?i:" + _hex(rest) + b")" if anchor.ignore_case else _hex(rest)) if rest else b""
        for variant in heads:
            first = variant.encode("utf-8", "replace")
            if first[0] in junk:  # the possessive junk of ``re`` swallows it: never a candidate there
                continue
            found.add(b"\\n" + junk_class + _hex(first) + tail)
    for anchor in floating:
        raw = anchor.text.encode("utf-8", "replace")
        found.add(b"(?i:" + _hex(raw) + b")" if anchor.ignore_case else _hex(raw))
    return sorted(found)


class FastScan:
    """A compiled Hyperscan database of the anchors (and the paste markup) and a scratch space per thread."""

    def __init__(self, hyperscan: Any, database: Any, markup_from: int) -> None:
        self._hs = hyperscan
        self._database = database
        self._markup_from = markup_from  # expression ids from here on are paste markup, not anchors
        self._local = threading.local()

    def scan(self, data: bytes) -> tuple[list[int], bool]:
        """The candidate line starts of ``data`` (a chunk with its ``\\n`` sentinel), in order, and whether
        it holds paste markup (:data:`parsers.paste.MARKUP_EXPRESSIONS`)."""
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._hs.Scratch(self._database)
        ends: list[int] = []
        add = ends.append
        markup_from = self._markup_from

        def on_match(ident: int, _start: int, end: int, _flags: int, _context: object) -> None:
            add(end if ident < markup_from else -1)

        self._database.scan(data, match_event_handler=on_match, scratch=scratch)
        rfind = data.rfind
        return sorted({rfind(b"\n", 0, end) + 1 for end in ends if end >= 0}), -1 in ends

    def candidates(self, data: bytes) -> list[int]:
        """The candidate line starts of ``data``, in order."""
        return self.scan(data)[0]


def build(patterns: Sequence[bytes], markup: Sequence[bytes] = ()) -> FastScan | None:
    """A scanner for the anchors' ``patterns`` and the ``markup`` ones: the cached database when it is
    there, else compiled (and cached). ``None`` when Hyperscan is not installed or refuses the patterns."""
    try:
        import hyperscan
    except (ImportError, OSError):  # no wheel for this platform (or its library): ``re`` does the work
        return None
    every = [*patterns, *markup]
    key = b"\n".join((f"hyperscan {getattr(hyperscan, '__version__', '')}".encode(), *every))
    key += f"\nmarkup from {len(patterns)}".encode()
    entry = usercache.entry_path(_ENTRY_PREFIX, zlib.crc32(key))
    if entry is None:  # no cache folder: compiling (~0.2 s) would cost what ``re`` takes for ~70 MB
        return None
    try:
        database = _cached(hyperscan, entry, key)
        if database is None:
            database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            database.compile(expressions=every, ids=list(range(len(every))), flags=0)
            usercache.write_entry(entry, _MAGIC + key, hyperscan.dumpb(database), _ENTRY_PREFIX)
        scan = FastScan(hyperscan, database, len(patterns))
        scan.scan(b"\n")  # a database cached by another CPU's run fails here, not in a chunk
        return scan
    except hyperscan.error:  # a pattern it cannot take, a database for another CPU: use ``re``
        return None


def _cached(hyperscan: Any, entry: str, key: bytes) -> Any:
    payload = usercache.read_entry(entry, _MAGIC + key)
    if payload is None:
        return None
    try:
        return hyperscan.loadb(payload, hyperscan.HS_MODE_BLOCK)
    except hyperscan.error:
        return None
