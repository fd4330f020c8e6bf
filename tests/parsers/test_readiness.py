"""DG Readiness driver-compat reports and hvciscan output -> ReadinessRecord per module."""

from __future__ import annotations

from parsers.readiness import PARSER
from parsers.records import Diagnostic, ReadinessRecord, Span
from tests.parsers.p2_support import of_type, run, sample


def test_dg_readiness_log_step_section() -> None:
    records, untouched = run(PARSER, sample("dg-readiness.log"), "dg.log")
    assert records == [
        ReadinessRecord(
            Span("dg.log", 17, 18), "dg-readiness", "legacyfw.sys", "execute-write section count", 1
        ),
        ReadinessRecord(Span("dg.log", 19, 20), "dg-readiness", "hvcidemo.sys", "execute pool type count", 3),
        ReadinessRecord(
            Span("dg.log", 21, 22), "dg-readiness", "oldnic.sys", "section alignment failures", 9
        ),
        ReadinessRecord(
            Span("dg.log", 25, 25), "dg-readiness", "storport.sys", "Windows Signed", None, False
        ),
        ReadinessRecord(Span("dg.log", 26, 26), "dg-readiness", "ndis.sys", "Windows Signed", None, False),
        ReadinessRecord(Span("dg.log", 28, 28), "dg-readiness", "acpiex.sys", None, None, False),
        ReadinessRecord(Span("dg.log", 29, 29), "dg-readiness", "contosodisk.sys", None, None, False),
    ]
    # the next step's header and the summary are not part of the driver-compat section
    assert untouched[0].number < 12 and 30 in [line.number for line in untouched]
    # "Incompatible Drivers" in the summary is not a verdict line
    assert "Incompatible Drivers" in untouched[-1].text


def test_documentation_layout_without_step_header() -> None:
    text = (
        "noise\nInCompatible HVCI Kernel Driver Modules found\n\nModule: TestDriver1.sys\n"
        "    Reason: section alignment failures:             9\nModule: TestDriver2.sys\n"
        "    Reason: execute pool type count:                3\n\nPS C:\\> exit\n"
    )
    records, untouched = run(PARSER, text)
    assert records == [
        ReadinessRecord(
            Span("t.log", 4, 5), "dg-readiness", "TestDriver1.sys", "section alignment failures", 9
        ),
        ReadinessRecord(Span("t.log", 6, 7), "dg-readiness", "TestDriver2.sys", "execute pool type count", 3),
    ]
    assert [line.number for line in untouched] == [1, 8, 9]


def test_script_casing_and_reason_without_count() -> None:
    text = (
        "Incompatible HVCI Kernel Driver Modules found\nModule: x.sys\n    Reason: signature check failed\n"
    )
    assert of_type(run(PARSER, text)[0], ReadinessRecord) == [
        ReadinessRecord(Span("t.log", 2, 3), "dg-readiness", "x.sys", "signature check failed", None)
    ]


def test_no_incompatible_drivers_is_kept_as_info() -> None:
    records, _ = run(PARSER, "No Incompatible Drivers found\n")
    assert records == [
        Diagnostic(Span("t.log", 1, 1), "DG Readiness tool: no incompatible drivers found", "info")
    ]


def test_truncated_after_module_line() -> None:
    records, _ = run(PARSER, "InCompatible HVCI Kernel Driver Modules found\nModule: cut.sys")
    assert records == [ReadinessRecord(Span("t.log", 2, 2), "dg-readiness", "cut.sys")]


def test_hvciscan_incompatible_drivers_and_passed_run() -> None:
    records, untouched = run(PARSER, sample("hvciscan.txt"), "scan.txt")
    assert records == [
        ReadinessRecord(
            Span("scan.txt", 9, 9),
            "hvciscan",
            "legacyfw.sys",
            r"Incompatible driver: C:\Windows\System32\drivers\legacyfw.sys (oem42.inf)",
        ),
        ReadinessRecord(
            Span("scan.txt", 10, 11),
            "hvciscan",
            "oldnic.sys",
            r"Incompatible driver: C:\Windows\System32\DriverStore\FileRepository"
            r"\oldnic.inf_amd64_5d0c8f0e1b2a3c4d\oldnic.sys Published name: oem17.inf",
        ),
        Diagnostic(Span("scan.txt", 22, 22), "hvciscan: incompatible driver scan passed", "info"),
    ]
    texts = [line.text for line in untouched]
    assert r"C:\Tools>pnputil /delete-driver oem42.inf /uninstall" in texts
    assert texts.count(r"C:\Tools>hvciscan_amd64.exe") == 2


def test_hvciscan_without_verdict() -> None:
    records, _ = run(PARSER, "VbsGetIssues: 0x00000000\nVbsIsRecommended: 0\n")
    assert records == [
        Diagnostic(
            Span("t.log", 1, 2), "hvciscan: output without a driver verdict (scan not finished?)", "info"
        )
    ]


def test_huge_line_ends_the_block_without_stalling() -> None:
    text = "HVCI incompatible driver scan start\n" + "a" * 2_000_000 + ".sys\n"
    records, untouched = run(PARSER, text)
    assert len(untouched) == 1 and untouched[0].number == 2
    assert isinstance(records[0], Diagnostic)
