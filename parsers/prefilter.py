"""The cheap scan that keeps noise away from Python code: all parsers' triggers turned into one search.

Most lines of a kernel-debugger log are noise (module loads, DbgPrint spam, register dumps). Running every
trigger regex on every line would cost far more than reading the file, so each trigger is reduced, once,
to the literal text any line it matches must contain (its *anchor*):

- a trigger of the form ``^`` + optional leading junk (indentation, ``>`` quote markers, ``*`` bold or
  banner stars, ``#``, a ``0: `` prompt number) + literal becomes a line-start anchor. All line-start
  anchors share ONE compiled search, ``\\n`` + possessive junk + an alternation of literals, which the
  regex engine runs at memchr speed from newline to newline;
- any other trigger contributes its longest literal as a floating anchor, found with ``find`` (or on a
  lower-cased copy of the chunk when the trigger ignores case);
- a trigger with no usable literal is searched as it is (correct, but slow: the benchmark shows it).

A candidate found this way is only a *candidate*: the dispatcher checks the real triggers on that line.

The scan uses the standard library's ``re``, not the ``regex`` package: on this pattern ``regex`` took 4.5
times the CPU of ``re`` (0.39 s against 0.086 s per 32 MiB of benchmark log, with or without
``concurrent=True``), chunks end at line ends so partial matching has nothing to do, and a reader that
must leave the CPU to a user interface does better in its own thread or process than inside a slower
match that releases the GIL. The dependency was dropped.

What bounds the scan (measured on the 100 MB log of ``benchmarks/bench_analyze.py``, 1.9 M lines): ``re``
tries the search at every newline, about 110 ns a line (20 for the attempt, 10 for the junk, the rest
for the alternation, whose branches it tests one by one), 0.21 s in all, plus 0.04 s for each floating
anchor's literal search (``.dmp``, ``ugcheck was``) and 0.05 s for the paste markup check
(:func:`parsers.paste.normalise_chunk`: the backslashes of module paths), against grep's 0.07 s for the
whole file. A lookahead of the anchors' first characters saves 7-16% (:func:`_first_characters`); a
second character, classes of case-folded first characters and two-level trees measured slower;
``google-re2`` took 0.21 s, Aho-Corasick (``ahocorasick-rs``) over the anchors 0.37 s.

Hyperscan finds the same lines (line starts, floating anchors) and the paste markup in one pass: 0.044 s
per 100 MB (0.030 for the line starts, 0.014 more for the markup). Where it is installed (a dependency
where wheels exist) the feed scans a bytes chunk of :data:`parsers.fastscan.MIN_CHUNK` or more with it
once the input has proved large (:data:`parsers.fastscan.FAST_AFTER`), and ``re`` does the rest (small
inputs, UTF-16 text, no cache folder, platforms without a wheel). The reading around it is now what the
whole file costs before any block is parsed, at 0.13 s of CPU per 100 MB, twice grep's whole run:
reading into line-aligned chunks 0.03 s (0.046 s while every read and chunk was a fresh megabyte whose
pages the kernel mapped anew: :func:`parsers.source._settle_allocator`), this pass 0.044 s, counting
newlines up to each candidate (``bytes.count``, 1.9 GB/s) 0.055 s. docs/architecture.md ("Throughput")
has the figures of the whole command.
"""

from __future__ import annotations

import bisect
import functools
import importlib
import re
import sys
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from parsers import fastscan, paste, usercache
from parsers.deferred import deferred_compile
from parsers.linestart import LineStarts

