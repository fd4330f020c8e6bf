"""The dispatcher: prefilter correctness, input order, formats, robustness, stdin and follow mode."""

from __future__ import annotations

import codecs
import io
import re
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers import feed as parsers_feed
from parsers import source, stream
from parsers.base import Line, LineCursor
from parsers.dispatch import dispatcher
from parsers.prefilter import Prefilter, anchors_for
from parsers.records import BugCheckRecord, Diagnostic, Record, Span, VerifierBannerRecord
from parsers.registry import PARSERS
from parsers.stream import iter_records, open_input, parse_text
from tests.conftest import HANG_SECONDS, realworld_files

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "logs"
MINE = sorted(
    p.name for p in SAMPLES.iterdir() if p.name.startswith(("analyze-", "banner-", "stack-", "kd-session"))
)
BUG = "BugCheck C4, {2000, fffff802da2d33e8, 0, 484d454d}"


class _LineParser:
    """A test parser: one record per matching line, no look-ahead."""

    def __init__(self, name: str, trigger: str) -> None:
        self.name = name
        self.trigger = trigger

    def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
        yield Diagnostic(Span(cursor.path, first.number, first.number), f"{self.name}: {first.text}", "info")


def test_samples_exist_for_every_subcode() -> None:
    text = " ".join(MINE)
    for subcode in ("2000", "2001", "2002", "2003", "2004", "2005", "2006"):
        assert f"c4-{subcode}" in text


@pytest.mark.parametrize("name", MINE)
def test_records_come_in_input_order_with_valid_spans(name: str) -> None:
    inp = open_input(SAMPLES / name, name=name)
    records = list(iter_records(inp))
    info = inp.info()
    assert records
    assert info.format in ("kd-log", "analyze")
    starts = [r.span.first_line for r in records]
    assert starts == sorted(starts)
    for record in records:
        assert 1 <= record.span.first_line <= record.span.last_line <= info.lines
        assert record.span.path == name


def test_utf16_session_reads_like_its_utf8_twin() -> None:
    def summary(name: str) -> list[tuple[str, int]]:
        return [
            (type(r).__name__, r.span.last_line - r.span.first_line)
            for r in iter_records(open_input(SAMPLES / name))
        ]

    utf16 = open_input(SAMPLES / "kd-session-utf16le.log")
    list(iter_records(utf16))
    assert utf16.info().encoding == "utf-16-le"
    assert summary("kd-session-utf16le-nobom.log") == summary("analyze-c4-2002-mdl-mapping.txt")
    assert summary("kd-session-utf16le.log") == summary("analyze-c4-2002-mdl-mapping.txt")


def test_info_counts_and_formats() -> None:
    records, info = parse_text("just\nsome text\n", "t")
    assert (records, info.format, info.lines, info.encoding, info.bytes_read) == ([], "text", 2, "utf-8", 15)
    _, info = parse_text((SAMPLES / "analyze-non-hvci-c4-62-leak.txt").read_text("utf-8"), "t")
    assert info.format == "analyze"
    _, info = parse_text((SAMPLES / "banner-only-log-mode.log").read_text("utf-8"), "t")
    assert info.format == "kd-log"


@pytest.mark.parametrize("first", ["readiness", "verifier"])
def test_a_tie_between_kinds_of_block_names_the_input_after_the_kind_seen_first(first: str) -> None:
    """A readiness report quoting verifier counters has as many blocks of each kind; its name came from the
    iteration order of a set of strings, which changes with the hash seed from one run to the next."""
    second = "verifier" if first == "readiness" else "readiness"
    assert stream._format(Counter({first: 2, second: 2})) == first
    assert stream._format(Counter({first: 1, second: 2})) == second


def test_every_trigger_line_is_a_prefilter_candidate() -> None:
    """The prefilter may over-approximate but must never miss a line some trigger matches."""
    lines = []
    for name in sorted(p.name for p in SAMPLES.iterdir()):
        lines.extend((SAMPLES / name).read_text("utf-8", "replace").splitlines())
    lines += [
        "  > ** " + BUG,
        "0: kd> kv 20",
        "\t# Call Site",
        "Verify Level 2000000",
        "xx <Event xmlns='x'>",
    ]
    triggers = [__import__("re").compile(p.trigger, __import__("re").MULTILINE) for p in PARSERS]
    data = "\n" + "\n".join(lines) + "\n"
    scanner = Prefilter(p.trigger for p in PARSERS).scanner(data.encode("utf-8", "replace"))
    candidates = set()
    position = 1
    encoded = data.encode("utf-8", "replace")
    while (start := scanner.next_candidate(position)) >= 0:
        candidates.add(encoded.count(b"\n", 0, start))
        position = encoded.find(b"\n", start) + 1
    for number, text in enumerate(lines, start=1):
        if any(t.search(text) for t in triggers):
            assert number in candidates, text


