"""Stack listings: the ``k`` family (``k``, ``kb``, ``kv``, ``kn``, ``kf``, ``kP``, ``kc``), ``STACK_TEXT``.

One frame grammar serves every layout: optional frame number, optional ``kf`` memory column, Child-SP (or
ChildEBP, or ``(Inline Function)``), RetAddr, optional "Args to Child" (between colons on x64, bare 8-digit
words on x86), then the call site (``module!func+0x12``, ``module+0x1234``, a bare address) with its
optional ``[path @ line]``, ``(TrapFrame @ ...)`` or ``kv`` FPO text. ``parsers.analyze`` reads the
``STACK_TEXT`` inside ``!analyze -v`` with :func:`read_frames`, so the two never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from msgspec.structs import replace

from parsers.base import Line, LineCursor
from parsers.deferred import deferred_compile
from parsers.mentions import mention_before
from parsers.records import BugCheckRecord, Record, Span, StackFrame, StackRecord

MAX_FRAMES = 4096  # a runaway block (a log of a million frame-like lines) is cut here
_ADDRESS = r"(?:[0-9a-fA-F]{8}`[0-9a-fA-F]{8}|[0-9a-fA-F]{16}|[0-9a-fA-F]{8})"
_DASHES = r"(?:-{8}`-{8}|-{8,16})"
_FRAME = deferred_compile(
    rf"""^[ \t]*
    (?:(?P<index>[0-9a-fA-F]{{2,4}})[ \t]+)?
    (?:(?P<memory>[0-9a-fA-F]{{1,6}})[ \t]+)?
    (?:
        (?P<sp>{_ADDRESS}|\(Inline(?:[ ]Function)?\))[ \t]+
        (?P<ret>{_ADDRESS}|{_DASHES})
        (?:[ \t]+:[ \t]*(?P<args>(?:(?:{_ADDRESS}|{_DASHES})[ \t]+)*):)?
      | (?P<ret_only>{_ADDRESS}|\(Inline(?:[ ]Function)?\)|{_DASHES})   # newer kb: no Child-SP column
        [ \t]+:[ \t]*(?P<args_only>(?:(?:{_ADDRESS}|{_DASHES})[ \t]+)*):
    )
    (?P<rest>(?:[ \t].*)?)$""",
    re.VERBOSE,
)
_X86_ARG = deferred_compile(r"[ \t]+([0-9a-fA-F]{8})(?=[ \t])")
_KC_FRAME = deferred_compile(r"^[ \t]*(?P<index>[0-9a-fA-F]{2,4})[ \t]+(?P<rest>\S.*)$")
_SOURCE = deferred_compile(r"[ \t]\[(?P<file>[^\[\]]*?)[ \t]@[ \t](?P<line>\d+)\][ \t]*$")
_TRAP = deferred_compile(r"TrapFrame[ \t]+@[ \t]+(?P<trap>[0-9a-fA-F`]+)")
_PAREN_NOTE = deferred_compile(
    r"[ \t]\((?:FPO:|TrapFrame[ \t]@|Inline[ \t]Function)[^()]*(?:\([^()]*\)[^()]*)*\)[ \t]*$"
)
_WITH_SYMBOL = deferred_compile(r"^(?P<module>[^!\s]+)!(?P<function>.+?)(?:\+0x(?P<offset>[0-9a-fA-F`]+))?$")
_MODULE_OFFSET = deferred_compile(r"^(?P<module>[^+\s!]+)\+0x(?P<offset>[0-9a-fA-F`]+)$")
_BARE = deferred_compile(r"^(?:0x)?(?P<address>[0-9a-fA-F]{1,8}(?:`[0-9a-fA-F]{8})?)$")
_INTERJECTION = deferred_compile(
    r"^\s*(?:WARNING:|\*\*\* |Unable to |Page [0-9a-fA-F]+ (?:not|too)|GetContextState failed|Frame IP)"
)
_HEADER = deferred_compile(
    r"^[\s#>]*(?:(?P<memory>Memory\s+)?Child-SP\s+RetAddr|(?P<x86>ChildEBP\s+RetAddr)|(?P<kc>Call Site\s*$)"
    r"|RetAddr\s+:\s+Args to Child)"
)
_QUOTE = deferred_compile(r"^(?:[ \t]*>)+[ \t]?")
_PROMPT = deferred_compile(r"kd> (?P<command>k[a-zA-Z]*)\b")
_PARAM_LINE = deferred_compile(r"^[ \t]+\S.*(?:=|\)|,)\s*$")


def _int(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text.replace("`", ""), 16)
    except ValueError:
        return None


def _call_site(site: str) -> dict[str, object]:
    """Module, function, offset or bare address of a call-site text."""
    site = site.strip()
    match = _WITH_SYMBOL.match(site)
    if match:
        return {
            "module": match["module"],
            "function": match["function"],
            "offset": _int(match["offset"]) if match["offset"] else None,
        }
    match = _MODULE_OFFSET.match(site)
    if match:
        return {"module": match["module"], "offset": _int(match["offset"])}
    match = _BARE.match(site)
    if match:
        return {"address": _int(match["address"])}
    return {}


def _annotations(rest: str) -> tuple[str, dict[str, object]]:
    """Strip ``[path @ line]``, ``(TrapFrame @ ...)`` and FPO notes off a call site; return what they say."""
    found: dict[str, object] = {}
    for _ in range(3):
        # each note holds a character a frame seldom has: searched only then (issue 16: two searches that
        # tried every position of every frame)
        source = _SOURCE.search(rest) if "@" in rest else None
        if source:
            found["source_file"] = source["file"]
            found["source_line"] = int(source["line"])
            rest = rest[: source.start()]
            continue
        note = _PAREN_NOTE.search(rest) if "(" in rest else None
        if note:
            trap = _TRAP.search(note.group(0))
            if trap:
                found["trap_frame"] = _int(trap["trap"])
            rest = rest[: note.start()]
            continue
        break
    return rest.strip(), found


def parse_frame(line: Line, *, call_site_only: bool = False) -> StackFrame | None:
    """One frame of any ``k``/``STACK_TEXT`` layout, or ``None`` if ``line`` is not a frame.

    ``call_site_only`` is for ``kc`` listings, whose frames are just ``NN module!function``.
    """
    text = line.text
    if len(text) > 4096:
        return None
    if call_site_only:
        kc = _KC_FRAME.match(text)
        if kc is None:
            return None
        site, notes = _annotations(" " + kc["rest"])
        parts = _call_site(site)
        if not parts:
            return None
        return StackFrame(line=line.number, text=text.rstrip(), index=int(kc["index"], 16), **parts, **notes)  # type: ignore[arg-type]
    match = _FRAME.match(text)
    if match is None:
        return None
    rest = match["rest"]
    child_sp_text = match["sp"] or ""
    ret_text = match["ret"] or match["ret_only"]
    args_text = match["args"] if match["args"] is not None else match["args_only"]
    inline = child_sp_text.startswith("(") or ret_text.startswith(("(", "-"))
    args: list[int] = []
    if args_text is not None:
        args = [v for v in (_int(a) for a in args_text.split()) if v is not None]
    elif len(child_sp_text) == 8 and len(ret_text) == 8:
        while len(args) < 4:  # x86 kb/kv: up to three (or four) bare argument words before the call site
            word = _X86_ARG.match(rest)
            if word is None:
                break
            args.append(int(word.group(1), 16))
            rest = rest[word.end() :]
    site, notes = _annotations(rest)
    parts = _call_site(site) if site else {}
    return StackFrame(
        line=line.number,
        text=text.rstrip(),
        index=int(match["index"], 16) if match["index"] else None,
        child_sp=None if inline else _int(child_sp_text),
        return_address=None if inline else _int(ret_text),
        args=tuple(args),
        inline=inline,
        **parts,  # type: ignore[arg-type]
        **notes,  # type: ignore[arg-type]
    )


_PARAMS_END = deferred_compile(r"\)(?:\+0x(?P<offset>[0-9a-fA-F`]+))?(?P<rest>(?:[ \t].*)?)$")


def _with_parameters(frame: StackFrame, cursor: LineCursor) -> tuple[StackFrame, int]:
    """A ``kP`` frame whose call site opens a parameter list: read the indented parameter lines up to the
    one that closes it with ``)+0xoffset [source]``, and give the frame its real function and offset."""
    lines = [frame.text]
    last = frame.line
    for _ in range(64):
        line = cursor.next()
        if line is None:
            break
        if not line.text[:1].isspace():
            cursor.push_back(line)
            break
        lines.append(line.text.rstrip())
        last = line.number
        end = _PARAMS_END.search(line.text)
        if end is not None:
            _site, notes = _annotations(end["rest"])
            full = replace(
                frame,
                text="\n".join(lines),
                function=frame.function[:-1] if frame.function else None,
                offset=_int(end["offset"]),
                **notes,
            )
            return full, last
    return replace(frame, function=frame.function[:-1] if frame.function else None), last


def read_frames(
    cursor: LineCursor, *, call_site_only: bool = False, clean: Callable[[str], str] | None = None
) -> tuple[list[StackFrame], int | None]:
    """Frames from the cursor until a line that is not a frame (pushed back), and the number of the last
    line they took (a ``kP`` frame spans several lines). Debugger interjections
    between frames (``WARNING: Frame IP not in any known module``, ``*** ERROR: ...symbols...``) and ``kP``
    parameter lines are stepped over when more frames follow. ``clean`` undoes forum mangling (quote
    markers) before a line is read as a frame."""
    frames: list[StackFrame] = []
    last: int | None = None
    while len(frames) < MAX_FRAMES:
        line = cursor.next()
        if line is None:
            break
        if clean is not None:
            line = Line(line.number, clean(line.text))
        frame = parse_frame(line, call_site_only=call_site_only)
        if frame is not None and not frame.inline and frame.module is None and frame.address is None:
            frame, line = _unwrapped(frame, line, cursor, clean)
        if frame is not None:
            last = line.number
            if frame.function is not None and frame.function.endswith("("):
                frame, last = _with_parameters(frame, cursor)
            frames.append(frame)
            continue
        interjection = _INTERJECTION.match(line.text) or (frames and _PARAM_LINE.match(line.text))
        if line.text.strip() and interjection:
            following = cursor.peek()
            if following is not None and clean is not None:
                following = Line(following.number, clean(following.text))
            if following is not None and (
                parse_frame(following, call_site_only=call_site_only) is not None
                or _PARAM_LINE.match(following.text)
            ):
                continue
        cursor.push_back(line)
        break
    return frames, last


_MAX_WRAPS = 2  # continuation lines a console hard-wrapped a frame into (a 200-column frame at 80)


def _unwrapped(
    frame: StackFrame, line: Line, cursor: LineCursor, clean: Callable[[str], str] | None
) -> tuple[StackFrame, Line]:
    """A frame without a call site whose line a narrow console or a forum hard-wrapped: join the following
    lines (which are no frames themselves) while that gives the frame its call site. Returns the frame and
    the last line it took (nothing is taken when no call site comes of it)."""
    taken: list[Line] = []
    joined = line.text
    for _ in range(_MAX_WRAPS):
        following = cursor.next()
        if following is None:
            break
        taken.append(following)
        text = clean(following.text) if clean is not None else following.text
        if not text.strip() or parse_frame(Line(following.number, text)) is not None:
            break
        joined += text
        candidate = parse_frame(Line(line.number, joined))
        if candidate is not None and (candidate.module is not None or candidate.address is not None):
            return replace(candidate, text=joined), Line(following.number, joined)
    for following in reversed(taken):
        cursor.push_back(following)
    return frame, line


def _unquote(text: str) -> str:
    """A listing line without the ``> `` quote markers of a forum or mail copy."""
    return _QUOTE.sub("", text) if text.startswith((">", " >", "  >")) else text


def _style(command: str | None, header: re.Match[str] | None, frames: list[StackFrame]) -> str:
    if command:
        letters = command[1:]
        for style in ("kP", "kf", "kv", "kb", "kc", "kn"):
            if style[1] in letters:
                return style
        if header is None or not header["x86"]:
            return "k"
    if header is not None:
        if header["x86"]:
            return "x86"
        if header["memory"]:
            return "kf"
        if header["kc"]:
            return "kc"
        if "Args to Child" in header.string:
            return "kb"
    return "kn" if frames and frames[0].index is not None else "k"


_BUGCHECK_FUNCTIONS = frozenset({"KeBugCheckEx", "KeBugCheck2", "KeBugCheck"})
_KERNEL_MODULES = frozenset({"nt", "ntoskrnl", "ntkrnlmp", "ntkrnlpa", "ntkrpamp"})


def _plausible_code(code: int) -> bool:
    """A value that can be a bug check code (not a stale register in the frame's home space)."""
    low = code & 0xFFFF
    return (
        0 < code <= 0x1FF
        or (code >> 16 == 0x1000 and 0 < low <= 0x1FF)
        or (code >> 16 == 0xC000 and low <= 0x2FF)
        or code == 0xDEADDEAD
    )


def bugcheck_from_frames(frames: tuple[StackFrame, ...], path: str, first_line: int) -> BugCheckRecord | None:
    """The bug check a ``nt!KeBugCheckEx``/``KeBugCheck2`` frame's argument columns show: the first column
    is the code, the next ones the first parameters (x64 ``kb`` shows four home slots: code and P1..P3;
    x86 three stack words: code, P1, P2). A frame without argument columns shows no bug check. The record's
    span runs from the listing's first line (records come in input order) to the frame."""
    for frame in frames:
        if frame.function not in _BUGCHECK_FUNCTIONS or (frame.module or "").lower() not in _KERNEL_MODULES:
            continue
        if len(frame.args) < 2 or not _plausible_code(frame.args[0]):
            return None
        columns = frame.text.split(":")[1].split() if ":" in frame.text else []
        widths = {len(word.replace("`", "")) for word in columns}
        bits = 64 if widths == {16} else 32 if widths == {8} else None
        span = Span(path, first_line, frame.line)
        return BugCheckRecord(span, "kebugcheck-frame", frame.args[0], frame.args[1:], pointer_bits=bits)
    return None


class StackParser:
    """A ``k``-family listing (from its prompt or header line) or a free-standing ``STACK_TEXT:``."""

    name = "stack"
    trigger = (
        r"^[\s#>]*Memory\s+Child-SP|^[\s#>]*Child-SP\s+RetAddr|^[\s#>]*ChildEBP\s+RetAddr"
        r"|^[\s#>]*Call Site\s*$|^[\s#>]*RetAddr\s+:\s+Args to Child"
        r"|^[\s>*]*[0-9: ]*kd> k[a-zA-Z]*(?:\s|$)|^[\s>*]*STACK_TEXT:"
    )

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        mention = mention_before(cursor)
        if mention is not None:
            yield mention
        command: str | None = None
        header: re.Match[str] | None = None
        style_override: str | None = None
        prompt = _PROMPT.search(first.text)
        if "STACK_TEXT:" in first.text:
            style_override = "stack_text"
        elif prompt:
            command = prompt["command"]
            following = cursor.peek()
            if following is not None:
                header = _HEADER.match(following.text)
                if header is not None:
                    cursor.next()
        else:
            header = _HEADER.match(first.text)
        call_site_only = bool(header is not None and header["kc"]) or bool(command and "c" in command[1:])
        frames, last = read_frames(cursor, call_site_only=call_site_only, clean=_unquote)
        if not frames or last is None:
            return
        style = style_override or _style(command, header, frames)
        bugcheck = bugcheck_from_frames(tuple(frames), cursor.path, first.number)
        if bugcheck is not None:  # first, so that the crash it opens takes the stack
            yield bugcheck
        yield StackRecord(Span(cursor.path, first.number, last), style, tuple(frames))


PARSER = StackParser()