JUNK_CHARS = frozenset(" \t>*#:0123456789\ufeff")
# What may precede a line-start anchor, as a superset of what a trigger's optional prefix can match: every
# white-space character of a decoded line but the newline (NBSP and friends from web pastes included; junk
# never runs on into the next line, which would make the blank or box line before a trigger line the
# candidate), ``>``, ``*``, ``#``, ``:``, ASCII digits and a stray byte-order mark (U+FEFF, from pasted
# exports), and what a paste puts in front of a line (``-``/``+`` bullets, ``1.``/``1)`` numbering,
# backticks, ``\`` escapes, ``~~~`` fences; the dispatcher checks the real trigger on the line as
# ``parsers.paste`` cleans it). For bytes chunks the non-ASCII ones appear as their UTF-8 (or cp1252) byte
# sequences.
_SPACE_STR = "\t\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
JUNK_STR = rf"[{_SPACE_STR}>*#:0-9\ufeff\-+.)`\\~]*+"
# one possessive class: ASCII junk plus every byte of the UTF-8 encodings of the non-ASCII spaces (lead
# bytes C2 E1 E2 E3 EF, continuation bytes 80-BF) and cp1252's NBSP (A0). A superset (it also skips some
# other non-ASCII text at the start of a line), which costs nothing but a few extra candidates.
JUNK_BYTES = rb"[ \t\x0b\x0c\r\x1c-\x1f>*#:0-9\x80-\xbf\xc2\xe1\xe2\xe3\xef\-+.)`\\~]*+"
# The same two classes as the characters and bytes they hold, for the tests without a pattern
# (:mod:`parsers.linestart`; a test checks they hold exactly what the classes match).
_JUNK_TEXT = (
    "\t\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000>*#:0123456789\ufeff-+.)`\\~"
)
_JUNK_BYTE_VALUES = (
    b" \t\x0b\x0c\r\x1c\x1d\x1e\x1f>*#:0123456789"
    + bytes(range(0x80, 0xC0))
    + b"\xc2\xe1\xe2\xe3\xef-+.)`\\~"
)
MIN_ANCHOR = 3
#: Chunks up to this size are scanned without the compiled line-start search (:mod:`parsers.linestart`).
SHORT_CHUNK = 64 * 1024
#: UTF-8 lead bytes that JUNK_BYTES skips (non-ASCII spaces and the BOM begin with these)
_JUNK_LEAD_BYTES = frozenset(b"\xc2\xe1\xe2\xe3\xef")

_parser: Any = importlib.import_module("re._parser")  # the stdlib regex parser (no public API exists)
_c: Any = importlib.import_module("re._constants")


class Anchor(msgspec.Struct, frozen=True):
    """Literal text that every line matched by a trigger contains."""

    text: str
    line_start: bool  # the text follows only junk at the start of the line
    ignore_case: bool
    after_junk: bool = True  # line_start: junk may precede the text (else the text starts the line)


def _chars_of_set(items: Sequence[tuple[Any, Any]]) -> set[str] | None:
    """Characters a character-class item can match, or ``None`` if not a small, known set."""
    chars: set[str] = set()
    for op, value in items:
        if op is _c.LITERAL:
            chars.add(chr(value))
        elif op is _c.RANGE:
            low, high = value
            if high - low > 64:
                return None
            chars.update(chr(c) for c in range(low, high + 1))
        elif op is _c.CATEGORY and value is _c.CATEGORY_SPACE:
            chars.update(" \t")  # stands for all of \s, which the prefilter's junk covers
        else:
            return None
    return chars


def _is_junk(op: Any, value: Any) -> bool:
    """A repeated leading element whose characters are all junk (e.g. ``\\s*``, ``\\s+``, ``[>*\\s]*``)."""
    if op not in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
        return False
    low, _high, item = value
    # ``\s+`` counts as junk as well as ``\s*``: the candidate search skips zero or more junk characters,
    # a superset of what the trigger needs, and the dispatcher checks the real trigger afterwards. A longer
    # mandatory run (``\*{70,}``, a banner line) is the text itself, not junk.
    if low > 1 or len(item) != 1:
        return False
    inner_op, inner_value = item[0]
    if inner_op is _c.LITERAL:
        chars: set[str] | None = {chr(inner_value)}
    elif inner_op is _c.IN:
        chars = _chars_of_set(inner_value)
    else:
        return False
    return chars is not None and chars <= JUNK_CHARS


def _leading_literal(ops: Sequence[tuple[Any, Any]], start: int) -> str:
    text: list[str] = []
    for op, value in ops[start:]:
        if op is _c.LITERAL:
            text.append(chr(value))
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT) and value[0] >= MIN_ANCHOR and len(value[2]) == 1:
            inner_op, inner_value = value[2][0]
            if inner_op is not _c.LITERAL:
                break
            text.append(chr(inner_value) * value[0])
            break
        else:
            break
    return "".join(text)