@pytest.mark.parametrize("kind", [bytes, str])
def test_the_candidate_is_the_trigger_line_not_the_blank_or_box_line_above_it(kind: type) -> None:
    """Junk before an anchor stops at the end of its line: a blank line, or a banner's box line of stars and
    blanks, above a trigger line is not itself a candidate (each one would cost the dispatcher a look)."""
    text = "\nnoise\n\n  \t\n*                 *\n   BUGCHECK_CODE:  c4\n"  # (a sentinel first)
    data = text.encode() if kind is bytes else text
    scanner = Prefilter(p.trigger for p in PARSERS).scanner(data)
    starts = []
    position = 1
    while (start := scanner.next_candidate(position)) >= 0:
        starts.append(start)
        position = data.index("\n" if kind is str else b"\n", start) + 1  # type: ignore[arg-type]
    assert starts == [data.index("   BUGCHECK" if kind is str else b"   BUGCHECK")]  # type: ignore[arg-type]


def test_the_screen_lead_is_the_junk_and_every_white_space_character() -> None:
    """The screen strips junk and white space before a line-start anchor; it finds the white space in the
    blocks where Unicode has it, which must hold all of it."""
    from parsers import dispatch

    every_space = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
    assert set(dispatch._lead()) == set(dispatch.JUNK_CHARS) | set(every_space)


def test_anchor_extraction() -> None:
    assert [a.text for a in anchors_for(r"^[\s>*]*(?:Fatal System Error:|BugCheck\s+)") or ()] == [
        "Fatal System Error:",
        "BugCheck",
    ]
    (star,) = anchors_for(r"^\*{70,}\s*$") or ()
    assert (star.text, star.line_start, star.after_junk) == ("*" * 70, True, False)
    (floating,) = anchors_for(r"(?i)hello\s+world") or ()
    assert (floating.text, floating.line_start, floating.ignore_case) == ("hello", False, True)
    assert anchors_for(r"\d+x") is None


def test_floating_and_unanchored_triggers_still_work() -> None:
    parsers = (_LineParser("floating", r"(?i)needle\s+here"), _LineParser("bare", r"\d{3}x\d"))
    text = "noise\nA NEEDLE  HERE b\nnothing\nzz 123x4\n"
    records = list(iter_records(open_input(None, data=text.encode()), parsers=parsers))
    assert [(r.span.first_line, r.message.split(":")[0]) for r in records if isinstance(r, Diagnostic)] == [
        (2, "floating"),
        (4, "bare"),
    ]


def test_a_raising_parser_costs_only_its_block() -> None:
    class Broken:
        name = "broken"
        trigger = r"^boom"

        def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
            raise ValueError("bad")
            yield  # pragma: no cover

    parsers = (Broken(), *PARSERS)
    inp = open_input(None, data=f"boom\n{BUG}\n".encode())
    records = list(iter_records(inp, parsers=parsers))
    assert isinstance(records[0], Diagnostic) and records[0].severity == "error"
    assert isinstance(records[1], BugCheckRecord)
    assert inp.info().diagnostics == (records[0],)


def test_a_parser_pushing_back_its_first_line_does_not_loop() -> None:
    class Stubborn:
        name = "stubborn"
        trigger = r"^again"

        def parse(self, first: Line, cursor: LineCursor) -> Iterator[Record]:
            cursor.push_back(first)
            return iter(())

    records = list(
        iter_records(open_input(None, data=f"again\n{BUG}\n".encode()), parsers=(Stubborn(), *PARSERS))
    )
    assert [type(r).__name__ for r in records] == ["BugCheckRecord"]


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.iterdir() if p.is_file()))
def test_records_do_not_depend_on_where_chunks_end(monkeypatch: pytest.MonkeyPatch, sample: str) -> None:
    """Blocks across chunk boundaries, and look-behinds from a block that starts a chunk (a bug check's
    header above its ``Arguments:``) into the previous one: every sample reads the same in chunks of 1000
    and 4096 bytes as in one. (A wrapped value is rejoined only within a chunk: tiny chunks of a line or
    two would split such pairs.)"""
    text = (SAMPLES / sample).read_bytes()
    monkeypatch.setattr(source, "CHUNK_SIZE", 4 << 20)
    whole = list(iter_records(open_input(None, data=text)))
    for size in (1000, 4096):
        monkeypatch.setattr(source, "CHUNK_SIZE", size)
        assert list(iter_records(open_input(None, data=text))) == whole, size


