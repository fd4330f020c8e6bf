"""The paste normaliser: the same log quoted, bulleted, escaped, HTML-wrapped, surrounded by prose or with
other line ends gives exactly the findings of the clean log (metamorphic properties over the samples), and
every span still points at the lines of the text as pasted."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hvci.details import CrashDetails
from hvci.logs.pipeline import analyze_text
from parsers import paste
from parsers.paste import clean_line, join_wrapped, normalise_chunk
from parsers.records import AnalyzeRecord, VerifierBannerRecord
from parsers.stream import parse_text

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "logs"
#: debugger-output samples a user would paste into a forum (event exports and tables are not pasted
#: through markdown quoting in practice, and their columns are the point)
PASTED = sorted(
    p.name
    for p in SAMPLES.iterdir()
    if p.name.startswith(("analyze-", "session-", "banner-", "stack-", "verifier-", "lm-", "dh-"))
    and p.suffix in (".txt", ".log")
    and not p.read_bytes().startswith(b"\xff\xfe")  # UTF-16: pasted text is never UTF-16
)


def findings(text: str) -> list[tuple[Any, ...]]:
    """What a user reads in a report, without line numbers (prose in front shifts them)."""
    report = analyze_text(text)
    return sorted(
        tuple(repr(value) for value in (
            i.kind,
            i.category,
            i.hvci_related,
            i.bugcheck.code if i.bugcheck else None,
            i.bugcheck.args if i.bugcheck else None,
            i.caller.address if i.caller else None,
            i.caller.module if i.caller else None,
            i.driver,
            i.count,
        ))
        for i in report.incidents
    )


def each_line(change: Callable[[str], str]) -> Callable[[str], str]:
    return lambda text: "\n".join(change(line) for line in text.split("\n"))


def escaped(line: str) -> str:
    """How a markdown page spells debugger output outside a code block."""
    for char in "\\*_#[]`":
        line = line.replace(char, "\\" + char) if char != "\\" else line
    return line


TRANSFORMS: dict[str, Callable[[str], str]] = {
    "quoted": each_line(lambda line: "> " + line),
    "nested-quote": each_line(lambda line: "> > " + line),
    "indented": each_line(lambda line: "    " + line if line.strip() else line),  # a markdown code block
    "bulleted": each_line(lambda line: "- " + line if line.strip() else line),
    "numbered": lambda text: "\n".join(
        f"{n}. {line}" if line.strip() else line for n, line in enumerate(text.split("\n"), 1)
    ),
    "escaped": each_line(escaped),
    "html": lambda text: "<pre>" + html.escape(text, quote=False).replace("\n", "<br>\n") + "</pre>",
    "html-entities-only": lambda text: html.escape(text),
    "fenced-with-prose": lambda text: (
        "Hi all, I get this on boot with memory integrity on:\n\n```text\n" + text + "\n```\n\nAny idea?\n"
    ),
    "liquid": lambda text: "Some prose.\n{% highlight text %}\n" + text + "\n{% endhighlight %}\nMore.\n",
    "crlf": lambda text: text.replace("\n", "\r\n"),
    "cr": lambda text: text.replace("\n", "\r"),
    "nbsp": lambda text: text.replace(" ", "\u00a0"),
    "inline-backticks": each_line(lambda line: f"`{line}`" if line.strip() else line),
    "smart-quotes": lambda text: text.replace('"', "\u201c"),
}


@pytest.fixture(scope="module")
def clean_findings() -> dict[str, list[tuple[Any, ...]]]:
    return {name: findings((SAMPLES / name).read_text("utf-8")) for name in PASTED}


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_every_sample_pasted_gives_the_clean_findings(
    transform: str, clean_findings: dict[str, list[tuple[Any, ...]]]
) -> None:
    wrong = []
    for name in PASTED:
        text = (SAMPLES / name).read_text("utf-8")
        if findings(TRANSFORMS[transform](text)) != clean_findings[name]:
            wrong.append(name)
    assert wrong == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sample=st.sampled_from(PASTED),
    layers=st.lists(st.sampled_from(["quoted", "bulleted", "escaped", "crlf", "nbsp", "inline-backticks"]),
                    min_size=1, max_size=3, unique=True),
)
def test_layers_of_mangling_together_give_the_clean_findings(sample: str, layers: list[str]) -> None:
    text = (SAMPLES / sample).read_text("utf-8")
    pasted = text
    for layer in sorted(layers, key=lambda name: name == "crlf"):  # line ends last, like a browser would
        pasted = TRANSFORMS[layer](pasted)
    assert findings(pasted) == findings(text)


# The verifier banner as Microsoft's memory-integrity documentation prints it: markdown source, every
# asterisk escaped (``\*``), outside a code block.
DOC_BANNER = (
    "Driver Verifier: Enabled for DvCi.sys, flags 0x2000000, build 17134, key o4Dbg8OVJqaBYlqWQ2QvRH\n"
    "\n"
    "\\*\\*\\*\\*\\*\\*\\*\\*\\*\\*\\* Verifier Detected a Code Integrity Issue "
    "\\*\\*\\*\\*\\*\\*\\*\\*\\*\\*\\*\\*\n"
    "\\*\\*\n"
    "\\*\\* The caller 0xFFFFF8094B9852F0 specified an executable page protection 0x40.\n"
    "\\*\\*\n"
    + "\\*" * 65
    + "\n"
)


def test_the_documentation_banner_is_read() -> None:
    records, _ = parse_text(DOC_BANNER)
    (banner,) = [r for r in records if isinstance(r, VerifierBannerRecord)]
    assert (banner.issue, banner.caller, banner.value) == ("page-protection", 0xFFFFF8094B9852F0, 0x40)
    assert (banner.span.first_line, banner.span.last_line) == (3, 7)


def test_flattened_fields_are_split_and_keep_their_line() -> None:
    text = (
        "intro\n"
        "BUGCHECK_CODE: 50 BUGCHECK_P1: fffff802180be344 BUGCHECK_P2: 10 BUGCHECK_P3: fffff802180be344 "
        "BUGCHECK_P4: 2\n\n"
    )
    records, info = parse_text(text)
    (report,) = [r for r in records if isinstance(r, AnalyzeRecord)]
    assert report.bugcheck is not None
    address = 0xFFFFF802180BE344
    assert (report.bugcheck.code, report.bugcheck.args) == (0x50, (address, 0x10, address, 2))
    assert (report.span.first_line, report.span.last_line) == (2, 2)
    assert info.lines == 3


def test_a_value_wrapped_by_a_forum_is_joined_and_spans_stay_on_the_pasted_lines() -> None:
    text = (
        "DRIVER_VERIFIER_DETECTED_VIOLATION (c4)\n"
        "Arguments:\n"
        "Arg1: 0000000000002000, Code Integrity Issue: The caller specified an executable pool type.\n"
        "Arg2: fffff801e7121c5\n"
        "d, The address in the driver's code where the error was detected.\n"
        "Arg3: 0000000000000000, Pool Type.\n"
        "Arg4: 000000004d4d4c43, Pool Tag (if provided).\n"
        "after\n"
    )
    records, info = parse_text(text)
    (report,) = [r for r in records if isinstance(r, AnalyzeRecord)]
    assert report.bugcheck is not None and report.bugcheck.args[1] == 0xFFFFF801E7121C5D
    unwrapped, _ = parse_text(text.replace("c5\nd, The", "c5d, The"))
    (clean,) = [r for r in unwrapped if isinstance(r, AnalyzeRecord)]
    assert clean.bugcheck is not None and clean.bugcheck.args == report.bugcheck.args
    assert (report.span.first_line, report.span.last_line) == (1, clean.span.last_line + 1)
    assert info.lines == 8


@pytest.mark.parametrize(
    ("pasted", "clean"),
    [
        ("> > **BUGCHECK\\_CODE:**  c4", ["BUGCHECK_CODE:  c4"]),
        ("1. Arg1: 2000", ["Arg1: 2000"]),
        ("\u2022 Arg1: 2000", ["Arg1: 2000"]),
        ("{% highlight ruby %}", [""]),
        ("```text", [""]),
        ("&gt; nt!KeBugCheckEx&lt;br&gt;", ["nt!KeBugCheckEx<br>"]),
        ("a<br>b<BR/>c", ["a", "b", "c"]),
        ("With faulting ip: `ScpVBus+b174`", ["With faulting ip: ScpVBus+b174"]),
        ("fffff807`4b9852f0 nt!Foo", ["fffff807`4b9852f0 nt!Foo"]),
        ("*              Bugcheck Analysis    *", ["*              Bugcheck Analysis    *"]),
        ("* Arg1: 2000", ["Arg1: 2000"]),
        ("\uff21\uff52\uff47\uff11\uff1a\u3000\uff12\uff10\uff10\uff10", ["Arg1: 2000"]),
        ("Arg1:\u00a02000\r", ["Arg1: 2000"]),
        ("Arg1: 2000 Arg2: fffff801e7121c5d", ["Arg1: 2000", "Arg2: fffff801e7121c5d"]),
        ("    Arg1: 0000000000002000, pool type", ["    Arg1: 0000000000002000, pool type"]),
        ("  BUGCHECK_P1: 1 BUGCHECK_P2: 2", ["  BUGCHECK_P1: 1", "BUGCHECK_P2: 2"]),
        ("0: kd> !analyze -v 0: kd> lm", ["0: kd> !analyze -v", "0: kd> lm"]),
        ("<Data Name='P'>A &amp; B</Data>", ["<Data Name='P'>A &amp; B</Data>"]),
    ],
)
def test_clean_line(pasted: str, clean: list[str]) -> None:
    assert clean_line(pasted) == clean


def test_clean_text_is_left_alone() -> None:
    text = "\n" + (SAMPLES / "session-pool-type-haxm.log").read_text("utf-8")
    assert normalise_chunk(text.encode()) is None
    assert normalise_chunk(b"\nOpened \\\\.\\pipe\\com_1 C:\\_build\\x.sys\n") is None


def test_markup_inside_lines_is_undone_line_for_line() -> None:
    data = "\nBUGCHECK\\_CODE: c4\nplain\n&lt;pre&gt;x\nnt!Foo\u00a0+0x10\n".encode()
    assert normalise_chunk(data) == "\nBUGCHECK_CODE: c4\nplain\n<pre>x\nnt!Foo +0x10\n"


@pytest.mark.parametrize("innocent", [0, 3, 40])
def test_markup_after_many_innocent_backslashes_and_braces_is_found(innocent: int) -> None:
    """The chunk check hops from one ``\\`` or ``{`` to the next before it searches the rest: markup after a
    few or after many harmless ones (paths, a bug check's argument list) is found either way."""
    noise = "ModLoad: fffff807`4b980000 \\SystemRoot\\System32\\drivers\\x.sys {1, 2}\n" * innocent
    assert normalise_chunk(("\n" + noise).encode()) is None
    data = "\n" + noise + "BUGCHECK\\_CODE: c4\n{% highlight text %}\n"
    assert normalise_chunk(data.encode()) == "\n" + noise + "BUGCHECK_CODE: c4\n\n"


@pytest.mark.parametrize(
    ("text", "following", "joined"),
    [
        ("Arg2: fffff801e7121c5", "d, The address", "Arg2: fffff801e7121c5d, The address"),
        ("BUGCHECK_P1: fffff8021", "80be344", "BUGCHECK_P1: fffff802180be344"),
        ("nt!MiSystemFault+0x1d6f81", "01 ffffd805`4e1c70d0", None),  # an offset, then a frame number
        ("Arg2: fffff801e7121c5d", "0, x", None),  # already whole
        ("x86 dd 8a3b4c5d", "8a3b4c6d 00000000", None),
    ],
)
def test_join_wrapped(text: str, following: str, joined: str | None) -> None:
    assert join_wrapped(text, following) == joined


def test_the_documentation_banner_is_one_execute_page_protection_finding_of_dvci() -> None:
    report = analyze_text(DOC_BANNER)
    (finding,) = [i for i in report.incidents if i.category == "execute-page-protection"]
    assert finding.caller is not None and finding.caller.address == 0xFFFFF8094B9852F0
    assert isinstance(finding.details, CrashDetails) and finding.details.protection is not None
    assert finding.details.protection.value == 0x40
    assert finding.driver == "DvCi.sys"


_PASTE_PIECES = [
    *" \t*>-+`\\&<{}%;#_x0123456789.)aZ\u00a0\u2022\u3000",
    *("&gt;", "&#62;", "\\*", "\\_", "<br>", "</PRE>", "{%", "**", "***", "> ", "- ", "1. ", "* ", "bold"),
]
_PASTE_TEXT = st.lists(st.sampled_from(_PASTE_PIECES), max_size=12).map("".join)


_QUICK_PIECES = [
    *_PASTE_PIECES,
    *("\\SystemRoot", "\\\\", "\\", "0: kd> ", "12) ", "1234. ", "*\t", "~~", "~~~", "\u2013 "),
    *("x **y**", "*"),
]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(_QUICK_PIECES), max_size=12).map("".join))
@example("*  Bugcheck Analysis  *")
@example("  123. x")
@example("** The caller 0xFFFFF802DA2D33E8 specified an executable pool type 0x0 (tag 0x484d454d).")
@example("ModLoad: fffff802`d9e30000 fffff802`d9e81000   \\SystemRoot\\System32\\drivers\\CLFS.SYS")
def test_the_quick_checks_before_each_search_never_skip_a_match(text: str) -> None:
    """clean_line's cheap pre-tests (issue 16) only skip searches that would find nothing."""
    if paste._INLINE.search(text):
        assert paste._may_hold_inline(text)
    if paste._BOLD.search(text):
        assert paste._may_be_bold(text)
    if paste._PEELS.match(text):
        assert paste._may_peel_front(text)
    if any(p.match(text) for p in (paste._QUOTE, paste._BULLET, paste._STAR_BULLET)):
        assert paste._may_peel(text)