def _longest_literal(ops: Sequence[tuple[Any, Any]]) -> str:
    best, run = "", []
    for op, value in ops:
        if op is _c.LITERAL:
            run.append(chr(value))
            continue
        if len(run) > len(best):
            best = "".join(run)
        run = []
    return max(best, "".join(run), key=len)


def _alternatives(ops: list[tuple[Any, Any]]) -> list[list[tuple[Any, Any]]]:
    """Split a sequence whose decisive element is an alternation into one sequence per alternative,
    keeping what precedes and follows it (``^\\s*(?:A|B)x`` -> ``^\\s*Ax``, ``^\\s*Bx``). Literal text before
    the alternation stays with each alternative (the regex parser factors ``FxIoQueue|FxRequest`` into
    ``Fx(?:IoQueue|Request)``, whose two letters alone are too short to anchor on)."""
    for index, (op, value) in enumerate(ops):
        if op is _c.AT or op is _c.LITERAL or _is_junk(op, value):
            continue
        inner: list[list[tuple[Any, Any]]] | None = None
        if op is _c.BRANCH:
            inner = [list(alt) for alt in value[1]]
        elif op is _c.SUBPATTERN and value[1] == 0 and value[2] == 0:
            sub = list(value[3])
            inner = _alternatives(sub) if sub else None
        if inner is None:
            return [ops]
        result = []
        for alt in inner:
            result.extend(_alternatives(ops[:index] + alt + ops[index + 1 :]))
        return result
    return [ops]


#: Anchors read back from the user's cache (:func:`remember_anchors`), by trigger.
_REMEMBERED: dict[str, tuple[Anchor, ...] | None] = {}
_ENTRY_PREFIX = "anchors-"
_ANCHORS_MAGIC = b"hvci-triage prefilter anchors 1\n"


def remember_anchors(triggers: Sequence[str]) -> None:
    """Have the anchors of ``triggers`` at hand: from the user's cache (:mod:`parsers.usercache`) when an
    entry was made from these very triggers by this very code, else worked out now and the entry written.
    Working them out costs ~3.5 ms a process (every trigger through the regex parser), more than a short
    input takes to read; the entry is read in a tenth of that. Its key names the triggers, this module's
    source (its CRC-32: the code that derives anchors) and the Python and msgspec versions."""
    missing = [t for t in triggers if t not in _REMEMBERED]
    if not missing:
        return
    key = _anchors_key(missing)
    entry = None if key is None else usercache.entry_path(_ENTRY_PREFIX, zlib.crc32(key))
    payload = None if entry is None or key is None else usercache.read_entry(entry, key)
    if payload is not None:
        try:
            found = msgspec.msgpack.decode(payload, type=list[tuple[Anchor, ...] | None])
        except msgspec.DecodeError:
            found = None
        if found is not None and len(found) == len(missing):
            _REMEMBERED.update(zip(missing, found, strict=True))
            return
    derived = [anchors_for(t) for t in missing]
    _REMEMBERED.update(zip(missing, derived, strict=True))
    if entry is not None and key is not None:
        usercache.write_entry(entry, key, msgspec.msgpack.encode(derived), _ENTRY_PREFIX)


def _anchors_key(triggers: Sequence[str]) -> bytes | None:
    try:
        with open(__file__, "rb") as source:
            code = zlib.crc32(source.read())
    except OSError:  # no source beside the bytecode: nothing to tell an entry of other code by
        return None
    head = f"python {sys.version}\nmsgspec {msgspec.__version__}\nprefilter {code:08x}\n"
    return _ANCHORS_MAGIC + head.encode() + "\n".join(triggers).encode("utf-8", "surrogatepass") + b"\n\n"


def known_anchors(trigger: str) -> tuple[Anchor, ...] | None:
    """:func:`anchors_for`, read back from the cache when :func:`remember_anchors` found them there."""
    if trigger in _REMEMBERED:
        return _REMEMBERED[trigger]
    return anchors_for(trigger)