def test_stdin_is_read_as_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    data = codecs.BOM_UTF16_LE + f"noise\n{BUG}\n".encode("utf-16-le")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    inp = open_input("-")
    (record,) = iter_records(inp)
    assert (inp.path, inp.info().encoding, record.span) == ("<stdin>", "utf-16-le", Span("<stdin>", 2, 2))


def test_missing_file_raises_oserror(tmp_path: Path) -> None:
    inp = open_input(tmp_path / "missing.log")
    with pytest.raises(OSError):
        list(iter_records(inp))


def test_stop_ends_a_normal_read_early() -> None:
    stop = threading.Event()
    stop.set()
    assert list(iter_records(open_input(None, data=f"{BUG}\n".encode()), stop=stop)) == []


def test_long_line_diagnostics_are_in_the_stream_and_in_info() -> None:
    inp = open_input(None, data=b"x" * (100 << 10) + b"\n" + BUG.encode() + b"\n")
    records = list(iter_records(inp))
    assert [type(r).__name__ for r in records] == ["Diagnostic", "BugCheckRecord"]
    assert inp.info().diagnostics == (records[0],)


class _Polls(threading.Event):
    """The follower's ``stop`` event, which also counts the follower's waits on it: a followed file is read
    to its end, then the reader waits on ``stop`` before it looks again. So a test can wait until everything
    it wrote has been read and parsed (:meth:`read_all`), an event, not a sleep that hopes the reader got
    there; and each piece it writes after that is a separate read, on any machine."""

    def __init__(self) -> None:
        super().__init__()
        self._waits = 0
        self._waited = threading.Condition()

    def wait(self, timeout: float | None = None) -> bool:
        with self._waited:
            self._waits += 1
            self._waited.notify_all()
        return super().wait(timeout)

    def read_all(self) -> None:
        """Return once the follower has read (and parsed) everything written before this call. The next
        wait may come from a look at the file taken before the write; the one after it cannot."""
        with self._waited:
            target = self._waits + 2
            reached = self._waited.wait_for(lambda: self._waits >= target, HANG_SECONDS)
        assert reached, f"the follower did not look at the file again in {HANG_SECONDS:.0f} s: stuck"


def _follow(path: Path, out: list[Record]) -> tuple[_Polls, threading.Thread]:
    stop = _Polls()

    def run() -> None:
        out.extend(iter_records(open_input(path), follow=True, stop=stop))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return stop, thread


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le"])
def test_follow_mode_sees_appended_blocks_until_stopped(
    tmp_path: Path, encoding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source, "POLL_SECONDS", 0.02)
    path = tmp_path / "live.log"
    bom = codecs.BOM_UTF16_LE if encoding == "utf-16-le" else b""
    path.write_bytes(bom + "Opened log file\r\n".encode(encoding))
    out: list[Record] = []
    stop, thread = _follow(path, out)
    banner = (
        "*********** Verifier Detected a Code Integrity Issue ************\r\n**\r\n"
        "** The caller 0xFFFFF802DA2D33E8 specified an executable pool type 0x0.\r\n**\r\n"
        "*****************************************************************\r\n"
    )
    with open(path, "ab") as log:
        for piece in (banner[:30], banner[30:], "noise\r\n", f"{BUG}\r\n", "*** Fatal System Er"):
            log.write(piece.encode(encoding))
            log.flush()
            stop.read_all()  # each piece is read on its own: a record split across reads
    assert len(out) == 2
    assert [type(r).__name__ for r in out] == ["VerifierBannerRecord", "BugCheckRecord"]
    assert isinstance(out[0], VerifierBannerRecord) and out[0].span.first_line == 2
    assert out[1].span.first_line == 8
    with open(path, "ab") as log:  # the partial last line completes later
        log.write("ror: 0x000000c4\r\n                       (0x2000,0x1,0x0,0x0)\r\n".encode(encoding))
    stop.read_all()
    assert len(out) == 3
    assert isinstance(out[2], BugCheckRecord) and out[2].form == "fatal-system-error"
    assert (out[2].span.first_line, out[2].span.last_line, out[2].args) == (9, 10, (0x2000, 1, 0, 0))
    stop.set()
    thread.join(HANG_SECONDS)
    assert not thread.is_alive()


