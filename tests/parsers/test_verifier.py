"""!verifier (modern and Windows 7), verifier /query, lone CI counter blocks -> VerifierStatusRecord."""

from __future__ import annotations

from parsers.records import CounterSet, Diagnostic, Span, VerifierStatusRecord
from parsers.verifier import PARSER
from tests.parsers.p2_support import of_type, run, sample

LABELS = (
    "Execute Pool Type Count",
    "Execute Page Protection Count",
    "Execute Page Mapping Count",
    "Execute-Write Section Count",
    "Section Alignment Failures",
    "Unsupported Relocs Count",
    "IAT in Executable Section Count",
)


def _status(text: str) -> list[VerifierStatusRecord]:
    records, _ = run(PARSER, text)
    return of_type(records, VerifierStatusRecord)


def test_modern_layout_flags_drivers_and_per_driver_counters() -> None:
    records, untouched = run(PARSER, sample("verifier-modern-ci-counters.txt"), "v.txt")
    (status,) = records
    assert isinstance(status, VerifierStatusRecord)
    assert status.span == Span("v.txt", 7, 109)
    assert status.source == "!verifier"
    assert status.flags == 0x021209BB
    assert status.enabled_flags == (
        (0x0, "Automatic Checks"),
        (0x1, "Special pool"),
        (0x2, "Force IRQL checking"),
        (0x8, "Pool tracking"),
        (0x10, "I/O verification"),
        (0x20, "Deadlock detection"),
        (0x80, "DMA checking"),
        (0x100, "Security checks"),
        (0x800, "Miscellaneous checks"),
        (0x20000, "DDI compliance checking"),
        (0x02000000, "Code integrity checks"),
        (0x00100000, "Unused or reserved flag"),
    )
    assert status.drivers == ("hvcidemo.sys", "legacyfw.sys")
    assert status.counter_sets == (
        CounterSet(None, tuple(zip(LABELS, (3, 1, 2, 1, 0, 0, 1), strict=True)), 60),
        CounterSet("hvcidemo.sys", tuple(zip(LABELS, (3, 1, 2, 0, 0, 0, 0), strict=True)), 83),
        CounterSet("legacyfw.sys", tuple(zip(LABELS, (0, 0, 0, 1, 0, 2, 1), strict=True)), 103),
    )
    assert [line.text for line in untouched][-2:] == ["", "0: kd> g"]


def test_windows7_layout_pairs_option_names_with_level_bits() -> None:
    (status,) = _status(sample("verifier-win7.txt"))
    assert status.source == "!verifier"
    assert status.flags == 0x9BB
    assert status.enabled_flags == (
        (0x1, "Special pool"),
        (0x2, "Special irql"),
        (0x8, "All pool allocations checked on unload"),
        (0x10, "Io subsystem checking enabled"),
        (0x20, "Deadlock detection enabled"),
        (0x80, "DMA checking enabled"),
        (0x100, "Security checks enabled"),
        (0x800, "Miscellaneous checks enabled"),
    )
    assert status.drivers == ("hvcidemo.sys", "legacyfw.sys")
    assert status.counter_sets == ()
    assert status.span.first_line == 5 and status.span.last_line == 39


def test_windows7_option_count_mismatch_is_reported_not_guessed() -> None:
    text = "Verify Level 3 ... enabled options are:\n\tSpecial pool\n\nkd> "
    records, _ = run(PARSER, text)
    diagnostic, status = records
    assert isinstance(diagnostic, Diagnostic) and diagnostic.severity == "info"
    assert (
        "1 enabled option names for 2 set bits" in diagnostic.message and "Special pool" in diagnostic.message
    )
    assert isinstance(status, VerifierStatusRecord) and status.flags == 3 and status.enabled_flags == ()


def test_verifier_query_modules_and_lowercase_counters() -> None:
    first, second = _status(sample("verifier-query.txt"))
    assert first.source == "verifier-query"
    assert first.flags == 0x02000000
    assert first.drivers == ("hvcidemo.sys", "legacyfw.sys")
    lower = tuple(label.lower() for label in LABELS)
    assert first.counter_sets == (
        CounterSet("hvcidemo.sys", tuple(zip(lower, (3, 1, 2, 0, 0, 0, 0), strict=True)), 32),
        CounterSet("legacyfw.sys", tuple(zip(lower, (0, 0, 0, 1, 9, 0, 1), strict=True)), 50),
    )
    assert first.span.first_line == 7 and first.span.last_line == 56
    assert second == VerifierStatusRecord(Span("t.log", 62, 62), "verifier-query")


def test_lone_counter_block_from_the_readiness_documentation() -> None:
    text = "".join(
        f"        {label}:{' ' * (40 - len(label))}{value}\n"
        for label, value in zip(LABELS, (3, 0, 0, 0, 0, 0, 0), strict=True)
    )
    (status,) = _status("noise\n" + text + "kd> ")
    assert status.source == "!verifier"
    assert status.span == Span("t.log", 2, 8)
    assert status.counter_sets == (
        CounterSet(None, tuple(zip(LABELS, (3, 0, 0, 0, 0, 0, 0), strict=True)), 2),
    )


def test_hex_counter_values_and_a_repeated_label_start_a_new_set() -> None:
    text = "Execute Pool Type Count: 0x10\nExecute Page Mapping Count: 2\nExecute Pool Type Count: 1\n"
    (status,) = _status(text)
    assert status.counter_sets == (
        CounterSet(None, (("Execute Pool Type Count", 16), ("Execute Page Mapping Count", 2)), 1),
        CounterSet(None, (("Execute Pool Type Count", 1),), 3),
    )


def test_truncated_modern_block() -> None:
    text = "Verify Flags Level 0x02000000\n\n  STANDARD FLAGS:\n    [X] (0x0000"
    (status,) = _status(text)
    assert status.flags == 0x02000000 and status.enabled_flags == ()
    assert status.span.last_line == 4


def test_query_level_alone_with_garbage_after() -> None:
    records, untouched = run(PARSER, "Level: 02000000\n\x00\x7f\ufffdgarbage\n")
    assert records == [VerifierStatusRecord(Span("t.log", 1, 1), "verifier-query", flags=0x02000000)]
    assert [line.number for line in untouched] == [2]


def test_trigger_without_content_is_a_diagnostic() -> None:
    records, _ = run(PARSER, "Code Integrity Statistics:\nkd> ")
    assert records == [
        Diagnostic(Span("t.log", 1, 1), "verifier: status block without flags, drivers or counters")
    ]
