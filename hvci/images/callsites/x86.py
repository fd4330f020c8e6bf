"""x86 and x64 instruction decoding for the call-site analysis: registers by family, instructions copied out
of capstone once, and basic blocks.

capstone's operand attributes are slow ctypes reads, so each instruction is copied into plain tuples
(:class:`Insn`, :class:`Op`) before the dataflow looks at it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

import capstone
from capstone import x86 as cx86

OP_REG = cx86.X86_OP_REG
OP_IMM = cx86.X86_OP_IMM
OP_MEM = cx86.X86_OP_MEM
REG_RIP = cx86.X86_REG_RIP

FAMILIES_64 = ("a", "b", "c", "d", "si", "di", "bp", "sp", *(f"r{n}" for n in range(8, 16)))
FAMILIES_32 = ("a", "b", "c", "d", "si", "di", "bp", "sp")
ARG_REGS_64 = ("c", "d", "r8", "r9")
ARG_NAMES_64 = ("rcx", "rdx", "r8", "r9")
VOLATILE_64 = ("a", "c", "d", "r8", "r9", "r10", "r11")
VOLATILE_32 = ("a", "c", "d")

#: A memory operand in capstone's text: ``[rip + 0x1234]`` (x64) or ``[0x401000]`` (x86 absolute).
MEM_RE = re.compile(r"\[(?:rip ([+-]) )?(0x[0-9a-f]+|\d+)\]")
BARRIERS = frozenset({"ret", "retf", "int3", "ud2", "hlt", "iretq", "iretd"})
#: Where a function in a gap (code no .pdata/PDB range covers) ends: the next one starts after these.
CHUNK_ENDS = frozenset({"ret", "retf", "int3"})
#: What may precede a ``jmp [slot]`` import stub (nop padding aside): nothing falls through into it.
STUB_AFTER = BARRIERS | {"jmp"}


def _register_table() -> dict[str, tuple[str, int, int]]:
    """Register name -> (family, width in bits, bit shift): ``ah`` -> (``a``, 8, 8)."""
    table: dict[str, tuple[str, int, int]] = {}
    for x in "abcd":
        table.update(
            {
                f"r{x}x": (x, 64, 0),
                f"e{x}x": (x, 32, 0),
                f"{x}x": (x, 16, 0),
                f"{x}l": (x, 8, 0),
                f"{x}h": (x, 8, 8),
            }
        )
    for x in ("si", "di", "bp", "sp"):
        table.update({f"r{x}": (x, 64, 0), f"e{x}": (x, 32, 0), x: (x, 16, 0), f"{x}l": (x, 8, 0)})
    for n in range(8, 16):
        table.update(
            {
                f"r{n}": (f"r{n}", 64, 0),
                f"r{n}d": (f"r{n}", 32, 0),
                f"r{n}w": (f"r{n}", 16, 0),
                f"r{n}b": (f"r{n}", 8, 0),
            }
        )
    return table


REGISTERS = _register_table()


def _register_ids() -> tuple[dict[int, tuple[str, int, int]], dict[int, str]]:
    """capstone register id -> (family, width, shift) and -> name, built once."""
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    names = {i: md.reg_name(i) for i in range(1, cx86.X86_REG_ENDING)}
    return {i: REGISTERS[n] for i, n in names.items() if n in REGISTERS}, {
        i: n for i, n in names.items() if n
    }


REG_INFO, REG_NAMES = _register_ids()


def disassembler(bits: int, *, detail: bool) -> capstone.Cs:
    """A capstone decoder for 32- or 64-bit code that keeps undecodable bytes as data (skipdata)."""
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64 if bits == 64 else capstone.CS_MODE_32)
    md.detail = detail
    md.skipdata = True
    return md


@dataclass(frozen=True, slots=True)
class Region:
    """A range of code analysed as one function."""

    start: int
    end: int
    source: str  # "pdata" | "pdb" | "gap"


class Op(NamedTuple):
    """An x86 operand, copied out of capstone once (its attributes are slow ctypes reads)."""

    type: int
    size: int
    reg: int
    imm: int
    base: int
    index_reg: int
    scale: int
    disp: int
    access: int


class Insn(NamedTuple):
    """An instruction with what the interpreter reads; ``raw`` for the rare ``regs_access`` query."""

    address: int
    size: int
    mnemonic: str
    op_str: str
    data: bool  # undecodable bytes kept by skipdata
    jump: bool
    ops: tuple[Op, ...]
    raw: capstone.CsInsn

    @classmethod
    def of(cls, raw: capstone.CsInsn) -> Insn:
        if raw.id == 0:
            return cls(raw.address, raw.size, raw.mnemonic, raw.op_str, True, False, (), raw)
        ops = tuple(
            Op(
                o.type,
                o.size,
                o.reg if o.type == OP_REG else 0,
                o.imm if o.type == OP_IMM else 0,
                o.mem.base if o.type == OP_MEM else 0,
                o.mem.index if o.type == OP_MEM else 0,
                o.mem.scale if o.type == OP_MEM else 1,
                o.mem.disp if o.type == OP_MEM else 0,
                o.access,
            )
            for o in raw.operands
        )
        return cls(raw.address, raw.size, raw.mnemonic, raw.op_str, False, is_jump(raw.mnemonic), ops, raw)

    @property
    def text(self) -> str:
        return f"{self.mnemonic} {self.op_str}"

    @property
    def step(self) -> str:
        """The instruction and where it is, as reasons quote it: ```or eax, 0x10` at 0x1400``."""
        return f"`{self.mnemonic} {self.op_str}` at 0x{self.address:x}"


def is_jump(mnemonic: str) -> bool:
    """Jumps (``jmp``, ``jcc``, ``jecxz``, ``loop*``), from the mnemonic: cheaper than capstone's groups."""
    return mnemonic.startswith(("j", "loop"))


def successors(insn: Insn) -> list[int]:
    m = insn.mnemonic
    after = insn.address + insn.size
    if insn.data:  # undecodable bytes (skipdata): nothing sensible follows
        return []
    if m in BARRIERS or m.startswith("ret"):
        return []
    if m == "jmp":
        op = insn.ops[0] if insn.ops else None
        return [op.imm] if op is not None and op.type == OP_IMM else []
    if insn.jump:
        op = insn.ops[0] if insn.ops else None
        targets = [after]
        if op is not None and op.type == OP_IMM:
            targets.append(op.imm)
        return targets
    return [after]


def blocks(insns: list[Insn], region: Region) -> list[list[Insn]]:
    """Split a function into basic blocks at jump targets and after branches and barriers."""
    leaders = {insns[0].address}
    for insn in insns:
        m = insn.mnemonic
        if insn.data:
            leaders.add(insn.address + insn.size)
            continue
        if m == "jmp" or m in BARRIERS or m.startswith("ret") or insn.jump:
            leaders.add(insn.address + insn.size)
            if insn.ops and insn.ops[0].type == OP_IMM:
                target = insn.ops[0].imm
                if region.start <= target < region.end:
                    leaders.add(target)
    out: list[list[Insn]] = []
    for insn in insns:
        if insn.address in leaders or not out:
            out.append([insn])
        else:
            out[-1].append(insn)
    return out