def test_follow_mode_restarts_after_truncation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "POLL_SECONDS", 0.02)
    path = tmp_path / "live.log"
    path.write_bytes(f"a\nb\n{BUG}\n".encode())
    out: list[Record] = []
    stop, thread = _follow(path, out)
    stop.read_all()
    assert len(out) == 1
    path.write_bytes(f"{BUG}\n".encode())  # truncated and rewritten, as a new .logopen does
    stop.read_all()
    stop.set()
    thread.join(HANG_SECONDS)
    kinds = [(type(r).__name__, r.span.first_line) for r in out]
    assert kinds[0] == ("BugCheckRecord", 3)
    assert ("BugCheckRecord", 1) in kinds
    assert any(isinstance(r, Diagnostic) and "from the start" in r.message for r in out)


def test_follow_mode_reopens_a_re_created_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "POLL_SECONDS", 0.02)
    path = tmp_path / "live.log"
    path.write_bytes(f"{BUG}\n".encode())
    out: list[Record] = []
    stop, thread = _follow(path, out)
    stop.read_all()
    assert len(out) == 1
    replacement = tmp_path / "new.log"
    replacement.write_bytes(codecs.BOM_UTF16_LE + f"x\r\ny\r\n{BUG}\r\n".encode("utf-16-le"))
    replacement.replace(path)  # a new file (new inode), in another encoding
    stop.read_all()
    stop.set()
    thread.join(HANG_SECONDS)
    assert [(type(r).__name__, r.span.first_line) for r in out if not isinstance(r, Diagnostic)] == [
        ("BugCheckRecord", 1),
        ("BugCheckRecord", 3),
    ]
    assert any(isinstance(r, Diagnostic) and "re-created" in r.message for r in out)


def test_follow_mode_uses_a_block_at_the_end_of_a_quiet_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ``lm`` the debugger printed last is read once the file is quiet, not when another line arrives."""
    from parsers.records import ModuleListRecord

    monkeypatch.setattr(source, "POLL_SECONDS", 0.02)
    monkeypatch.setattr(parsers_feed, "BLOCK_QUIET_SECONDS", 0)  # quiet: the reader found nothing new
    path = tmp_path / "live.log"
    path.write_bytes(
        b"kd> lm\nstart             end                 module name\n"
        b"fffff807`4b980000 fffff807`4b990000   IntelHaxm   (pdb symbols)\n"
    )
    out: list[Record] = []
    stop, thread = _follow(path, out)
    stop.read_all()  # the file is quiet: nothing else will come
    (listing,) = [r for r in out if isinstance(r, ModuleListRecord)]
    assert [m.name for m in listing.modules] == ["IntelHaxm"]
    stop.set()
    thread.join(HANG_SECONDS)
    assert not thread.is_alive()


def _first_trigger(text: str) -> str | None:
    """The dispatcher's answer the slow way: every trigger, in registry order."""
    for parser in PARSERS:
        if re.compile(parser.trigger, re.MULTILINE).search(text):
            return parser.name
    return None


def _dispatched(text: str) -> str | None:
    parser = dispatcher(PARSERS).parser_for(text)
    return parser.name if parser is not None else None


def test_the_dispatcher_screen_picks_the_parser_every_trigger_would() -> None:
    """The screen only skips triggers that cannot match: over every line of every sample (and the real
    logs when present), with and without paste junk in front, it names the same parser as trying them all."""
    files = sorted(SAMPLES.iterdir()) + list(realworld_files("logs", "*.txt"))
    checked = 0
    for path in files:
        for line in path.read_bytes().decode("utf-8", "replace").splitlines():
            for text in (line, f"> * {line}", f"\u00a0\t12: {line.upper()}"):
                assert _dispatched(text) == _first_trigger(text), (path.name, text)
                checked += 1
    assert checked > 10_000


_PIECES = [*" \t>*#:0123456789-`abcdefABCDEF!_=xX.\u00a0", "kd> ", "Driver Verifier: ", "BugCheck ", "Arg1: "]
_PIECES += ["FAULTING_IP:", "rip=", "*** Fatal System Error", "ExceptionAddress:", "Event[", "ModLoad:"]
_PIECES += ["Log Name:", "STOP: ", "ugcheck was", ".dmp", "Bug Check", "bugcheck", "!analyze -v"]


@given(st.lists(st.sampled_from(_PIECES), max_size=20).map("".join))
@settings(max_examples=300, deadline=None)
def test_the_dispatcher_screen_agrees_on_made_up_lines(text: str) -> None:
    assert _dispatched(text) == _first_trigger(text)