@functools.cache
def anchors_for(trigger: str) -> tuple[Anchor, ...] | None:
    """The anchors of a trigger regex (one per alternative), or ``None`` when some alternative has no
    literal to anchor on. Worked out once per process (~3 ms for the registry): the prefilter and the
    dispatcher's screen both ask."""
    try:
        parsed = _parser.parse(trigger)
    except (re.error, RecursionError, ValueError):
        return None
    ignore_case = bool(parsed.state.flags & re.IGNORECASE)
    anchors: list[Anchor] = []
    for alt in _alternatives(list(parsed)):
        index = 0
        line_start = False
        if alt and alt[0][0] is _c.AT and alt[0][1] in (_c.AT_BEGINNING, _c.AT_BEGINNING_STRING):
            line_start = True
            index = 1
        junk_allowed = False
        while index < len(alt) and _is_junk(*alt[index]):
            index += 1
            junk_allowed = True
        leading = _leading_literal(alt, index) if line_start else ""
        literal = leading.lstrip("".join(JUNK_CHARS))
        if len(literal) >= MIN_ANCHOR:
            anchors.append(Anchor(literal, True, ignore_case))
            continue
        if len(leading) >= MIN_ANCHOR and not junk_allowed:  # e.g. a line of stars, right at the start
            anchors.append(Anchor(leading, True, ignore_case, after_junk=False))
            continue
        # junk text after optional junk (a line of stars after indentation): found with ``find`` instead
        floating = leading if len(leading) > MIN_ANCHOR else _longest_literal(alt)
        if len(floating) < MIN_ANCHOR + 1:
            return None
        anchors.append(Anchor(floating, False, ignore_case))
    return tuple(anchors)


def _without_redundant(anchors: Sequence[Anchor]) -> list[Anchor]:
    """Drop floating anchors that contain another one: every line they find, the shorter one finds too,
    and each floating anchor costs a pass over the chunk."""

    def folded(anchor: Anchor) -> str:
        return anchor.text.lower() if anchor.ignore_case else anchor.text

    kept: list[Anchor] = []
    for anchor in sorted(set(anchors), key=lambda a: (len(a.text), a.text)):
        if not any(
            folded(other) in folded(anchor) and (other.ignore_case or not anchor.ignore_case)
            for other in kept
        ):
            kept.append(anchor)
    return kept


def _by_first_char(anchors: Sequence[Anchor]) -> str:
    """One alternation of the anchors, grouped by first character (both cases for case-insensitive ones).

    The regex engine skips a branch whose first literal differs from the current character without
    entering it, so a line whose first character starts no anchor costs one cheap test per group.
    """
    groups: dict[str, set[str]] = {}
    for anchor in anchors:
        head, rest = anchor.text[0], re.escape(anchor.text[1:])
        if anchor.ignore_case:
            rest = f"(?i:{rest})"
            for char in {head.lower(), head.upper()}:
                groups.setdefault(char, set()).add(rest)
        else:
            groups.setdefault(head, set()).add(rest)
    branches = [
        re.escape(char) + "(?:" + "|".join(sorted(rests)) + ")" for char, rests in sorted(groups.items())
    ]
    return "(?:" + "|".join(branches) + ")"


def _first_characters(anchors: Sequence[Anchor]) -> tuple[str, bytes]:
    """A lookahead for the characters (str) and bytes (UTF-8) anchors start with: a line whose first
    character after the junk starts none is rejected by one test instead of one per branch (the scan
    takes 7% less time on the benchmark log, 16% less on the real-world logs, dense with hex dumps)."""
    chars = {
        c for a in anchors for c in ({a.text[0].lower(), a.text[0].upper()} if a.ignore_case else {a.text[0]})
    }
    heads = {c.encode("utf-8")[:1] for c in chars}
    as_str = "".join(re.escape(c) for c in sorted(chars))
    as_bytes = b"".join(re.escape(h) for h in sorted(heads))
    return f"(?=[{as_str}])", b"(?=[" + as_bytes + b"])"


