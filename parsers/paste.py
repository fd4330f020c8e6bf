"""The paste normaliser: what forums, blogs, chat and documentation pages do to a debugger log, undone
beneath every parser.

People rarely attach a log; they paste it. On the way it gains markdown quote markers (``> ``, nested),
list bullets and numbering, code fences, backslash escapes (``\\*``, ``\\_``: a documentation page prints
the verifier banner as ``\\*\\*\\*``), HTML (``<pre>``, ``<br>``, ``&gt;``), Liquid/Jekyll highlight tags,
backticks around inline text, non-breaking, full-width and typographic characters, and loses its line
structure: a forum wraps a long value onto the next line, a chat flattens ``KEY: value`` lines into one.

Every parser's trigger and block reader is written for the debugger's own text, so the dispatcher
(``parsers.stream``) gives them that text back, in two steps that cost nothing on a clean log:

- :func:`normalise_chunk`: markup *inside* lines (escapes, entities, tags, Liquid tags, non-ASCII spaces
  and quotes) would hide a trigger's literal text from the prefilter, so a chunk that has any (decided
  by memchr-speed checks) has those lines rewritten before the scan. Lines keep their places.
- :func:`clean_line`: every line a parser reads, and every candidate line, is cleaned of what a paste puts
  in *front* of it (quote markers, bullets, numbering, backticks, fences; the prefilter skips those like
  indentation), split where a paste flattened several lines into one, and :func:`join_wrapped` rejoins a
  value a forum wrapped onto the next line. Split parts keep the number of their line, a joined line the
  number of its first half, so every span still points at the text as the user has it.

Its patterns are compiled at their first use (:mod:`parsers.deferred`): a clean log needs few or none of
them, and compiling all cost ~3 ms of every command's start-up.
"""

from __future__ import annotations

import re

from parsers.deferred import deferred_compile

# -- markup inside lines: found in a whole chunk at memchr speed ----------------------------------------
#: markdown escapes that a page puts before debugger text; ``\_`` only after a word character, ``!`` or a
#: blank (``BUGCHECK\_CODE``, ``nt!\_MI``), so that ``C:\_build`` keeps its backslash; never ``\.``, ``\(``
#: ... (``\\.\pipe``)
_ESCAPE = r"\\(?:[*`#<>\[\]]|(?<=[A-Za-z0-9!\s(]\\)_(?=[A-Za-z0-9]))"
_ENTITY = r"&(?:[a-zA-Z]{2,8}|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});"
_TAGS = r"(?:pre|code|br|p|div|span|b|i|em|strong|tt|samp|kbd|blockquote|li|ul|ol|font)"
_TAG = rf"</?{_TAGS}\b[^<>\n]*>"
_LIQUID = r"\{%[^\n]*?%\}"
_SPECIAL = "\u00a0\u2000-\u200b\u2018-\u201f\u2022\u202f\u205f\u3000\ufeff\uff01-\uff5e"
#: In a chunk: each of these marks its line for :func:`clean_text`. Each alternative starts with a rare
#: literal character, so the search jumps from one to the next.
_IN_TEXT = deferred_compile("|".join((_ESCAPE, _ENTITY, _TAG, _LIQUID, f"[{_SPECIAL}]")), re.IGNORECASE)
_IN_BYTES = (
    (b"\\", deferred_compile(rb"\\(?=[*`#<>\[\]_])")),
    (b"&", deferred_compile(_ENTITY.encode())),
    (b"<", deferred_compile(_TAG.encode(), re.IGNORECASE)),
    (b"{", deferred_compile(rb"\{(?=%)")),  # (a lookahead: the two-character literal is searched 10x slower)
)
#: The same markup as Hyperscan expressions (no lookaheads: a match is a match of the above, and the reverse)
#: for :mod:`parsers.fastscan`, which finds it in the pass that finds the candidate lines.
MARKUP_EXPRESSIONS = (
    rb"\\[*`#<>\[\]_]",
    _ENTITY.encode(),
    b"(?i:" + _TAG.encode() + b")",
    rb"\{%",
)