_WRAP_PIECES = [*"0123456789abcdefABCDEFgx :=(,\t`", "fffff802", "1234", "12345678", "deadbeefcafe"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_WRAP_PIECES), max_size=14).map("".join))
@example("ab 1234" + " " * 20)  # the value starts at the first of the last 24 characters
@example("ab 1234" + " " * 21)  # ... and one before
def test_may_continue_is_what_the_wrapped_value_search_finds(text: str) -> None:
    """may_continue decides with rstrip what the search of the last 24 characters found (issue 16)."""
    found = paste._WRAPPED_HEAD.search(text, max(0, len(text) - 24)) is not None
    assert paste.may_continue(text) is found


_LINE_PIECES = [
    *_PASTE_PIECES,
    *("\r", "~", "~~~", "```", "`", "fffff802`d7f4a6c4", "--------`--------", "*** ", "****", "-", "--- "),
    *("&amp", "&lt ", "&#65", "\u2013 ", "12) ", "BUGCHECK_CODE: c4", " Arg2: 0", " 0: kd> k", "*\t", " *"),
    *("Arg1: 0", "A_B: x", "9: kd> "),
]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(_LINE_PIECES), max_size=10).map("".join))
@example("** The caller 0xFFFFF802DA2D33E8 specified an executable pool type 0x0 (tag 0x484d454d).")
@example("*                        Bugcheck Analysis                                    *")
@example("- &amp x")  # cleaned as before: the entity without its ';' is unescaped
@example("---------\r")
@example("* **bold** *")
def test_clean_line_passes_on_only_lines_the_former_check_cleaned_to_themselves(text: str) -> None:
    """Property (issue 16): a line clean_line passes on as it is, where the former check (any character
    that may start markup in front, any ``**``) had it cleaned, is one that cleaning left as it was; the
    lines it cleans are cleaned as before."""
    former = bool(paste._FRONT.match(text)) or "**" in text or paste._inside_or_flattened(text)
    assert clean_line(text) == (paste._cleaned(text) if former else [text])


