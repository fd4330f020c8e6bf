"""Module maps: lm rows, !analyze fields, frames and user specs; lookup precedence and normalisation."""

from __future__ import annotations

import pytest

from parsers.records import ModuleEntry, StackFrame
from symbols.modules import (
    MAX_OVERLAP_NOTES,
    UNKNOWN_SIZE_LIMIT,
    Module,
    ModuleMap,
    normalize_name,
    parse_address,
    parse_module_spec,
)


def entry(
    name: str, start: int, end: int, *, unloaded: bool = False, line: int = 1, size: int | None = None
) -> ModuleEntry:
    return ModuleEntry(line=line, name=name, start=start, end=end, unloaded=unloaded, image_size=size)


def test_lookup_in_lm_rows() -> None:
    modules = ModuleMap.from_entries(
        [
            entry("nt", 0xFFFFF80361000000, 0xFFFFF80362046000),
            entry("WinDivert", 0xFFFFF80366350000, 0xFFFFF8036636E000),
        ]
    )
    hit = modules.lookup(0xFFFFF803663552F0)
    assert hit is not None
    module, offset = hit
    assert module.name == "WinDivert" and offset == 0x52F0 and module.source == "lm"
    assert modules.lookup(0xFFFFF8036636E000) is None  # end is exclusive
    assert modules.lookup(0x1000) is None
    assert modules.diagnostics == ()


def test_overlap_prefers_the_smallest_and_is_reported() -> None:
    modules = ModuleMap.from_entries(
        [entry("huge", 0x10000, 0x900000), entry("small", 0x20000, 0x30000), entry("other", 0x40000, 0x50000)]
    )
    assert modules.lookup(0x20010) == (modules.find("small"), 0x10)
    assert modules.lookup(0x40010)[0].name == "other"  # type: ignore[index]
    assert modules.lookup(0x60000)[0].name == "huge"  # type: ignore[index]
    assert len([d for d in modules.diagnostics if "overlap" in d]) == 2


def test_overlap_result_does_not_depend_on_input_order() -> None:
    rows = [entry("a", 0x1000, 0x9000), entry("b", 0x2000, 0x4000), entry("c", 0x2000, 0x5000)]
    answers = {ModuleMap.from_entries(order).lookup(0x2100)[0].name for order in (rows, rows[::-1])}  # type: ignore[index]
    assert answers == {"b"}


def test_unloaded_only_when_nothing_loaded_covers() -> None:
    modules = ModuleMap.from_entries(
        [
            entry("old", 0x10000, 0x20000, unloaded=True),
            entry("new", 0x10000, 0x18000),
            entry("gone", 0x30000, 0x38000, unloaded=True),
        ]
    )
    hit = modules.lookup(0x11000)
    assert hit is not None and hit.module.name == "new" and not hit.module.unloaded
    hit = modules.lookup(0x19000)
    assert hit is not None and hit.module.name == "old" and hit.module.unloaded
    hit = modules.lookup(0x30004)
    assert hit is not None and hit.module.unloaded and hit.offset == 4
    assert modules.find("gone") is None  # find() is for loaded modules


def test_bad_lm_range_falls_back_to_image_size_with_a_note() -> None:
    modules = ModuleMap.from_entries([entry("drv", 0x50000, 0x50000, size=0x2000, line=7)])
    assert modules.lookup(0x51FFF) is not None and modules.lookup(0x52000) is None
    assert any("line 7" in d and "ImageSize" in d for d in modules.diagnostics)


def test_x86_sign_extended_addresses() -> None:
    modules = ModuleMap.from_entries(
        [entry("drv", 0x8A120000, 0x8A130000), entry("nt", 0x82800000, 0x82C00000)]
    )
    assert modules.is_32bit
    hit = modules.lookup(0xFFFFFFFF8A123456)
    assert hit is not None and hit.module.name == "drv" and hit.offset == 0x3456
    # a sign-extended lm row and a plain address meet too
    extended = ModuleMap.from_entries([entry("drv", 0xFFFFFFFF8A120000, 0xFFFFFFFF8A130000)])
    assert extended.is_32bit and extended.lookup(0x8A123456) == (extended.find("drv"), 0x3456)


def test_x64_map_does_not_fold_addresses() -> None:
    modules = ModuleMap.from_entries([entry("drv", 0xFFFFF80366350000, 0xFFFFF8036636E000)])
    assert not modules.is_32bit
    assert modules.normalize(0xFFFFFFFF8A123456) == 0xFFFFFFFF8A123456


def test_from_analyze_fields() -> None:
    fields = [
        ("IMAGE_NAME", "netebpfext.sys"),
        ("MODULE_NAME", "netebpfext"),
        ("FAULTING_MODULE", "fffff80366350000 netebpfext"),
    ]
    modules = ModuleMap.from_analyze(fields)
    hit = modules.lookup(0xFFFFF80366351234)
    assert hit is not None
    assert (
        hit.module.name == "netebpfext" and hit.module.image_name == "netebpfext.sys" and hit.offset == 0x1234
    )
    assert hit.module.end is None and hit.module.source == "analyze"
    assert modules.lookup(0xFFFFF80366350000 + UNKNOWN_SIZE_LIMIT) is None
    assert modules.lookup(0xFFFFF8036634FFFF) is None