# -- how a line is cleaned --------------------------------------------------------------------------------
_LIQUID_RE = deferred_compile(_LIQUID)
_BR = deferred_compile(r"<br\s*/?>", re.IGNORECASE)
_TAG_RE = deferred_compile(_TAG, re.IGNORECASE)
# XML (an exported event) keeps its entities: its reader decodes them
_XML = deferred_compile(rf"<(?!/?{_TAGS}\b)[/?]?[A-Za-z][\w:.-]*[\s/>]")
_ESCAPE_RE = deferred_compile(r"\\([*`#<>\[\]])|(?<=[A-Za-z0-9!\s(])\\(_)(?=[A-Za-z0-9])")
_CHARS = str.maketrans(
    {
        **dict.fromkeys("\u00a0\u202f\u205f\u3000", " "),  # (a tab stays: some exports are tab separated)
        **{chr(c): " " for c in range(0x2000, 0x200B)},  # en quad ... hair space
        **dict.fromkeys("\u200b\ufeff", ""),
        **dict.fromkeys("\u2018\u2019\u201a\u201b", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f", '"'),
        **{chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)},  # full-width ASCII forms
    }
)
_QUOTE = deferred_compile(r"^[ \t]*>[ \t]?")
# bullets: ``-``, ``+``, typographic bullets and dashes, numbering; ``*`` only when the line does not also
# end with one (a ``*   Bugcheck Analysis   *`` box line is not a list). The bullet and one blank go; the
# indentation after it is the log's own.
_BULLET = deferred_compile(r"^[ \t]*(?:[-+\u2022\u00b7\u2013\u2014]|[0-9]{1,3}[.)])[ \t]")
_STAR_BULLET = deferred_compile(r"^[ \t]*\*[ \t](?=[ \t]*[^\s*])(?!.*\*[ \t]*$)")
_FENCE = deferred_compile(r"^[ \t]*(?:```|~~~)")
# not the backtick inside an address (``fffff800`12345678``) or an inline frame's (``--------`--------``):
# one that no such character follows, or none precedes (the look-behind takes the backtick in too). Written
# to start with the backtick, so that a search jumps from one to the next (a frame line holds a dozen)
_BACKTICK = r"`(?:(?![0-9a-fA-F-])|(?<![0-9a-fA-F-]`))"
_BACKTICK_RE = deferred_compile(_BACKTICK)
_BOLD = deferred_compile(r"(?<!\*)\*\*(?=[^\s*])(.+?)(?<=[^\s*])\*\*(?!\*)")
#: where a line holding several flattened lines is cut: before an ``UPPER_CASE_KEY:`` (``!analyze``
#: fields), an ``ArgN:`` or a debugger prompt, when the line starts with one of those already
_PIECE = r"(?:[A-Z][A-Z0-9]*_[A-Z0-9_]*[ \t]*:(?=[ \t])|Arg[1-4][ \t]*:|[0-9]{1,3}:[ \t]*kd>)"
_STARTS_PIECE = deferred_compile(rf"^[ \t]*{_PIECE}")
_SPLIT = deferred_compile(rf"[ \t]+(?={_PIECE})")
# what tells a line that :func:`clean_line` must look at (most lines need none of it): markup in front,
# a flattened line, markup inside (each alternative starts with a rare literal: one fast scan), or a
# backtick that is not inside an address or an inline frame's dashes
_FRONT = deferred_compile(r"[ \t]*(?:[>`~*+\-\u2022\u00b7\u2013\u2014]|[0-9]{1,3}[.)][ \t])")
#: what :func:`_clean_front` peels or drops, where :data:`_FRONT` is a character that may start it: a quote
#: marker, a backtick, a fence, a bullet or number followed by a blank, a star bullet (:data:`_STAR_BULLET`)
_PEELS = deferred_compile(
    r"[ \t]*(?:[>`]|```|~~~|[-+\u2022\u00b7\u2013\u2014][ \t]|[0-9]{1,3}[.)][ \t]"
    r"|\*[ \t](?=[ \t]*[^\s*])(?!.*\*[ \t]*$))"
)
_FLATTENED = deferred_compile(rf"[ \t]{_PIECE}")
_INLINE = deferred_compile(rf"{_ESCAPE}|{_ENTITY}|(?i:{_TAG})|\{{%|[{_SPECIAL}]")  # (and bold: _BOLD)
_MAX_PEEL = 8  # quote and bullet layers removed from one line (``> > - 1.`` ...)
#: what a line starts with (after blanks) when _QUOTE, _BULLET or _STAR_BULLET may match it
_PEEL_HEADS = frozenset(">-+*\u2022\u00b7\u2013\u2014" + "0123456789")
_STAR_RUN = deferred_compile(r"\*{3,}")  # a run of stars that cannot open or close bold
#: what a line starts with when :data:`_FRONT` or :data:`_PEELS` may match it (blanks may come first)
_FRONT_HEADS = frozenset(" \t>`~*+-\u2022\u00b7\u2013\u2014" + "0123456789")
#: what a line starts with when :data:`_STARTS_PIECE` may match it
_PIECE_HEADS = frozenset(" \t" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "0123456789")