#: the backtick pattern and the loop that found a stray backtick before issue 16 (the spec of _BACKTICK)
_FORMER_BACKTICK = re.compile(r"(?<![0-9a-fA-F-])`|`(?![0-9a-fA-F-])")
_IN_ADDRESS = "0123456789abcdefABCDEF-"


def _former_stray_tick(text: str) -> bool:
    tick = text.find("`")
    while tick >= 0:
        if not (0 < tick < len(text) - 1 and text[tick - 1] in _IN_ADDRESS and text[tick + 1] in _IN_ADDRESS):
            return True
        tick = text.find("`", tick + 1)
    return False


_TICK_PIECES = [*"`-0aFgx :\t", "``", "fffff802`d7f4a6c4", "--------`--------"]


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(_TICK_PIECES), max_size=10).map("".join))
@example("`a")
@example("a`")
@example("a``b")
def test_the_backtick_search_finds_what_the_former_loop_and_pattern_found(text: str) -> None:
    """Property (issue 16): the search that starts at each backtick finds a stray one exactly when the
    former loop did, and removing its matches gives what the former pattern's removal gave."""
    assert (paste._BACKTICK_RE.search(text) is not None) is _former_stray_tick(text)
    assert paste._BACKTICK_RE.sub("", text) == _FORMER_BACKTICK.sub("", text)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(_LINE_PIECES), max_size=10).map("".join))
def test_the_first_character_test_passes_every_line_a_front_or_piece_match_finds(text: str) -> None:
    """Property (issue 16): _FRONT, _PEELS and _STARTS_PIECE are tried only on a line starting with a
    character in their set; none of them matches any other line."""
    if paste._FRONT.match(text) or paste._PEELS.match(text):
        assert text[:1] in paste._FRONT_HEADS
    if paste._STARTS_PIECE.match(text):
        assert text[:1] in paste._PIECE_HEADS
