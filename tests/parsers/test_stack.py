"""Stack listings: every k-family layout and STACK_TEXT share one frame grammar."""

from __future__ import annotations

from pathlib import Path

import pytest

from parsers.base import Line
from parsers.records import StackFrame, StackRecord
from parsers.stack import parse_frame
from parsers.stream import parse_text

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "logs"


def frame(text: str, **kwargs: bool) -> StackFrame:
    parsed = parse_frame(Line(7, text), **kwargs)
    assert parsed is not None, text
    return parsed


def test_k_frame_with_source() -> None:
    f = frame(
        "00 ffffd001`7d53d918 fffff801`61ba2b4c nt!KeBugCheckEx "
        "[d:\\th\\minkernel\\ntos\\ke\\amd64\\procstat.asm @ 122]"
    )
    assert (f.index, f.child_sp, f.return_address) == (0, 0xFFFFD0017D53D918, 0xFFFFF80161BA2B4C)
    assert (f.module, f.function, f.offset) == ("nt", "KeBugCheckEx", None)
    assert (f.source_file, f.source_line, f.line) == (
        "d:\\th\\minkernel\\ntos\\ke\\amd64\\procstat.asm",
        122,
        7,
    )


def test_kb_args_between_colons_and_source_path_with_spaces() -> None:
    f = frame(
        "ffffd001`c70c62a8 fffff800`7a0fa607 : ffffe001`d4aec5c0 ffffe001`cdefd3d8 ffffe001`d4aec5c0 "
        "ffffe001`cdefd390 : tabletaudiosample!CMiniportWaveRT::NewStream [c:\\my src\\minwavert.cpp @ 562]"
    )
    assert f.args == (0xFFFFE001D4AEC5C0, 0xFFFFE001CDEFD3D8, 0xFFFFE001D4AEC5C0, 0xFFFFE001CDEFD390)
    assert (f.function, f.source_file, f.source_line) == (
        "CMiniportWaveRT::NewStream",
        "c:\\my src\\minwavert.cpp",
        562,
    )


def test_newer_kb_without_child_sp() -> None:
    f = frame(
        "02 fffff802`da2d33e8     : 00000000`00000000 00000000`00001000 "
        "00000000`484d454d 00000000`00000000 : "
        "nt!VerifierExAllocatePoolWithTag+0x63"
    )
    assert (f.index, f.child_sp, f.return_address, f.offset) == (2, None, 0xFFFFF802DA2D33E8, 0x63)
    assert f.args == (0, 0x1000, 0x484D454D, 0)


def test_inline_frame() -> None:
    f = frame("05 (Inline Function) --------`--------     eBPFCore!ebpf_lock_lock+0xf [path @ 42]")
    assert (f.inline, f.child_sp, f.return_address, f.function, f.offset) == (
        True,
        None,
        None,
        "ebpf_lock_lock",
        0xF,
    )


def test_kf_memory_column() -> None:
    first = frame("00           ffffc30f`1d8f4718 fffff807`35b1ad9e     nt!KeBugCheckEx")
    second = frame(
        "01        8 ffffc30f`1d8f4720 fffff807`35b1ad9e     nt!VerifierBugCheckIfAppropriate+0xe6"
    )
    assert (first.index, first.child_sp) == (0, 0xFFFFC30F1D8F4718)
    assert (second.index, second.child_sp, second.offset) == (1, 0xFFFFC30F1D8F4720, 0xE6)


def test_trap_frame_and_fpo() -> None:
    x64 = frame(
        "01 ffffd001`c70c6bc0 fffff801`2d0c3a2e : 00000000`00000000 00000000`00000000 00000000`00000000 "
        "00000000`00000000 : nt!KiPageFault+0x426 (TrapFrame @ ffffd001`c70c6c40)"
    )
    assert (x64.function, x64.offset, x64.trap_frame) == ("KiPageFault", 0x426, 0xFFFFD001C70C6C40)
    x86 = frame(
        "8054f1d4 80545e2b 8054f230 00000000 8054f260 nt!KiTrap0E+0x233 (FPO: [0,0] TrapFrame @ 8054f230)"
    )
    assert (x86.args, x86.function, x86.trap_frame) == ((0x8054F230, 0, 0x8054F260), "KiTrap0E", 0x8054F230)
    fpo = frame("8054f1b8 804f8afc 0000000a 0000001c 00000002 nt!KeBugCheckEx+0x1b (FPO: [5,0,0])")
    assert (fpo.args, fpo.offset, fpo.trap_frame) == ((0xA, 0x1C, 2), 0x1B, None)