# -- a value wrapped onto the next line --------------------------------------------------------------------
# (a value stands after a blank, ``:``, ``=``, ``(`` or ``,``; not ``+0x1d6f81``, a symbol's offset)
_WRAPPED_HEAD = deferred_compile(r"(?<=[ \t:=(,])([0-9a-fA-F]{4,15})[ \t]*$")
_WRAPPED_TAIL = deferred_compile(r"^[ \t]*([0-9a-fA-F]{1,15})(?=,|[ \t]|$)")
HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_HEX = "0123456789abcdefABCDEF"
_VALUE_AFTER = frozenset(" \t:=(,")  # what _WRAPPED_HEAD's look-behind accepts before a value


def clean_text(text: str) -> str:
    """Markup inside a line, undone: Liquid tags, HTML tags (``<br>`` becomes a line break), entities,
    markdown escapes, typographic spaces and quotes, full-width forms."""
    if "{%" in text:
        text = _LIQUID_RE.sub("", text)
    if "<" in text:
        text = _TAG_RE.sub(lambda m: "\n" if _BR.fullmatch(m.group(0)) else "", text).removesuffix("\n")
    if "&" in text and not _XML.search(text):
        import html  # (its entity table: ~2 ms of start-up that a log without entities never needs)

        text = html.unescape(text)
    if "\\" in text:
        text = _ESCAPE_RE.sub(lambda m: m.group(1) or m.group(2), text)
    return text.translate(_CHARS)


def clean_line(text: str) -> list[str]:
    """One pasted line as the debugger printed it: usually one line, several when the paste flattened
    lines into one (``<br>``, ``KEY: value KEY2: value2``), an empty line for markup-only lines (fences,
    Liquid tags)."""
    return _cleaned(text) if _front_or_bold(text) or _inside_or_flattened(text) else [text]


def _cleaned(text: str) -> list[str]:
    text = text.removesuffix("\r")
    liquid_only = "{%" in text and not _LIQUID_RE.sub("", text).strip()
    if liquid_only:
        return [""]
    return [piece for line in clean_text(text).split("\n") for piece in _split_flattened(_clean_front(line))]


def _inside_or_flattened(text: str) -> bool:
    """Whether ``text`` holds markup inside, several flattened lines, or a backtick that is not part of an
    address (which cleaning removes)."""
    if _may_hold_inline(text) and _INLINE.search(text):
        return True
    first = _STARTS_PIECE.match(text) if text[:1] in _PIECE_HEADS else None
    if first is not None and _FLATTENED.search(text, first.end()):
        return True
    return "`" in text and _BACKTICK_RE.search(text) is not None


def _front_or_bold(text: str) -> bool:
    """Whether cleaning may change ``text`` in front or by bold: a peel, a fence or bold that is there
    (:data:`_PEELS`, :data:`_BOLD`), not merely a character that may start one, so that a banner's ``**``
    and ``*****`` lines, ``----`` lines and ``*** Fatal System Error`` are passed on as they are (a tenth
    of an ``!analyze -v`` sample's lines, each cleaned to itself at ~7 us: issue 16). A line holding a
    ``&`` or ending with a CR is cleaned whenever such a character starts it or it holds ``**``, as before:
    cleaning it unescapes an entity without its ``;`` and drops the CR too."""
    front = text[:1] in _FRONT_HEADS  # (a frame, a field: no match to try, issue 16)
    if "&" in text or text.endswith("\r"):
        return (front and _FRONT.match(text) is not None) or "**" in text
    if front and _may_peel_front(text) and _PEELS.match(text) is not None:
        return True
    return _may_be_bold(text) and _BOLD.search(text) is not None