class Prefilter:
    """Finds the lines of a chunk where some trigger may match. Built once per set of triggers."""

    def __init__(self, triggers: Iterable[str]) -> None:
        line_start: list[Anchor] = []
        self.floating: list[Anchor] = []
        unanchored: list[str] = []
        triggers = tuple(triggers)
        remember_anchors(triggers)
        for trigger in triggers:
            anchors = known_anchors(trigger)
            if anchors is None:
                unanchored.append(trigger)
                continue
            for anchor in anchors:
                # the possessive junk could swallow a non-ASCII first character whose UTF-8 lead byte it lists
                # (spaces, the BOM): search such text anywhere; other scripts (a localised heading) stay here
                at_start = anchor.line_start and (
                    anchor.text[0].isascii()
                    or not anchor.after_junk
                    or anchor.text[0].encode("utf-8")[0] not in _JUNK_LEAD_BYTES
                )
                (line_start if at_start else self.floating).append(anchor)
        self.floating = _without_redundant(self.floating)
        self.line_start = tuple(line_start)
        self._fast: fastscan.FastScan | None = None  # built when a large input first needs it
        self._fast_tried = False
        self._starts = LineStarts(line_start, _JUNK_TEXT, _JUNK_BYTE_VALUES)
        # every search is compiled at its first use (parsers.deferred): a short input needs none of them (it
        # is scanned without, see short_candidates), and most long chunks never need a floating anchor's
        # search (compiling all: ~6 ms a process)
        # a literal search of ``re`` beats ``bytes.find`` on short needles of common letters (which the
        # latter's skip table cannot jump over): 0.035 against 0.071 s per 100 MB for ``.dmp``
        self._literal_b = {
            a: deferred_compile(re.escape(a.text.encode("utf-8", "replace"))) for a in self.floating
        }
        self._literal_s = {a: deferred_compile(re.escape(a.text)) for a in self.floating}
        after_junk = [a for a in line_start if a.after_junk]
        direct = sorted(
            {
                re.escape(a.text) if not a.ignore_case else f"(?i:{re.escape(a.text)})"
                for a in line_start
                if not a.after_junk
            }
        )
        trie = _by_first_char(after_junk) if after_junk else None
        self._line_start_s = self._line_start_b = None
        if line_start:
            gate_s, gate_b = _first_characters(after_junk)
            with_junk_s = [JUNK_STR + gate_s + trie] if trie else []
            with_junk_b = [JUNK_BYTES + gate_b + trie.encode()] if trie else []
            self._line_start_s = deferred_compile(r"\n(?:" + "|".join([*direct, *with_junk_s]) + ")")
            self._line_start_b = deferred_compile(
                b"\n(?:" + b"|".join([*(d.encode() for d in direct), *with_junk_b]) + b")"
            )
        combined = "|".join(f"(?:{t})" for t in unanchored)
        self._unanchored_s = deferred_compile(combined, re.MULTILINE) if unanchored else None
        self._unanchored_b = (
            deferred_compile(combined.encode("utf-8", "replace"), re.MULTILINE) if unanchored else None
        )
        self.unanchored = tuple(unanchored)

    def scanner(self, data: bytes | str, candidates: list[int] | None = None) -> ChunkScanner:
        """A scanner of ``data``; ``candidates`` are its candidate line starts when a scan of the same
        data (:meth:`fast_scan`, which the feed decides on) has found them already."""
        return ChunkScanner(self, data, candidates)

    def fast_scan(self) -> fastscan.FastScan | None:
        """The Hyperscan scan of bytes chunks (:mod:`parsers.fastscan`), or ``None`` without Hyperscan."""
        if not self._fast_tried:
            self._fast_tried = True
            patterns = fastscan.expressions(self.line_start, self.floating, fastscan.junk_bytes(JUNK_BYTES))
            self._fast = fastscan.build(patterns, paste.MARKUP_EXPRESSIONS) if patterns is not None else None
        return self._fast

    def short_candidates(self, data: bytes | str) -> list[int] | None:
        """The candidate line starts of a short chunk (:data:`SHORT_CHUNK`), found with string operations
        (:mod:`parsers.linestart`, and ``find`` for the floating anchors) instead of the compiled searches,
        which cost more to compile (~5 ms each as bytes and as str) than a short input takes to read.
        ``None`` for a long chunk, or when a trigger without anchors needs its own search anyway."""
        if len(data) > SHORT_CHUNK or self.unanchored:
            return None
        starts = self._starts.in_bytes(data) if isinstance(data, bytes) else self._starts.in_text(data)
        floating = _floating_candidates(data, self.floating, None)
        return sorted({*starts, *floating}) if floating else starts

    def may_match(self, line: str) -> bool:
        """Whether some trigger may match ``line`` (one decoded line): the same test as a chunk scan, for a
        line the dispatcher got back from a parser, so that noise costs one search instead of every
        trigger's."""
        if self._starts.matches(line):  # what ``self._line_start_s.match("\n" + line)`` finds
            return True
        lowered = None
        for anchor in self.floating:
            if anchor.ignore_case:
                lowered = line.lower() if lowered is None else lowered
                if anchor.text.lower() in lowered:
                    return True
            elif anchor.text in line:
                return True
        return self._unanchored_s is not None and self._unanchored_s.search(line) is not None