@pytest.mark.parametrize(
    ("site", "module", "function", "offset", "address"),
    [
        ("AcmeFan+0x52f0", "AcmeFan", None, 0x52F0, None),
        ("0x00007fff`69805b74", None, None, None, 0x00007FFF69805B74),
        ("0xffffc30f`1a2b4000", None, None, None, 0xFFFFC30F1A2B4000),
        ("<Unloaded_HvciDemo.sys>+0x52f0", "<Unloaded_HvciDemo.sys>", None, 0x52F0, None),
        ("nt! ?? ::FNODOBFM::`string'+0x2a4c5", "nt", " ?? ::FNODOBFM::`string'", 0x2A4C5, None),
    ],
)
def test_call_site_forms(
    site: str, module: str | None, function: str | None, offset: int | None, address: int | None
) -> None:
    f = frame(f"ffff8a0f`7e4cf790 fffff807`4b981a60     {site}")
    assert (f.module, f.function, f.offset, f.address) == (module, function, offset, address)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "rax=0000000000000000 rbx=ffffd001c70c5f00",
        "fffff802`d7e1c0b0 cc              int     3",
        "ModLoad: fffff802`d7a00000 fffff802`d8a46000   ntkrnlmp.exe",
        "Child-SP          RetAddr           Call Site",
    ],
)
def test_not_frames(text: str) -> None:
    assert parse_frame(Line(1, text)) is None


def stacks(name: str) -> list[StackRecord]:
    records, _ = parse_text((SAMPLES / name).read_text("utf-8"), name)
    return [r for r in records if isinstance(r, StackRecord)]


def test_every_layout_of_the_variants_sample() -> None:
    found = [
        (s.style, s.span.first_line, s.span.last_line, len(s.frames)) for s in stacks("stack-variants.txt")
    ]
    assert found == [
        ("k", 1, 10, 8),
        ("kb", 11, 17, 5),
        ("kv", 18, 22, 3),
        ("kn", 23, 27, 3),
        ("kf", 28, 33, 4),
        ("kP", 34, 42, 3),
        ("kc", 43, 49, 5),
        ("x86", 53, 56, 3),
        ("x86", 58, 61, 3),
        ("x86", 63, 66, 3),
    ]


def test_kp_parameters_belong_to_their_frame() -> None:
    kp = stacks("stack-variants.txt")[5]
    f = kp.frames[1]
    assert (f.function, f.offset, f.source_file, f.source_line, f.line) == (
        "FanInitRings",
        0x30,
        "C:\\work\\acmefan\\ring.c",
        90,
        37,
    )
    assert f.text.count("\n") == 2


def test_kc_frames() -> None:
    kc = stacks("stack-variants.txt")[6]
    assert [(f.index, f.module, f.function, f.offset) for f in kc.frames] == [
        (0, "nt", "KeBugCheckEx", None),
        (1, "nt", "VerifierBugCheckIfAppropriate", None),
        (2, "nt", "VerifierExAllocatePool2", None),
        (3, "AcmeFan", None, 0x52F0),
        (4, "AcmeFan", "FanStartDevice", None),
    ]


def test_warning_lines_inside_a_stack_are_stepped_over() -> None:
    (kv,) = stacks("analyze-x86-sign-extended.txt")
    assert kv.style == "kv"
    assert [f.offset for f in kv.frames] == [0x1E, 0x34, 0x58, 0x12C8, 0x1F02]


def test_a_stack_ends_at_the_prompt() -> None:
    records, _ = parse_text(
        "0: kd> k\n # Child-SP          RetAddr           Call Site\n"
        "00 ffffd001`7d53d918 fffff801`61ba2b4c nt!KeBugCheckEx\n0: kd> g\n",
        "t",
    )
    (stack,) = records
    assert isinstance(stack, StackRecord)
    assert (stack.span.first_line, stack.span.last_line, stack.style) == (1, 3, "k")


def test_prompt_without_frames_gives_nothing() -> None:
    records, _ = parse_text("0: kd> kb\nCouldn't resolve error at 'kb'\n", "t")
    assert records == []


def test_quoted_listing_from_a_forum() -> None:
    text = (
        "> # Child-SP          RetAddr               Call Site\n"
        "> 00 ffff8a0f`7e4cf6f8 fffff807`2a3ad8e2     nt!KeBugCheckEx\n"
        "> 01 ffff8a0f`7e4cf790 fffff807`4b981a60     AcmeFan+0x52f0\n"
        ">\n> thanks\n"
    )
    records, _ = parse_text(text, "t")
    (stack,) = records
    assert isinstance(stack, StackRecord)
    assert (stack.span.first_line, stack.span.last_line) == (1, 3)
    assert [(f.module, f.offset) for f in stack.frames] == [("nt", None), ("AcmeFan", 0x52F0)]
