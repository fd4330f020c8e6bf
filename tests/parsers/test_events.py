"""CodeIntegrity / DeviceGuard events from wevtutil text, Format-List, XML and Event Viewer CSV exports."""

from __future__ import annotations

from parsers.events import PARSER
from parsers.records import Diagnostic, EventRecord, Span
from tests.parsers.p2_support import of_type, run, sample

V = r"\Device\HarddiskVolume3"
LEGACY = V + r"\Windows\System32\drivers\legacyfw.sys"
OLDNIC = V + r"\Windows\System32\drivers\oldnic.sys"
DEMO = V + r"\Windows\System32\drivers\hvcidemo.sys"
SVCHOST = V + r"\Windows\System32\svchost.exe"
STATUS = 0xC0000428


def _events(text: str) -> list[EventRecord]:
    records, _ = run(PARSER, text)
    return of_type(records, EventRecord)


def _fields(event: EventRecord) -> tuple[object, ...]:
    return (event.provider, event.event_id, event.module, event.process, event.status, event.failure_bitmap)


def test_wevtutil_text_every_codeintegrity_event() -> None:
    records, untouched = run(PARSER, sample("codeintegrity-events.txt"), "ci.txt")
    events = of_type(records, EventRecord)
    assert len(records) == len(events) == 18
    assert [e.event_id for e in events] == [
        3001,
        3004,
        3089,
        3072,
        3073,
        3087,
        3087,
        3074,
        3033,
        3034,
        3063,
        3064,
        3076,
        3077,
        3082,
        3083,
        3111,
        7000,
    ]
    first = events[0]
    assert first.span == Span("ci.txt", 2, 15)
    assert first.timestamp == "2026-11-23T17:05:41.204"
    assert first.module == V + r"\Windows\System32\drivers\unsignedtool.sys"
    assert first.message.startswith("Code Integrity determined an unsigned kernel module ")
    ci = "Microsoft-Windows-CodeIntegrity"
    by_index = {i: _fields(e) for i, e in enumerate(events)}
    assert by_index[1] == (ci, 3004, V + r"\Windows\System32\drivers\tampered.sys", None, None, None)
    assert by_index[2] == (ci, 3089, None, None, None, None)
    assert by_index[3] == (ci, 3072, OLDNIC, None, None, None)
    assert by_index[4] == (ci, 3073, LEGACY, None, None, None)
    assert by_index[5] == (ci, 3087, OLDNIC, None, STATUS, None)  # v0: kernel module ... Status
    assert by_index[6] == (ci, 3087, LEGACY, SVCHOST, STATUS, 0x10)  # v1: process, Failure bitmap, Status
    assert by_index[7] == (ci, 3074, None, None, STATUS, None)
    assert by_index[8] == (
        ci,
        3033,
        V + r"\Program Files (x86)\Contoso\Updater\hook64.dll",
        V + r"\Program Files (x86)\Contoso\Updater\updater.exe",
        None,
        None,
    )
    assert by_index[9][2] == V + r"\Program Files\Contoso\ShellExt\ctxmenu.dll"
    assert by_index[10][2:4] == (
        V + r"\Program Files\Contoso\Auth\ctxauth.dll",
        V + r"\Windows\System32\lsass.exe",
    )
    assert by_index[11][2] == V + r"\Program Files\Contoso\Net\ctxnet.dll"
    assert by_index[12] == (ci, 3076, LEGACY, V + r"\Windows\System32\services.exe", None, None)
    assert by_index[13] == (ci, 3077, OLDNIC, V + r"\Windows\System32\services.exe", None, None)
    assert by_index[14] == by_index[15][:1] + (3082,) + by_index[15][2:]
    assert by_index[15] == (ci, 3083, V + r"\Windows\System32\drivers\testsigned.sys", None, None, None)
    assert by_index[16] == (ci, 3111, DEMO, SVCHOST, None, None)
    assert by_index[17] == ("Microsoft-Windows-DeviceGuard", 7000, None, None, 0, None)
    assert {line.text for line in untouched} <= {
        "",
        r"PS C:\> ",
        r"PS C:\> wevtutil qe "
        r"Microsoft-Windows-CodeIntegrity/Operational /f:text /rd:false",
        r"PS C:\> wevtutil qe Microsoft-Windows-DeviceGuard/Operational "
        r"/f:text /c:1",
    }


def test_format_list_default_and_star_views() -> None:
    records, _ = run(PARSER, sample("codeintegrity-events-formatlist.txt"), "fl.txt")
    events = of_type(records, EventRecord)
    assert len(records) == 5
    assert [(e.event_id, e.span.first_line, e.span.last_line) for e in events] == [
        (3111, 4, 9),
        (3087, 11, 16),
        (3073, 18, 23),
        (3072, 25, 30),
        (3087, 37, 66),
    ]
    assert _fields(events[0]) == ("Microsoft-Windows-CodeIntegrity", 3111, DEMO, SVCHOST, None, None)
    assert _fields(events[1])[2:] == (LEGACY, SVCHOST, STATUS, 0x10)
    assert events[1].message == (
        f"Code Integrity determined that a process ({SVCHOST}) attempted to load {LEGACY} that is not "
        "compatible with hypervisor enforcement. Failure bitmap 0x10. Status 0xc0000428."
    )
    assert events[2].module == LEGACY and events[3].module == OLDNIC
    assert events[1].timestamp == "11/23/2026 5:05:42 PM"
    assert _fields(events[4]) == ("Microsoft-Windows-CodeIntegrity", 3087, OLDNIC, None, STATUS, None)