def _rarest(text: str) -> str | None:
    """The character of ``text`` least likely in debugger noise: punctuation, then upper case."""
    for kind in ("<>{}|=,;[]~^$%&@\"'", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
        for char in text:
            if char in kind:
                return char
    return None


def _floating_candidates(
    data: bytes | str, anchors: Sequence[Anchor], literal: dict[Anchor, Any] | None
) -> list[int]:
    """Line starts of ``data`` holding a floating anchor: few per chunk, so they are listed up front. Each is
    found with the compiled literal search of ``literal`` (faster on a long chunk) or, without, ``find``."""
    if not anchors:
        return []
    newline: Any = b"\n" if isinstance(data, bytes) else "\n"
    lowered = None
    found: set[int] = set()
    for anchor in anchors:
        haystack = data
        needle: Any = anchor.text.encode("utf-8", "replace") if isinstance(data, bytes) else anchor.text
        rare = _rarest(anchor.text)
        if rare is not None and not anchor.ignore_case:
            probe: Any = rare.encode() if isinstance(data, bytes) else rare
            if probe not in data:  # memchr: most chunks lack the anchor's rarest character altogether
                continue
        if anchor.ignore_case:
            if lowered is None:
                lowered = data.lower()
            haystack, needle = lowered, needle.lower()
        pattern = None if anchor.ignore_case or literal is None else literal[anchor]
        at = 0
        while True:
            if pattern is None:
                at = haystack.find(needle, at)
            else:
                match = pattern.search(data, at)
                at = match.start() if match else -1
            if at < 0:
                break
            found.add(data.rfind(newline, 0, at) + 1)
            end = data.find(newline, at)
            if end < 0:
                break
            at = end + 1
    return sorted(found)


class ChunkScanner:
    """Candidate line starts of one chunk, in increasing order, from a given position on.

    ``data`` must start with a ``\\n`` sentinel and end with ``\\n``; positions are line starts.
    """

    def __init__(self, prefilter: Prefilter, data: bytes | str, candidates: list[int] | None = None) -> None:
        self.data = data
        is_bytes = isinstance(data, bytes)
        self._literal: dict[Anchor, Any] = prefilter._literal_b if is_bytes else prefilter._literal_s
        # typed Any: one scanner serves bytes and str chunks with the matching compiled pattern
        self._line_start: Any = prefilter._line_start_b if is_bytes else prefilter._line_start_s
        self._unanchored: Any = prefilter._unanchored_b if is_bytes else prefilter._unanchored_s
        self._next_line_start = -1  # cached result of the line-start search, valid while >= position
        self._next_unanchored = -1
        if candidates is None:
            candidates = prefilter.short_candidates(data)
        if candidates is not None:  # found what the line-start and floating searches find
            self._line_start = None
            self._extra: list[int] = candidates
        else:
            self._extra = _floating_candidates(data, prefilter.floating, self._literal)

    def next_candidate(self, position: int) -> int:
        """The first candidate line start at or after ``position`` (a line start), or -1."""
        best = -1
        if self._line_start is not None:
            if self._next_line_start != -2 and self._next_line_start < position:
                match = self._line_start.search(self.data, position - 1)
                self._next_line_start = match.start() + 1 if match else -2
            if self._next_line_start >= 0:
                best = self._next_line_start
        if self._extra:
            index = bisect.bisect_left(self._extra, position)
            if index < len(self._extra) and (best < 0 or self._extra[index] < best):
                best = self._extra[index]
        if self._unanchored is not None:
            if self._next_unanchored != -2 and self._next_unanchored < position:
                match = self._unanchored.search(self.data, position)
                newline: Any = b"\n" if isinstance(self.data, bytes) else "\n"
                self._next_unanchored = self.data.rfind(newline, 0, match.start()) + 1 if match else -2
            if self._next_unanchored >= 0 and (best < 0 or self._next_unanchored < best):
                best = self._next_unanchored
        return best