def test_faulting_module_with_backtick() -> None:
    modules = ModuleMap.from_analyze([("FAULTING_MODULE", "fffff803`66350000 drv")])
    assert modules.find("drv") == Module("drv", 0xFFFFF80366350000, None, "analyze")


def test_unsymbolised_frames_give_a_base() -> None:
    frames = [
        StackFrame(
            line=1,
            text="nt!KeBugCheckEx",
            return_address=0xFFFFF803663552F5,
            module="nt",
            function="KeBugCheckEx",
            offset=0,
        ),
        StackFrame(
            line=2,
            text="WinDivert+0x52f5",
            return_address=0xFFFFF80361000000,
            module="WinDivert",
            offset=0x52F5,
        ),
        StackFrame(line=3, text="mydrv!Foo+0x10", module="mydrv", function="Foo", offset=0x10),
    ]
    modules = ModuleMap.from_analyze([("IMAGE_NAME", "WinDivert.sys"), ("MODULE_NAME", "WinDivert")], frames)
    found = modules.find("windivert.sys")
    assert found is not None and found.start == 0xFFFFF80366350000 and found.source == "frame"
    assert found.image_name == "WinDivert.sys"
    assert modules.find("mydrv") is None  # a symbolised frame does not tell the base


def test_open_range_stops_at_next_known_module() -> None:
    modules = ModuleMap.from_analyze([("FAULTING_MODULE", "10000 drv")]).merged(
        ModuleMap.from_entries([entry("next", 0x30000, 0x40000)])
    )
    assert modules.lookup(0x2FFFF)[0].name == "drv"  # type: ignore[index]
    assert modules.lookup(0x30000)[0].name == "next"  # type: ignore[index]
    assert modules.lookup(0x40000) is None


def test_merge_prefers_a_range_then_the_first_map_and_notes_conflicts() -> None:
    user = ModuleMap.from_specs(["WinDivert.sys=fffff803`66350000"])
    lm = ModuleMap.from_entries([entry("WinDivert", 0xFFFFF80366350000, 0xFFFFF8036636E000)])
    merged = user.merged(lm)
    assert len(merged) == 1 and merged.modules[0].source == "lm"
    conflicting = ModuleMap.from_specs(["drv=2000:1000"]).merged(ModuleMap.from_specs(["drv=5000:1000"]))
    assert conflicting.lookup(0x2100) is not None and conflicting.lookup(0x5100) is None
    assert any("disagrees" in d for d in conflicting.diagnostics)


@pytest.mark.parametrize(
    ("spec", "start", "end", "image_name"),
    [
        ("WinDivert.sys=fffff80366350000:1c000", 0xFFFFF80366350000, 0xFFFFF8036636C000, "WinDivert.sys"),
        ("drv=0x10000:0x2000", 0x10000, 0x12000, None),
        ("drv=fffff803`66350000", 0xFFFFF80366350000, None, None),
    ],
)
def test_module_specs(spec: str, start: int, end: int | None, image_name: str | None) -> None:
    module = parse_module_spec(spec)
    assert (module.start, module.end, module.image_name, module.source) == (start, end, image_name, "user")


@pytest.mark.parametrize(
    "spec", ["drv", "drv=", "=1000", "drv=xyz", "drv=1000:0", "drv=1000:zz", "drv=11112222333344445"]
)
def test_bad_module_specs(spec: str) -> None:
    with pytest.raises(ValueError, match="bad module spec|not an address"):
        parse_module_spec(spec)


def test_names_and_addresses() -> None:
    assert normalize_name(r"\SystemRoot\System32\drivers\WinDivert.SYS") == "windivert"
    assert normalize_name("nt") == "nt"
    assert parse_address("fffff803`66350000") == parse_address("0xFFFFF80366350000") == 0xFFFFF80366350000


def test_nested_rows_are_counted_not_listed_pair_by_pair() -> None:
    """Issue 10 item 3: 3,000 nested lm rows made a note per overlapping pair (4.5 million, 2 GB)."""
    rows = [entry(f"m{n}", 0x10000 + n * 0x10, 0x10000000 - n * 0x10) for n in range(3000)]
    modules = ModuleMap.from_entries(rows)
    overlaps = [d for d in modules.diagnostics if d.endswith("go to the smaller one")]
    assert len(overlaps) == MAX_OVERLAP_NOTES
    pairs = 3000 * 2999 // 2
    rest = pairs - MAX_OVERLAP_NOTES
    assert modules.diagnostics[-1] == f"{rest} more overlapping pairs of modules not listed"
    assert modules.lookup(0x10000 + 2999 * 0x10)[0].name == "m2999"  # type: ignore[index]


def test_overlap_notes_name_each_pair_once() -> None:
    rows = [entry("a", 0x1000, 0x9000), entry("b", 0x2000, 0x4000), entry("c", 0x3000, 0x5000)]
    notes = [d for d in ModuleMap.from_entries(rows).diagnostics if "overlap" in d]
    named = [note.split(" [")[0][-1] + note.split("and ")[1][0] for note in notes]
    assert named == ["ab", "ac", "bc"]
