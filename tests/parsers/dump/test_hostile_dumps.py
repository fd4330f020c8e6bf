"""Hostile and damaged dumps: every header field mutated, cut-off files, cycles in the module list, page
tables pointing outside the file, huge counts. No exception, a diagnostic naming what could not be read,
what could be read still reported, and the work bounded: the reads are counted (no wall-clock asserts)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.dump import fileview
from parsers.dump.header import HEADER32, HEADER64
from parsers.dump.reader import DumpContent, read_dump
from parsers.dump.triage import TRIAGE_FIELDS
from parsers.records import BugCheckRecord, Diagnostic, ModuleListRecord
from parsers.source import Source
from tests.builders.dumps import PAGE, Crash, Driver, memory_dump, triage_dump
from tests.parsers.dump.test_dump_kinds import CRASH32, CRASH64, KINDS

#: Reads and bytes one dump of a few tens of KB may cost, however hostile.
MAX_READS = 50_000
MAX_BYTES = 64 << 20


@contextmanager
def counted() -> Iterator[list[int]]:
    """Counts ``DumpFile.read`` calls and bytes returned: [calls, bytes]."""
    tally = [0, 0]
    original = fileview.DumpFile.read

    def read(self: fileview.DumpFile, offset: int, size: int) -> bytes:
        data = original(self, offset, size)
        tally[0] += 1
        tally[1] += len(data)
        return data

    fileview.DumpFile.read = read  # type: ignore[method-assign]
    try:
        yield tally
    finally:
        fileview.DumpFile.read = original  # type: ignore[method-assign]


def read_bounded(data: bytes) -> DumpContent:
    with counted() as tally:
        content = read_dump(Source("hostile.dmp", data=data))
    assert tally[0] <= MAX_READS and tally[1] <= MAX_BYTES, tally
    return content


def _errors(content: DumpContent) -> list[str]:
    return [r.message for r in content.records if isinstance(r, Diagnostic) and r.severity == "error"]


def _field_offsets() -> list[tuple[int, int]]:
    """(offset, size) of every header and triage field of the 64-bit and 32-bit layouts."""
    fields = [(offset, size) for _, offset, size in HEADER64.fields + HEADER32.fields]
    fields += [(0x2000 + offset, 4) for _, offset, _ in TRIAGE_FIELDS] + [
        (0x1000 + o, 4) for _, o, _ in TRIAGE_FIELDS
    ]
    fields += [(0x88, 4), (0x98, 8), (0xA0, 8), (0x64, 4), (0x6C, 4), (0x2020, 8), (0x2030, 8), (0x2010, 8)]
    return fields


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(sorted(KINDS)),
    mutations=st.lists(
        st.tuples(
            st.sampled_from(_field_offsets()),
            st.one_of(
                st.sampled_from([0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 1 << 63, (1 << 64) - 1]),
                st.integers(0, (1 << 64) - 1),
            ),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_every_header_field_mutated(kind: str, mutations: list[tuple[tuple[int, int], int]]) -> None:
    data = bytearray(KINDS[kind]())
    for (offset, size), value in mutations:
        if offset + size <= len(data):
            data[offset : offset + size] = (value % (1 << (8 * size))).to_bytes(size, "little")
    read_bounded(bytes(data))


@settings(max_examples=100, deadline=None)
@given(
    kind=st.sampled_from(sorted(KINDS)),
    cut=st.integers(0, 1 << 16),
    flips=st.lists(st.integers(0, 1 << 16), max_size=8),
)
def test_cut_and_scrambled_dumps(kind: str, cut: int, flips: list[int]) -> None:
    data = bytearray(KINDS[kind]())
    for position in flips:
        if position < len(data):
            data[position] ^= 0xA5
    read_bounded(bytes(data[:cut]))


@pytest.mark.parametrize("cut", [0x48, 0x60, 0x1000, 0x2000, 0x2040, 0x2200, 0x2600])
def test_a_cut_off_triage_dump_names_what_is_missing_and_keeps_the_rest(cut: int) -> None:
    content = read_bounded(triage_dump(CRASH64)[:cut])
    errors = _errors(content)
    assert errors, "a cut-off dump must say so"
    bugchecks = [r for r in content.records if isinstance(r, BugCheckRecord)]
    if cut >= 0x60:  # the code and all four arguments are in the first 0x60 bytes
        assert bugchecks and bugchecks[0].args == CRASH64.args
    else:
        assert "BugCheckParameter2" in errors[0] and bugchecks[0].args == CRASH64.args[:1]


def test_a_module_list_that_loops_is_reported_and_its_entries_kept() -> None:
    content = read_bounded(memory_dump(CRASH64, 1, loop=True))
    assert any("loops back" in e for e in _errors(content))
    [modules] = [r for r in content.records if isinstance(r, ModuleListRecord)]
    assert len(modules.modules) == len(CRASH64.drivers)


def test_page_tables_pointing_outside_the_file() -> None:
    data = bytearray(memory_dump(CRASH64, 1))
    root = struct.unpack_from("<Q", data, 0x10)[0] // PAGE
    first_run = struct.unpack_from("<Q", data, 0x98)[0]
    assert root == first_run  # the PML4 is the first page stored, right after the header
    for slot in range(512):
        entry = struct.unpack_from("<Q", data, 0x2000 + slot * 8)[0]
        if entry & 1:
            struct.pack_into("<Q", data, 0x2000 + slot * 8, (0xFFFFFF << 12) | 3)  # a frame no dump holds
    content = read_bounded(bytes(data))
    assert any("not in the dump's memory" in e for e in _errors(content))
    assert [r for r in content.records if isinstance(r, BugCheckRecord)]


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (0x2000 + 0x34, 0xFFFFFFFF, "DriverCount 4294967295"),  # DriverCount
        (0x2000 + 0x30, 0x7FFFFFF0, ""),  # DriverListOffset past the end: no driver read
        (0x2000 + 0x2C, 0xFFFFFFFF, "call-stack region"),  # SizeOfCallStack
        (0x2000 + 0x08, 0x10, "no DUMP marker"),  # ValidOffset
    ],
)
def test_huge_counts_and_offsets_in_a_triage_dump(offset: int, value: int, message: str) -> None:
    data = bytearray(triage_dump(CRASH64))
    struct.pack_into("<I", data, offset, value)
    content = read_bounded(bytes(data))
    assert [r for r in content.records if isinstance(r, BugCheckRecord)]
    if message:
        assert any(message in e for e in _errors(content)), _errors(content)


@pytest.mark.parametrize("dump_type", [5, 9, 10])
def test_huge_bitmap_and_range_counts(dump_type: int) -> None:
    data = bytearray(memory_dump(CRASH64, dump_type))
    if dump_type == 5:
        struct.pack_into("<Q", data, 0x2030, (1 << 63) + 5)  # bits in the bitmap
    else:
        struct.pack_into("<Q", data, 0x2010, (1 << 63) + 5)  # MetadataSize
        struct.pack_into("<QQ", data, 0x2030, 1, (1 << 62))  # a first range of 2**62 pages
    read_bounded(bytes(data))


def test_thirty_two_bit_dumps_survive_the_same() -> None:
    data = bytearray(triage_dump(CRASH32, 32))
    struct.pack_into("<I", data, 0x1000 + 0x34, 0xFFFFFFFF)
    assert [r for r in read_bounded(bytes(data)).records if isinstance(r, BugCheckRecord)]
    many = Crash(
        0xC4, CRASH32.args, tuple(Driver(f"d{n}.sys", 0x90000000 + n * 0x10000, 0x10000) for n in range(300))
    )
    content = read_bounded(memory_dump(many, 1, bits=32))
    [modules] = [r for r in content.records if isinstance(r, ModuleListRecord)]
    assert len(modules.modules) == 300


def test_a_bitmap_larger_than_any_machine_is_looked_at_only_so_far() -> None:
    from parsers.dump.memory import MAX_BITMAP_BYTES

    data = bytearray(memory_dump(CRASH64, 5))
    struct.pack_into("<Q", data, 0x2030, (MAX_BITMAP_BYTES * 8) << 4)
    content = read_bounded(bytes(data))
    warnings = [r.message for r in content.records if isinstance(r, Diagnostic) and r.severity == "warning"]
    assert any("only the first" in w for w in warnings)
    [modules] = [r for r in content.records if isinstance(r, ModuleListRecord)]
    assert len(modules.modules) == len(CRASH64.drivers)