def _may_hold_inline(text: str) -> bool:
    """Whether ``text`` holds a character that every :data:`_INLINE` match starts with (an escape's ``\\``,
    an entity's ``&``, a tag's ``<``, a Liquid tag's ``{%``, or a special character, all of them non-ASCII):
    a few memchr-speed tests instead of a search that tries every position (issue 16). A backslash counts
    only before what an escape can escape, a brace only before ``%``: a debugger's paths
    (``\\SystemRoot\\system32``) and bug check lines (``BugCheck C4, {2000, ...}``) spare a clean log the
    search and its compile (~0.5 ms)."""
    if not text.isascii() or "&" in text or "<" in text or "{%" in text:
        return True
    return "\\" in text and any(after[:1] in _ESCAPED for after in text.split("\\")[1:])


#: what follows the backslash of an :data:`_ESCAPE` (or nothing: the line's end, for a superset)
_ESCAPED = "*`#<>[]_"


def _may_peel_front(text: str) -> bool:
    """Whether :data:`_PEELS` may match ``text``, from what follows the blanks: a quote marker or a backtick,
    a fence's ``~~~``, a bullet and a blank, a number of 1-3 digits and ``.`` or ``)``, a star and a blank
    on a line that does not end with another star (a box line of a banner). A debugger's prompts
    (``0: kd>``), indented values and box lines spare a clean log the search and its compile (~0.4 ms)."""
    rest = text.lstrip(" \t")
    first = rest[:1]
    if not first:
        return False
    if first in "0123456789":
        number = rest.lstrip("0123456789")
        return len(rest) - len(number) <= 3 and number[:1] in (".", ")")
    if first == "*":
        stripped = rest.rstrip(" \t")
        return rest[1:2] in (" ", "\t") and not (len(stripped) >= 3 and stripped.endswith("*"))
    if first == "~":
        return rest.startswith("~~~")
    return first in ">`" or (first in "-+\u2022\u00b7\u2013\u2014" and rest[1:2] in (" ", "\t"))


def _clean_front(text: str) -> str:
    for _ in range(_MAX_PEEL):
        peeled = text[1:] if text.startswith("`") and not text.startswith("```") else text
        if _may_peel(peeled):
            peeled = _QUOTE.sub("", peeled, count=1)
            peeled = _BULLET.sub("", peeled, count=1)
            peeled = _STAR_BULLET.sub("", peeled, count=1)
        if peeled == text:
            break
        text = peeled
    if _FENCE.match(text):
        return ""
    if "`" in text:
        text = _BACKTICK_RE.sub("", text)
    if _may_be_bold(text):
        text = _BOLD.sub(r"\1", text)
    return text


def _may_peel(text: str) -> bool:
    """Whether :data:`_QUOTE`, :data:`_BULLET` or :data:`_STAR_BULLET` may match: by the first character
    after the blanks, instead of three substitutions that mostly find nothing."""
    return text.lstrip(" \t")[:1] in _PEEL_HEADS


def _may_be_bold(text: str) -> bool:
    """Whether :data:`_BOLD` may match: bold opens and closes with a run of exactly two stars, so the banner
    lines' runs of 70 and their ``** The caller ...`` lines (one such run) are spared the search (and a
    banner its compile). Removing the longer runs joins no two others: what is left of a run is the run."""
    return "**" in text and _STAR_RUN.sub("", text).count("**") >= 2


def _split_flattened(text: str) -> list[str]:
    first = _STARTS_PIECE.match(text)
    if first is None:
        return [text]
    rest = _SPLIT.split(text[first.end() :])
    return [text[: first.end()] + rest[0], *rest[1:]]


