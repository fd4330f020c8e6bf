"""``hvci-triage explain``: every kind of topic, text and JSON, and the unknown-topic error."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

from cli.commands.explain import command
from cli.main import cli


def run(*args: str) -> Result:
    return CliRunner().invoke(command, list(args))


def test_registered_as_a_subcommand() -> None:
    result = CliRunner().invoke(cli, ["explain", "0x2001"])
    assert result.exit_code == 0, result.output
    assert "execute-page-protection" in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("execute-pool-type",), "execute-pool-type: Execute Pool Type"),
        (("Execute-Write Section",), "execute-write-section: Execute-Write Section"),
        (("0x2001",), "Arg1 0x2001"),
        (("2001",), "Arg1 0x2001"),
        (("0x2002",), "MdlMappingNoExecute"),
        (("0xC4",), "Bug check 0xC4 DRIVER_VERIFIER_DETECTED_VIOLATION"),
        (("c4",), "Bug check 0xC4 DRIVER_VERIFIER_DETECTED_VIOLATION"),
        (("0xfc",), "Bug check 0xFC ATTEMPTED_EXECUTE_OF_NOEXECUTE_MEMORY"),
        (("MmMapLockedPagesSpecifyCache",), "deciding argument: index 5 (0-based), kind mdl-priority"),
        (("mmmapiospace",), "deciding argument: none"),
        (("WdfMemoryCreate",), "in the compiled call: argument slot 2"),
        (("Execute", "Pool", "Type", "Count"), "execute-pool-type: Execute Pool Type"),
        (("section alignment failures:",), "section-alignment: Section Alignment Failures"),
        (("NonPagedPool",), "use instead: NonPagedPoolNx (0x200)"),
        (("3087",), "Microsoft-Windows-CodeIntegrity event 3087"),
        (("0xf0000006",), "The Import Address Table is within an executable section"),
        (("0x62",), "unloaded without freeing"),
        (("0xc4_2003",), "Arg1 0x2003"),
    ],
)
def test_each_kind_of_topic(args: tuple[str, ...], expected: str) -> None:
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert expected in result.stdout


def test_a_category_shows_the_whole_fix() -> None:
    out = run("execute-page-protection").stdout
    for heading in (
        "Evidence",
        "What happened",
        "Why memory integrity forbids it",
        "Fix",
        "Before",
        "After",
        "Verify",
        "Sources",
    ):
        assert f"\n{heading}\n" in out, heading
    assert "MmMapIoSpaceEx(" in out and "PAGE_EXECUTE_READWRITE" in out
    assert "verifier /flags 0x02000000 /driver mydriver.sys" in out
    assert (
        "https://learn.microsoft.com/windows-hardware/drivers/driversecurity/implement-hvci-compatible-code"
        in out
    )


def test_0x2000_shows_the_storport_meaning_and_how_we_decide() -> None:
    out = run("0x2000").stdout
    assert "2 meanings, the number alone does not decide" in out
    assert "[1] current: Execute Pool Type" in out
    assert "[2] pre-2020-docs: not HVCI-related" in out and "StorPortInitialize" in out
    assert "How hvci-triage decides" in out and "Never from Arg1 alone" in out
    assert "Code Integrity Issue: The caller specified an executable pool type." in out


def test_0x2005_shows_iat_and_relocs() -> None:
    out = run("2005").stdout
    assert "[1] current: IAT in Executable Section" in out
    assert "[2] older-build: Unsupported Relocs" in out
    assert "contains straddled relocs" in out
    assert "iat-in-executable-section: IAT" in out and "unsupported-relocs: Unsupported Relocs" in out


def test_0xc4_lists_the_code_integrity_subcodes() -> None:
    out = run("0xC4").stdout
    for line in (
        "0x2000 (current): execute-pool-type",
        "0x2005 (older-build): unsupported-relocs",
        "0x2006 (older-build): iat-in-executable-section",
    ):
        assert line in out


def test_numbers_outside_the_hvci_range() -> None:
    """0x1A is a bug check, 0x01 only one of a group of 0xC4 subcodes: each shows what it is."""
    assert "MEMORY_MANAGEMENT" in run("1a").stdout
    out = run("0x01").stdout
    assert "one of 0x1-0x2" in out and "IRQL" in out


def test_json_output() -> None:
    result = run("--format", "json", "0x2005")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["query"] == "0x2005"
    (topic,) = document["topics"]
    assert topic["kind"] == "subcode"
    assert [m["category"] for m in topic["meanings"]] == ["iat-in-executable-section", "unsupported-relocs"]
    assert [c["id"] for c in topic["categories"]] == ["iat-in-executable-section", "unsupported-relocs"]
    remediation = topic["categories"][0]["remediation"]
    assert remediation["before"] and remediation["after"] and remediation["links"]


@pytest.mark.parametrize(
    ("args", "kind"),
    [
        (("execute-pool-type",), "category"),
        (("0xC4",), "bugcheck"),
        (("ExAllocatePool2",), "api"),
        (("PAGE_EXECUTE",), "constant"),
        (("3072",), "event"),
        (("0xf0000002",), "ci-reason"),
    ],
)
def test_json_for_each_kind(args: tuple[str, ...], kind: str) -> None:
    result = run("--format", "json", *args)
    assert result.exit_code == 0
    topics = json.loads(result.stdout)["topics"]
    assert topics[0]["kind"] == kind


def test_api_json_has_the_index_the_call_site_analysis_uses() -> None:
    topic = json.loads(run("--format", "json", "ExInitializeNPagedLookasideList").stdout)["topics"][0]
    assert (topic["argument_index"], topic["argument_kind"], topic["binary_argument_index"]) == (
        3,
        "lookaside-flags",
        3,
    )
    assert topic["category_info"]["id"] == "execute-pool-type"


def test_unknown_topic_is_one_line_and_exit_2() -> None:
    result = run("no-such-thing")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "unknown topic 'no-such-thing'" in result.stderr


def test_no_topic_is_a_usage_error() -> None:
    result = run()
    assert result.exit_code == 2 and "give a topic" in result.stderr


def test_control_characters_in_the_query_are_not_echoed() -> None:
    result = run("\x1b[31mred\x07")
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr


def test_plain_text_has_no_escape_codes_or_markup() -> None:
    for topic in ("execute-pool-type", "0x2005", "0xC4", "ZwMapViewOfSection", "0xfc"):
        out = run(topic).stdout
        assert "\x1b" not in out and "[bold" not in out and "[/" not in out


def test_list() -> None:
    result = run("--list")
    assert result.exit_code == 0
    assert "execute-pool-type" in result.stdout and "ci-load-failure" in result.stdout