def test_format_list_of_something_else_is_left_alone() -> None:
    text = "Message      : hello\nName         : x\n\nnext"
    records, untouched = run(PARSER, text)
    assert records == []
    assert [line.number for line in untouched] == [2, 3, 4]


def test_xml_one_per_line_rendered_pretty_and_saved() -> None:
    records, untouched = run(PARSER, sample("codeintegrity-events.xml"), "ci.xml")
    events = of_type(records, EventRecord)
    assert len(records) == len(events) == 7
    assert [(e.event_id, e.span.first_line, e.span.last_line) for e in events] == [
        (3072, 2, 2),
        (3073, 3, 3),
        (3087, 4, 4),
        (3111, 6, 6),
        (3087, 10, 32),
        (3074, 35, 35),
        (3089, 35, 35),
    ]
    ci = "Microsoft-Windows-CodeIntegrity"
    assert _fields(events[0]) == (ci, 3072, OLDNIC, None, None, None)
    assert events[0].message == f"FileNameLength: {len(OLDNIC)}; FileNameBuffer: {OLDNIC}"
    assert events[0].timestamp == "2026-11-23T16:05:42.0104417Z"
    assert _fields(events[1]) == (ci, 3073, LEGACY, None, None, None)
    assert _fields(events[2]) == (ci, 3087, LEGACY, SVCHOST, STATUS, 0x10)
    assert _fields(events[3]) == (ci, 3111, DEMO, SVCHOST, STATUS, None)  # Status exported as -1073740760
    assert events[3].message.startswith("Code Integrity determined that a process (")
    assert _fields(events[4]) == (ci, 3087, OLDNIC, None, STATUS, None)
    assert _fields(events[5]) == (ci, 3074, None, None, STATUS, None)
    assert "PublisherName: Contoso Labs & Partners" in events[6].message
    assert [line.number for line in untouched if line.text.startswith("PS")] == [1, 5, 36]


def test_truncated_xml_event_is_salvaged_with_a_diagnostic() -> None:
    text = (
        "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
        "<Provider Name='Microsoft-Windows-CodeIntegrity'/><EventID>3072</EventID>\n"
        "<TimeCreated SystemTime='2026-11-23T16:05:42Z'/></System><EventData>"
        f"<Data Name='FileNameBuffer'>{OLDNIC}</Data>\n"
    )
    records, _ = run(PARSER, text)
    diagnostic, event = records
    assert diagnostic == Diagnostic(Span("t.log", 1, 2), "events: truncated XML event")
    assert isinstance(event, EventRecord)
    assert _fields(event) == ("Microsoft-Windows-CodeIntegrity", 3072, OLDNIC, None, None, None)
    assert event.timestamp == "2026-11-23T16:05:42Z"


def test_malformed_xml_without_event_id() -> None:
    records, _ = run(PARSER, "<Event xmlns='x'><System><Provider Name='P'/></Syst></Event>\n")
    assert records == [
        Diagnostic(Span("t.log", 1, 1), "events: malformed XML event; no EventID could be read")
    ]


def test_xml_with_entity_declarations_is_refused() -> None:
    text = (
        "<Event xmlns='x'><!DOCTYPE lol [<!ENTITY a \"aaaa\">]><System><EventID>1</EventID></System>"
        "</Event>\n"
    )
    records, _ = run(PARSER, text)
    assert records == [
        Diagnostic(
            Span("t.log", 1, 1), "events: XML event with a DTD or entity declaration; not parsed", "error"
        )
    ]


def test_unterminated_xml_event_is_bounded() -> None:
    text = "<Event xmlns='x'>\n" + "<Data>x</Data>\n" * 6000
    records, untouched = run(PARSER, text)
    assert records == [
        Diagnostic(Span("t.log", 1, 5001), "events: XML event larger than the size limit; skipped")
    ]
    assert untouched[0].number == 5002


def test_event_viewer_csv_with_multiline_message() -> None:
    records, untouched = run(PARSER, sample("codeintegrity-events.csv"), "ci.csv")
    events = of_type(records, EventRecord)
    assert len(records) == len(events) == 7
    assert [(e.event_id, e.span.first_line, e.span.last_line) for e in events] == [
        (3087, 2, 2),
        (3087, 3, 3),
        (3073, 4, 4),
        (3072, 5, 5),
        (3111, 6, 6),
        (7001, 7, 9),
        (3089, 10, 10),
    ]
    assert _fields(events[0]) == ("Microsoft-Windows-CodeIntegrity", 3087, LEGACY, SVCHOST, STATUS, 0x10)
    assert events[0].timestamp == "11/23/2026 5:05:42 PM"
    assert _fields(events[1])[2:] == (OLDNIC, None, STATUS, None)
    assert _fields(events[4])[2:4] == (DEMO, SVCHOST)
    guard = events[5]
    assert guard.provider == "Microsoft-Windows-DeviceGuard" and guard.status == 0xC00000BB
    assert guard.message == (
        "Device Guard failed to process the Group Policy to enable Virtualization Based "
        "Security (Status = 0xc00000bb): \nThe request is not supported.\n"
    )
    assert untouched == []