def may_continue(text: str) -> bool:
    """Whether ``text`` (one line) ends with the first part of a value that the next line may complete:
    what ``_WRAPPED_HEAD`` finds in its last 24 characters, decided with ``rstrip`` (the search tried each of
    those positions; a parser calls this for every line that ends with a hex digit, issue 16). The value
    is the whole run of hex digits before the trailing blanks, since the character before it must be a
    separator, which no hex digit is."""
    body = text.rstrip(" \t")
    head = body.rstrip(_HEX)
    return 4 <= len(body) - len(head) <= 15 and head[-1:] in _VALUE_AFTER and len(head) >= len(text) - 24


def join_wrapped(text: str, following: str) -> str | None:
    """``text`` and ``following`` as one line when a forum cut a hex value between them (1-15 digits, not
    a whole 8 or 16, at the end of ``text``, the rest at the start of ``following``, 8 or 16 together)."""
    head = _WRAPPED_HEAD.search(text, max(0, len(text) - 24))  # (only the end of a line can be cut)
    if head is None:
        return None
    tail = _WRAPPED_TAIL.match(following)
    if tail is None:
        return None
    digits = len(head.group(1))
    if digits in (8, 16) or digits + len(tail.group(1)) not in (8, 16):
        return None
    return text[: head.end(1)] + following.lstrip(" \t")


_UNINDENTED_S = deferred_compile(r"\n(?![ \t]|\r?\n)")
_UNINDENTED_B = deferred_compile(rb"\n(?![ \t]|\r?\n)")
_INDENT = deferred_compile(r"\n([ \t]+)(?=[^\s])")


def _dedented(data: bytes | str, codec: str) -> str | None:
    """``data`` without the indentation every one of its lines has (a log pasted as a markdown code block,
    four blanks deep), or ``None`` when some line starts at the margin (one search finds it at once)."""
    unindented = _UNINDENTED_B if isinstance(data, bytes) else _UNINDENTED_S
    if unindented.search(data, 0, len(data) - 1) is not None:  # type: ignore[arg-type]
        return None
    text = data.decode(codec, "replace") if isinstance(data, bytes) else data
    depth = min((len(indent) for indent in _INDENT.findall(text)), default=0)
    return re.sub(rf"\n[ \t]{{1,{depth}}}", "\n", text) if depth else None


_HOPS = 16  # occurrences of a markup character looked at one by one before one search of the rest


def _holds(data: bytes, char: bytes, pattern: re.Pattern[bytes]) -> bool:
    """Whether ``pattern`` (which starts with ``char``) matches in ``data``: from one occurrence of ``char``
    to the next at memchr speed while they are few (a ``{`` in a log is rare, and a regex pass over a chunk
    costs several memchr passes), then with one search."""
    at = data.find(char)
    for _ in range(_HOPS):
        if at < 0:
            return False
        if pattern.match(data, at) is not None:
            return True
        at = data.find(char, at + 1)
    return at >= 0 and pattern.search(data, at) is not None


def normalise_chunk(data: bytes | str, codec: str = "utf-8", markup: bool | None = None) -> str | None:
    """``data`` (a chunk starting with a ``\\n`` sentinel and ending with ``\\n``) with the markup inside its
    lines undone (:func:`clean_text`), line for line; ``None`` when it has none, the common case, decided
    without decoding by ``isascii`` and memchr-speed searches. ``markup`` tells whether a bytes chunk
    holds :data:`MARKUP_EXPRESSIONS` when a scan has found out already."""
    dedented = _dedented(data, codec)
    if dedented is not None:
        data = dedented
    if isinstance(data, bytes):
        if markup is None:
            markup = any(_holds(data, char, pattern) for char, pattern in _IN_BYTES)
        if data.isascii() and not markup:
            return None
        text = data.decode(codec, "replace")
    else:
        text = data
    out: list[str] = []
    done = 0
    for match in _IN_TEXT.finditer(text):
        if match.start() < done:
            continue
        start = text.rfind("\n", 0, match.start()) + 1
        end = text.find("\n", match.start())
        out.append(text[done:start])
        out.append(clean_text(text[start:end]).replace("\n", "<br>"))  # line breaks wait for clean_line
        done = end
    if not out:
        return dedented
    out.append(text[done:])
    return "".join(out)
