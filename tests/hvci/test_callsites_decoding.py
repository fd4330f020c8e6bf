"""The operand text parser of the call-site decoder reads what capstone's detail mode reads, for every
instruction of the sample drivers (and the real ones when present)."""

from __future__ import annotations

from pathlib import Path

import capstone
import pytest

from hvci.images.callsites.image import Image, function_ranges, regions
from hvci.images.callsites.passes import Analyser
from hvci.images.callsites.x86 import (
    OP_IMM,
    OP_MEM,
    OP_REG,
    REG_INFO,
    Decoder,
    Op,
    disassembler,
    first_written,
    parse_operands,
)
from hvci.knowledge import kb
from symbols.pe import PeImage
from tests.conftest import REALWORLD_ROOT

BUILD = Path(__file__).resolve().parents[2] / "samples" / "drivers" / "build"
IMAGES = sorted(BUILD.glob("*.sys")) + sorted((REALWORLD_ROOT / "drivers").glob("*.sys"))


def _same(parsed: Op, detail: Op) -> bool:
    """Equal in what the interpreter reads: immediates compared within the operand's width (capstone sizes
    a shift count as 1 byte, the parser as the destination), memory sizes only where the text names one."""
    if parsed.type == detail.type == OP_IMM:
        mask = (1 << (min(parsed.size, detail.size) * 8 or 64)) - 1
        return parsed.imm & mask == detail.imm & mask
    if parsed.type == detail.type == OP_MEM:
        return parsed[:1] + parsed[2:8] == detail[:1] + detail[2:8] and (parsed.size in (0, detail.size))
    if parsed.type == detail.type == OP_REG and detail.reg not in REG_INFO:
        return parsed.reg == detail.reg  # segment, vector, x87 registers: the interpreter reads no width
    return parsed[:8] == detail[:8]


@pytest.mark.parametrize(
    "path", [p for p in IMAGES if PeImage.open(p).machine in ("x64", "x86")], ids=lambda p: p.name
)
def test_parsed_operands_match_capstone(path: Path) -> None:
    pe = PeImage.open(path)
    bits = 64 if pe.machine == "x64" else 32
    decoder, md = Decoder(bits), disassembler(bits, detail=True)
    checked = 0
    for section in (s for s in pe.sections if s.executable):
        code = pe.read(section.virtual_address, section.raw_size)
        for raw in md.disasm(code, section.virtual_address):
            if raw.id == 0:
                continue
            parsed = parse_operands(raw.mnemonic, raw.op_str, bits)
            if parsed is None:
                continue  # a form the parser leaves to capstone's details
            detail = decoder._detail((raw.mnemonic, raw.op_str), bytes(raw.bytes), raw.address)[1]
            assert len(parsed) == len(detail), (hex(raw.address), raw.mnemonic, raw.op_str)
            assert all(_same(p, d) for p, d in zip(parsed, detail, strict=True)), (
                hex(raw.address),
                raw.mnemonic,
                raw.op_str,
                parsed,
                detail,
            )
            checked += 1
    assert checked > 50


@pytest.mark.parametrize(
    "path", [p for p in IMAGES if PeImage.open(p).machine in ("x64", "x86")], ids=lambda p: p.name
)
def test_listings_kept_by_the_cheap_pass_are_what_capstone_decodes(path: Path) -> None:
    """The detailed pass reads the cheap pass's listing of a function instead of decoding it again: each
    listing kept is exactly capstone's listing of that function's bytes, cut where the function ends."""
    pe = PeImage.open(path)
    analyser = Analyser(Image(pe, kb.load()))
    known, _ = function_ranges(pe, ())
    found = regions(pe, known)
    for region in found:
        analyser.prefilter.scan(region)
    listings = analyser.prefilter.listings
    assert listings
    lite = disassembler(analyser.image.bits, detail=False)
    for (start, end), listed in listings.items():
        code = pe.read(start, end - start)
        assert listed == list(lite.disasm_lite(code, start)), hex(start)
    assert sum(map(len, listings.values())) == analyser.prefilter.count


def _effect(written: tuple[int, ...], ops: tuple[Op, ...]) -> tuple[set[str], set[tuple[int, ...]]]:
    """What the interpreter does with an unmodelled instruction's details: the register families written,
    and the memory operands written (base, index, scale, displacement, size)."""
    families = {REG_INFO[r][0] for r in written if r in REG_INFO}
    memory = {
        (o.base, o.index_reg, o.scale, o.disp, o.size)
        for o in ops
        if o.type == OP_MEM and o.access & capstone.CS_AC_WRITE
    }
    return families, memory


def test_what_the_first_operand_writers_write_is_what_capstone_says() -> None:
    """:func:`first_written` answers for capstone's details on every instruction of :data:`WRITES_FIRST`
    in the drivers (registers and memory written as the interpreter reads them)."""
    checked: dict[str, int] = {}
    for path in IMAGES:
        pe = PeImage.open(path)
        if pe.machine not in ("x64", "x86"):
            continue
        bits = 64 if pe.machine == "x64" else 32
        decoder = Decoder(bits)
        for section in (s for s in pe.sections if s.executable):
            code = pe.read(section.virtual_address, section.raw_size)
            for insn in decoder.decode(code, section.virtual_address):
                ours = first_written(insn.mnemonic, insn.ops)
                if ours is None:
                    continue
                theirs = decoder._detail((insn.mnemonic, insn.op_str), insn.code, insn.address)
                assert _effect(*ours) == _effect(*theirs), (hex(insn.address), insn.text, ours, theirs)
                checked[insn.mnemonic] = checked.get(insn.mnemonic, 0) + 1
    assert sum(checked.values()) > 100 and {"imul", "sete", "sbb"} <= checked.keys(), checked
