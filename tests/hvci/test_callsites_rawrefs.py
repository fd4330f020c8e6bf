"""The byte-level tests that spare the cheap pass most x64 functions never miss what listing them finds, and
an analysis that lists only the functions they pass gives what listing every function gives."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hvci.images.callsites import analyse_calls
from hvci.images.callsites import prefilter as prefilter_module
from hvci.images.callsites.image import Region
from hvci.images.callsites.prefilter import Prefilter
from hvci.images.callsites.rawrefs import may_branch_to, may_reference, spans_of
from symbols.pe import PeImage
from tests.conftest import REALWORLD_ROOT

BUILD = Path(__file__).resolve().parents[2] / "samples" / "drivers" / "build"
START = 0x1000

#: Instruction shapes that reference memory or branch, with room for a displacement or target.
_SHAPES = [b"\xff\x15", b"\x48\x8b\x05", b"\xff\x25", b"\xc7\x05", b"\x80\x3d", b"\xe8", b"\xe9", b"\x0f\x84"]


class _Bytes:
    """An Image stand-in whose every region holds ``code`` (what the cheap pass reads)."""

    def __init__(self, code: bytes) -> None:
        self.bits = 64
        self.data = code
        self.pe = PeImage.open(BUILD / "clean.sys")

    def code(self, region: Region) -> tuple[bytes, bool]:
        return self.data, False


@st.composite
def _code(draw: st.DrawFn) -> bytes:
    """Random bytes with references and branches planted at random places, aimed near RVA 0x3000."""
    code = bytearray(draw(st.binary(min_size=0, max_size=400)))
    for _ in range(draw(st.integers(0, 6))):
        if len(code) < 12:
            break
        at = draw(st.integers(0, len(code) - 12))
        shape = draw(st.sampled_from(_SHAPES))
        value = draw(st.integers(0x2F00, 0x3100)) - (START + at + len(shape) + 4)
        code[at : at + len(shape) + 4] = shape + struct.pack("<i", value)
    return bytes(code)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(code=_code(), aim=st.integers(0x2F00, 0x3100), width=st.integers(1, 600))
def test_the_byte_tests_never_miss_what_the_listing_finds(code: bytes, aim: int, width: int) -> None:
    listed = Prefilter(_Bytes(code)).scan(Region(START, START + len(code), "pdata"))[0]  # type: ignore[arg-type]
    wanted = set(range(aim, aim + width, 8))
    if listed.mem & wanted:
        assert may_reference(code, START, spans_of(wanted), wanted.__contains__)
    if listed.direct & wanted:
        assert may_branch_to(code, START, frozenset(wanted))


def test_a_function_without_the_bytes_is_not_listed() -> None:
    """The point of the tests: a plain function that references nothing asked about is passed over."""
    code = b"\x48\x89\xc8\xc3"  # mov rax, rcx; ret
    assert not may_reference(code, START, [(0x3000, 0x3008)], lambda rva: 0x3000 <= rva < 0x3008)
    assert not may_branch_to(code, START, frozenset({0x9000}))
    call = b"\xff\x15" + struct.pack("<i", 0x3000 - (START + 6)) + b"\xc3"  # call [rip -> 0x3000]
    assert may_reference(call, START, [(0x3000, 0x3008)], lambda rva: 0x3000 <= rva < 0x3008)


@pytest.mark.parametrize(
    "path",
    [BUILD / "api_misuse.sys", BUILD / "api_misuse_O0.sys", BUILD / "iat_in_text.sys"]
    + sorted((REALWORLD_ROOT / "drivers").glob("WinDivert64*.sys")),
    ids=lambda p: p.name,
)
def test_listing_only_what_the_tests_pass_gives_the_same_analysis(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lazy = analyse_calls(PeImage.open(path))

    def list_every_function(self: prefilter_module.Functions, test: object) -> None:
        original(self, lambda code, rva: True)

    original = prefilter_module.Functions.list_where
    monkeypatch.setattr(prefilter_module.Functions, "list_where", list_every_function)
    every = analyse_calls(PeImage.open(path))
    assert lazy == every
    assert lazy.sites  # each of these images has call sites: the comparison is not of two empty results
