"""Memory integrity's state, Windows Security's verdicts, Driver Verifier notices, KMDF's recorder and the
driver the prose names before a crash: the context around crashes, in the variants people paste."""

from __future__ import annotations

import pytest

from parsers.records import MemoryIntegrityRecord, MentionRecord, VerifierStatusRecord, WdfLogRecord
from parsers.stream import parse_text


def of_kind(text: str, kind: type) -> list:  # type: ignore[type-arg]
    records, _ = parse_text(text)
    return [r for r in records if isinstance(r, kind)]


@pytest.mark.parametrize(
    ("text", "running", "not_running"),
    [
        ("SecurityServicesConfigured : {1, 2}\nSecurityServicesRunning : {1, 2}\n", True, ()),
        (
            "> SecurityServicesConfigured                   : {1, 2, 3}\n"
            "> SecurityServicesRunning                      : {1, 2}\n",
            True,
            (3,),
        ),
        (
            "SecurityServicesConfigured 2\nSecurityServicesRunning 0\nVirtualizationBasedSecurityStatus 1\n",
            False,
            (2,),
        ),
        (
            "Virtualization-based security Services Configured\tHypervisor enforced Code Integrity\n"
            "Virtualization-based security Services Running\t\n",
            False,
            (2,),
        ),
        (
            "DeviceGuardSecurityServicesConfigured : {CredentialGuard, HypervisorEnforcedCodeIntegrity}\n"
            "DeviceGuardSecurityServicesRunning    : {CredentialGuard, HypervisorEnforcedCodeIntegrity}\n",
            True,
            (),
        ),
    ],
)
def test_memory_integrity_settings(text: str, running: bool, not_running: tuple[int, ...]) -> None:
    [record] = of_kind(text, MemoryIntegrityRecord)
    assert (record.running, record.not_running) == (running, not_running)


def test_halp_hvci_enabled_from_the_debugger() -> None:
    [record] = of_kind("0: kd> db nt!HalpHvciEnabled L1\nfffff807`476c2a10  01   .\n", MemoryIntegrityRecord)
    assert (record.source, record.running) == ("HalpHvciEnabled", True)


@pytest.mark.parametrize(
    "heading",
    [
        "Incompatible drivers",
        "Inkompatible Treiber",
        "Pilotes incompatibles",
        "비호환 드라이버",
        "互換性のないドライバー",
        "不兼容的驱动程序",
        "Несовместимые драйверы",
    ],
)
def test_incompatible_driver_list_in_the_languages_windows_ships(heading: str) -> None:
    text = f"intro\n{heading}\n- line6 usb driver\nI6Helix_AvsFilter.sys - oem48.inf\n"
    text += "I6Helix_AvsFilter.sys\n\nafter\n"
    [record] = of_kind(text, MemoryIntegrityRecord)
    assert (record.running, record.drivers) == (False, ("I6Helix_AvsFilter.sys",))


def test_blocked_driver_notice() -> None:
    text = (
        "A driver can't load on this device\nYou are receiving this message because the Memory integrity "
        "setting in Windows Security is preventing a driver from loading on your device.\nDriver: Old.sys\n"
    )
    [record] = of_kind(text, MemoryIntegrityRecord)
    assert (record.running, record.drivers) == (True, ("Old.sys",))


def test_verifier_notices_and_the_command_name_the_driver() -> None:
    text = (
        "Driver Verifier: Enabled for MyDrv.sys, flags 0x2000000, build 22621, key abc\n"
        "Driver Verifier: Removed for USBMidi2.sys, 0:0x1209bb, 1:0x100012, build 27868\n"
        "20: kd> !Verifier 3 netebpfext.sys\n"
    )
    records = of_kind(text, VerifierStatusRecord)
    assert [(r.drivers, r.flags) for r in records] == [
        (("MyDrv.sys",), 0x2000000),
        (("USBMidi2.sys",), 0x1209BB),
        (("netebpfext.sys",), None),
    ]


def test_wdf_log_entries_with_the_driver_from_the_command_in_prose() -> None:
    text = (
        "Output of `!wdfkd.wdflogdump ViGEmBus`:\n\n```\n"
        "57: FxIoQueue::Vf_VerifyForwardRequest - Cannot forward a request to a different WDFDEVICE 0x1\n"
        "```\n"
    )
    [record] = of_kind(text, WdfLogRecord)
    assert record.driver == "ViGEmBus"
    assert record.entries == (
        "FxIoQueue::Vf_VerifyForwardRequest - Cannot forward a request to a different WDFDEVICE 0x1",
    )


def test_the_driver_named_just_before_a_stack() -> None:
    text = (
        "the IntelHaxm.sys is reported as the driver who crashes the system.\n\nHere is the stack:\n\n"
        "STACK_TEXT:\nffffd006`92757618 fffff804`26b5ae43 : 00000000`000000c4 00000000`00002000 "
        "fffff802`da2d33e8 00000000`00000000 : nt!KeBugCheckEx\n"
    )
    [record] = of_kind(text, MentionRecord)
    assert record.image == "IntelHaxm.sys"


def test_two_different_drivers_named_before_a_stack_name_none() -> None:
    text = (
        "Either A.sys or B.sys crashes it.\n\nSTACK_TEXT:\nffffd006`92757618 fffff804`26b5ae43 : "
        "00000000`000000c4 00000000`00002000 fffff802`da2d33e8 00000000`00000000 : nt!KeBugCheckEx\n"
    )
    assert of_kind(text, MentionRecord) == []