def test_csv_with_unterminated_quote() -> None:
    text = 'Level,Date and Time,Source,Event ID,Task Category\nError,d,S,3072,(18),"open message\nmore'
    records, _ = run(PARSER, text)
    assert records == [Diagnostic(Span("t.log", 2, 3), "events: CSV row with an unterminated quoted message")]


def test_csv_stops_at_a_line_that_is_not_an_event_row() -> None:
    text = 'Level,Date and Time,Source,Event ID,Task Category\nError,d,S,3072,(18),"m"\nkd> lm\n'
    records, untouched = run(PARSER, text)
    assert [e.event_id for e in of_type(records, EventRecord)] == [3072]
    assert [line.text for line in untouched] == ["kd> lm"]


def test_wevtutil_event_without_id() -> None:
    records, _ = run(PARSER, "Event[0]:\n  Log Name: X\n  Event ID: n/a\n")
    assert records == [Diagnostic(Span("t.log", 1, 3), "events: wevtutil event without a readable Event ID")]



def test_event_viewer_copied_details_use_the_xml_data_and_do_not_double_count() -> None:
    records, untouched = run(PARSER, sample("codeintegrity-event-copied.txt"), "copy.txt")
    first, second = records
    assert isinstance(first, EventRecord) and isinstance(second, EventRecord)
    assert first.span == Span("copy.txt", 3, 40)
    assert _fields(first) == ("Microsoft-Windows-CodeIntegrity", 3087, LEGACY, SVCHOST, STATUS, 0x10)
    assert first.timestamp == "11/23/2026 5:05:42 PM"
    assert first.message.endswith("Failure bitmap 0x10. Status 0xc0000428.")
    assert second.span == Span("copy.txt", 44, 54)
    assert _fields(second) == ("Microsoft-Windows-CodeIntegrity", 3073, LEGACY, None, None, None)
    assert [line.number for line in untouched] == [1, 2, 41, 42, 43, 55, 56]


def test_copied_details_with_broken_xml_fall_back_to_the_text() -> None:
    text = (
        "Log Name:      X\nSource:        Microsoft-Windows-CodeIntegrity\nEvent ID:      3072\n"
        f"Description:\nCode Integrity determined that the module {OLDNIC} is not compatible with hypervisor "
        "enforcement due to it having non-page aligned sections.\n"
        "Event Xml:\n<Event xmlns='x'><System>\n</Event>\n"
    )
    records, _ = run(PARSER, text)
    diagnostic, event = records
    assert diagnostic == Diagnostic(
        Span("t.log", 1, 8), "events: the copied event's XML is not well-formed; read from its text only"
    )
    assert isinstance(event, EventRecord)
    assert _fields(event) == ("Microsoft-Windows-CodeIntegrity", 3072, OLDNIC, None, None, None)


def test_get_winevent_table_says_that_messages_were_cut() -> None:
    records, untouched = run(PARSER, sample("codeintegrity-events-table.txt"), "tbl.txt")
    events = of_type(records, EventRecord)
    assert [(e.event_id, e.span.first_line, e.timestamp) for e in events] == [
        (3111, 8, "11/23/2026 5:09:51 PM"),
        (3089, 9, "11/23/2026 5:05:42 PM"),
        (3087, 10, "11/23/2026 5:05:42 PM"),
        (3073, 11, "11/23/2026 5:05:42 PM"),
        (3072, 12, "11/23/2026 5:05:42 PM"),
    ]
    assert {e.provider for e in events} == {"Microsoft-Windows-CodeIntegrity"}
    # a cut path is not a module: nothing is guessed from "...\System32\drivers..."
    assert [e.module for e in events] == [None] * 5
    assert events[1].message == "Signature information for another event. Match using the Correlation Id."
    assert records[-1] == Diagnostic(
        Span("tbl.txt", 4, 12),
        "events: 4 message(s) cut short by PowerShell's table view; "
        "Format-List or wevtutil shows them in full",
        "info",
    )
    assert [line.number for line in untouched] == [1, 2, 3, 13, 14, 15]


def test_table_group_header_without_a_table_is_left_alone() -> None:
    records, untouched = run(PARSER, "   ProviderName: Something\n\nName  Value\n")
    assert records == []
    assert [line.number for line in untouched] == [2, 3]


def test_csv_message_without_quotes_keeps_its_commas() -> None:
    text = "Level,Date and Time,Source,Event ID,Task Category\nError,d,S,3074,(18),Status 0x1, more, text\n"
    (event,) = _events(text)
    assert event.message == "Status 0x1, more, text" and event.status == 1
