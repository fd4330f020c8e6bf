"""The bug check wherever it is: System event 1001, Kernel-Power 41, WER, crash viewers, the blue screen,
``Arg`` lines alone and ``nt!KeBugCheckEx`` frames, each in the variants people paste."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parsers.records import BugCheckRecord, FaultSiteRecord, PartialBugCheckRecord
from parsers.stream import parse_text

EVENT_1001 = (
    "The computer has rebooted from a bugcheck.  The bugcheck was: 0x000000be (0xfffff8050e2bd004, "
    "0x89000008a8820121, 0xffff8006f7b17450, 0x000000000000000b). "
    "A dump was saved in: C:\\Windows\\MEMORY.DMP."
)
BE_ARGS = (0xFFFFF8050E2BD004, 0x89000008A8820121, 0xFFFF8006F7B17450, 0xB)


def bugchecks(text: str) -> list[BugCheckRecord]:
    records, _ = parse_text(text)
    return [r for r in records if isinstance(r, BugCheckRecord)]


def partials(text: str) -> list[PartialBugCheckRecord]:
    records, _ = parse_text(text)
    return [r for r in records if isinstance(r, PartialBugCheckRecord)]


@pytest.mark.parametrize(
    "text",
    [
        EVENT_1001,
        "> " + EVENT_1001,
        "Eventviewer says this: `" + EVENT_1001 + "`",
        EVENT_1001.replace("(0xfffff8050e2bd004, ", "(0xfffff8050e2bd004,\n"),
        EVENT_1001.replace("0x89000008a8820121", "0x8900000\n8a8820121"),  # wrapped inside a number
        EVENT_1001.replace("  The bugcheck", "\r\nThe bugcheck").replace("\n", "\r\n"),
    ],
)
def test_system_event_1001_any_wrapping_or_quoting(text: str) -> None:
    [record] = bugchecks(text)
    assert (record.form, record.code, record.args) == ("system-event-1001", 0xBE, BE_ARGS)


@given(st.integers(min_value=40, max_value=200))
def test_system_event_1001_wrapped_at_any_column(column: int) -> None:
    """Any column a forum or a console wraps at (narrower ones cut every anchor phrase in two: the paste
    normaliser joins those)."""
    wrapped = "\n".join(EVENT_1001[i : i + column] for i in range(0, len(EVENT_1001), column))
    [record] = bugchecks(wrapped)
    assert (record.code, record.args) == (0xBE, BE_ARGS)


@pytest.mark.parametrize(
    "text",
    [
        '<Data Name="BugcheckCode">80</Data><Data Name="BugcheckParameter1">0xffffd00045e7c000</Data>'
        '<Data Name="BugcheckParameter2">0x2</Data><Data Name="BugcheckParameter3">0xfffff80159b5d6b8</Data>'
        '<Data Name="BugcheckParameter4">0x2</Data>',
        "BugcheckCode\t80\nBugcheckParameter1\t0xffffd00045e7c000\nBugcheckParameter2\t0x2\n"
        "BugcheckParameter3\t0xfffff80159b5d6b8\nBugcheckParameter4\t0x2\nSleepInProgress\t0\n",
        "BugcheckCode       : 80\nBugcheckParameter1 : 0xffffd00045e7c000\nBugcheckParameter2 : 0x2\n"
        "BugcheckParameter3 : 0xfffff80159b5d6b8\nBugcheckParameter4 : 0x2\n",
    ],
)
def test_kernel_power_41_code_is_decimal(text: str) -> None:
    [record] = bugchecks(text)
    assert record.code == 0x50
    assert record.args == (0xFFFFD00045E7C000, 2, 0xFFFFF80159B5D6B8, 2)


def test_kernel_power_41_without_a_bugcheck_is_no_bugcheck() -> None:
    assert bugchecks("BugcheckCode 0\nBugcheckParameter1 0x0\n") == []


def test_wer_reliability_monitor_block() -> None:
    text = (
        "Problem signature\nProblem Event Name:\tBlueScreen\nCode:\t133\nParameter 1:\t0\nParameter 2:\t501\n"
        "Parameter 3:\t500\nParameter 4:\tfffff8005e6fb320\nOS version:\t10_0_19045\n\n"
        "Extra information about the problem\nBucket ID:\t0x133_DPC_AcmeNet!AcmeDpcRoutine\n"
    )
    [record] = bugchecks(text)
    assert (record.code, record.args, record.blamed) == (
        0x133,
        (0, 0x501, 0x500, 0xFFFFF8005E6FB320),
        "AcmeNet",
    )


def test_bluescreenview_row_tabs_and_retyped_spaces() -> None:
    row = "121020-9078-01.dmp\t10/12/2020 8:33:47 PM\t\t0x00000139\t00000000`00000003\t00000000`00000000\t"
    row += "00000000`00000000\tfffff802`39502bd4\tSbieDrv.sys\tSbieDrv.sys+19cfc\t\tx64\tntoskrnl.exe+3f5780"
    spaced = "050126-5296-01.dmp  01.05.2026 13:52:45    0x00000109  a39fd65c'19808811  b3b6e2e2'6c036012  "
    spaced += "fffff806'4a533004  00000000'00000000  CI.dll  CI.dll+43004  Code Integrity Module"
    [first] = bugchecks(row)
    [second] = bugchecks(spaced)
    assert (first.code, first.args, first.blamed) == (0x139, (3, 0, 0, 0xFFFFF80239502BD4), "SbieDrv.sys")
    assert (second.code, second.args[2], second.blamed) == (0x109, 0xFFFFF8064A533004, "CI.dll")


def test_whocrashed_two_dumps_blame_two_modules() -> None:
    entry = (
        "This was probably caused by the following module: {m} ({s})\n"
        "Bugcheck code: 0xC2 (0x7, 0x0, 0x0, 0xFFFFBE073F1A7E28)\nError: BAD_POOL_CALLER\n"
    )
    text = entry.format(m="ntoskrnl.exe", s="nt+0x16C560") + entry.format(m="windivert64.sys", s="x+0x1")
    records = bugchecks(text)
    assert [r.blamed for r in records] == ["ntoskrnl.exe", "windivert64.sys"]
    assert {(r.code, r.args, r.name) for r in records} == {
        (0xC2, (7, 0, 0, 0xFFFFBE073F1A7E28), "BAD_POOL_CALLER")
    }


def test_blue_screen_name_and_what_failed() -> None:
    [record] = partials("BSOD with error code:\n`attempted_write_to_readonly_memory \nWhat failed: CI.dll`\n")
    assert (record.name, record.blamed) == ("ATTEMPTED_WRITE_TO_READONLY_MEMORY", "CI.dll")
    [stop] = bugchecks(
        "*** STOP: 0x000000D1 (0x0000000C,0x00000002,0x00000000,0xF86B5A89)\n\n"
        "***       gv3.sys - Address F86B5A89 base at F86B5000, DateStamp 3dd991eb\n"
    )
    assert (stop.code, stop.args, stop.blamed, stop.pointer_bits) == (
        0xD1,
        (0xC, 2, 0, 0xF86B5A89),
        "gv3.sys",
        32,
    )


@pytest.mark.parametrize("bullet", ["", "- ", "* ", "> ", "    ", "1. "])
def test_arg_lines_alone_with_the_code_nearby(bullet: str) -> None:
    text = (
        "Bug check c4 - A device driver attempting to corrupt the system has been caught.\n\n"
        f"{bullet}Arg1: 0000000000002000, Code Integrity Issue: "
        "The caller specified an executable pool type.\n"
        f"{bullet}Arg2: fffff801e7121c5d\n{bullet}Arg3: 0.\n{bullet}Arg4: 4d4d4c43\n"
    )
    [record] = partials(text)
    assert (record.code, record.args) == (0xC4, (0x2000, 0xFFFFF801E7121C5D, 0, 0x4D4D4C43))


def test_arg_lines_with_gaps_and_prose_between_give_the_rest_back() -> None:
    text = (
        "Arg1: 00000000c0000005, Exception code that caused the bugcheck\n\n"
        "Examining the first 0x3B bugcheck argument, it was an access violation.\n\n"
        "Arg3: ffffe705998ee960, Address of the context record\n\n"
        "0: kd> .cxr ffffe705998ee960\nrax=0000000000000000 rbx=000000000000047c\n"
        "rip=fffff8072271141d rsp=ffffe705998ef360 rbp=0000000000000000\nUniFairy+0xb141d:\n"
        "fffff807`2271141d 48396818        cmp     qword ptr [rax+18h],rbp\n"
    )
    records, _ = parse_text(text)
    [partial] = [r for r in records if isinstance(r, PartialBugCheckRecord)]
    [site] = [r for r in records if isinstance(r, FaultSiteRecord)]
    assert (partial.code, partial.args) == (0x3B, (0xC0000005, None, 0xFFFFE705998EE960))
    assert (site.address, site.symbol) == (0xFFFFF8072271141D, "UniFairy+0xb141d")


def test_kebugcheckex_frame_gives_code_and_first_parameters() -> None:
    text = (
        "STACK_TEXT:\n"
        "ffffd006`92757618 fffff804`26b5ae43 : 00000000`000000c4 00000000`00002000 fffff802`da2d33e8 "
        "00000000`00000000 : nt!KeBugCheckEx\n"
        "ffffd006`92757620 fffff804`265b359b : fffff804`266b3300 00000000`00002000 fffff802`da2d33e8 "
        "00000000`00000000 : nt!VerifierBugCheckIfAppropriate+0xdf\n"
    )
    [record] = bugchecks(text)
    assert (record.form, record.code, record.args) == (
        "kebugcheck-frame",
        0xC4,
        (0x2000, 0xFFFFF802DA2D33E8, 0),
    )


def test_a_frame_with_garbage_home_space_is_no_bugcheck() -> None:
    text = (
        "STACK_TEXT:\n"
        "ffffd006`92757618 fffff804`26b5ae43 : ffffd006`92757700 00000000`00002000 fffff802`da2d33e8 "
        "00000000`00000000 : nt!KeBugCheckEx\n"
    )
    assert bugchecks(text) == []


def test_analyze_unknown_code_header_and_data_model_code() -> None:
    unknown = (
        "Unknown bugcheck code (19c)\nUnknown bugcheck description\nArguments:\nArg1: 0000000000000050\n"
    )
    model = (
        "Debugging Details:\n------------------\n\nKEY_VALUES_STRING: 1\n\n"
        "    Key  : Bugcheck.Code.LegacyAPI\n"
        "    Value: 0x50\n\nBUGCHECK_P1: ffffd00045e7c000\n"
    )
    records, _ = parse_text(unknown)
    assert [r.bugcheck.code for r in records if hasattr(r, "bugcheck") and r.bugcheck] == [0x19C]
    records, _ = parse_text(model)
    assert [r.bugcheck.code for r in records if hasattr(r, "bugcheck") and r.bugcheck] == [0x50]


def test_a_bug_check_one_liner_alone_names_the_code() -> None:
    [record] = partials("Got this today:\nBug check 50 - PAGE_FAULT_IN_NONPAGED_AREA\nthat is all I have\n")
    assert (record.form, record.code, record.args) == ("bugcheck-one-liner", 0x50, ())
