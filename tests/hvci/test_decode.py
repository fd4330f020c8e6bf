"""Decoders: examples from the domain reference, x86 sign extension, unknown bits, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hvci.knowledge import decode

U32 = st.integers(min_value=0, max_value=0xFFFFFFFF)


# ----------------------------------------------------------------------------------------------- pool tags


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        (0x484D454D, "MEMH"),  # intel/haxm#116, printed 00000000484d454d
        (0x4D4D4C43, "CLMM"),  # windows-driver-docs#1859
        (0x20206B44, "Dk  "),  # trailing spaces are part of a tag
        (0x00006B44, "Dk"),  # short tags padded with NUL
    ],
)
def test_pool_tag(value: int, tag: str) -> None:
    assert decode.pool_tag(value) == tag


@pytest.mark.parametrize("value", [0, 0x01020304, 0x1_484D454D, -1])
def test_not_a_pool_tag(value: int) -> None:
    assert decode.pool_tag(value) is None


# ---------------------------------------------------------------------------------------------- pool types


@pytest.mark.parametrize(
    ("value", "name", "executable"),
    [
        (0, "NonPagedPool", True),  # IntelHaxm.sys Arg3 0
        (1, "PagedPool", False),
        (4, "NonPagedPoolCacheAligned", True),
        (32, "NonPagedPoolSession", True),
        (0x200, "NonPagedPoolNx", False),
        (0x204, "NonPagedPoolNxCacheAligned", False),
        (0x220, "NonPagedPoolSessionNx", False),
        (16, "NonPagedPool | POOL_RAISE_IF_ALLOCATION_FAILURE", True),
    ],
)
def test_pool_type(value: int, name: str, executable: bool) -> None:
    decoded = decode.decode("pool_type", value)
    assert (decoded.name, decoded.executable) == (name, executable)


def test_pool_type_unknown_bits_are_named_not_dropped() -> None:
    decoded = decode.decode("pool_type", 0x400)
    assert decoded.parts == ("NonPagedPool", "0x400 (unknown)")
    assert decoded.executable is True and decoded.note and "0x201" in decoded.note


# ----------------------------------------------------------------------------------------------- pool flags


def test_pool_flags() -> None:
    assert decode.decode("pool_flags", 0x80).executable is True
    assert decode.decode("pool_flags", 0x80).name == "POOL_FLAG_NON_PAGED_EXECUTE"
    assert decode.decode("pool_flags", 0x40).executable is False
    assert decode.decode("pool_flags", 0x100).executable is False
    both = decode.decode("pool_flags", 0x100000042)
    assert both.parts == ("POOL_FLAG_UNINITIALIZED", "POOL_FLAG_NON_PAGED", "POOL_FLAG_SPECIAL_POOL")
    none = decode.decode("pool_flags", 0x2)
    assert none.executable is None and none.note and "no pool type flag" in none.note


def test_pool_flags_are_64_bit_and_not_sign_folded() -> None:
    decoded = decode.decode("pool_flags", 0xFFFFFFFF80000040)
    assert decoded.value == 0xFFFFFFFF80000040 and any("unknown" in p for p in decoded.parts)


# ----------------------------------------------------------------------------------------- page protection


@pytest.mark.parametrize(
    ("value", "name", "executable"),
    [
        (0x40, "PAGE_EXECUTE_READWRITE", True),
        (0x10, "PAGE_EXECUTE", True),
        (0x20, "PAGE_EXECUTE_READ", True),
        (0x80, "PAGE_EXECUTE_WRITECOPY", True),
        (0x04, "PAGE_READWRITE", False),
        (0x204, "PAGE_READWRITE | PAGE_NOCACHE", False),
        (0x240, "PAGE_EXECUTE_READWRITE | PAGE_NOCACHE", True),
    ],
)
def test_page_protection(value: int, name: str, executable: bool) -> None:
    decoded = decode.decode("page_protection", value)
    assert (decoded.name, decoded.executable) == (name, executable)


def test_page_protection_two_base_values_are_not_guessed() -> None:
    decoded = decode.decode("page_protection", 0x44)
    assert decoded.parts == ("0x44 (unknown)",) and decoded.executable is True


# ------------------------------------------------------------------------------------------- MDL priority


def test_priority_without_no_execute_is_executable() -> None:
    decoded = decode.decode("mdl_priority", 0x10)
    assert decoded.name == "NormalPagePriority" and decoded.executable is True


def test_priority_with_no_execute_is_fine() -> None:
    decoded = decode.decode("mdl_priority", 0x40000010)
    assert decoded.parts == ("NormalPagePriority", "MdlMappingNoExecute") and decoded.executable is False


def test_x86_sign_extended_priority_is_folded_and_said() -> None:
    decoded = decode.decode("mdl_priority", 0xFFFFFFFF80000010)
    assert decoded.value == 0x80000010
    assert decoded.parts == ("NormalPagePriority", "MdlMappingNoWrite") and decoded.executable is True
    assert decoded.note and "sign-extended" in decoded.note and "third-party" in decoded.note


def test_unknown_priority_bit() -> None:
    decoded = decode.decode("mdl_priority", 0x20000010)
    assert decoded.parts == ("NormalPagePriority", "0x20000000 (unknown)") and decoded.executable is True


# ----------------------------------------------------------------------------------- other constant kinds


def test_lookaside_flags_and_cache_type() -> None:
    assert decode.decode("lookaside_flags", 0).executable is True
    assert decode.decode("lookaside_flags", 0x200).name == "POOL_NX_ALLOCATION"
    assert decode.decode("lookaside_flags", 0x200).executable is False
    cached = decode.decode("cache_type", 1)
    assert cached.name == "MmCached" and cached.executable is True
    assert decode.decode("cache_type", 0).executable is None


def test_section_characteristics() -> None:
    text = decode.section_characteristics(0x60000020)
    assert text.executable is True and text.parts == (
        "IMAGE_SCN_CNT_CODE",
        "IMAGE_SCN_MEM_EXECUTE",
        "IMAGE_SCN_MEM_READ",
    )
    rwx = decode.section_characteristics(0xE0000020)
    assert rwx.note and "W+X" in rwx.note
    init = decode.section_characteristics(0xE2000020)
    assert "IMAGE_SCN_MEM_DISCARDABLE" in init.parts
    data = decode.section_characteristics(0xC0000040)
    assert data.executable is False and data.note is None
    aligned = decode.section_characteristics(0x60500020)
    assert "IMAGE_SCN_ALIGN_16BYTES" in aligned.parts


def test_dll_characteristics_and_reloc_types() -> None:
    assert decode.dll_characteristics(0x0160).parts == (
        "IMAGE_DLLCHARACTERISTICS_HIGH_ENTROPY_VA",
        "IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE",
        "IMAGE_DLLCHARACTERISTICS_NX_COMPAT",
    )
    assert decode.reloc_type(10).name == "IMAGE_REL_BASED_DIR64"
    assert decode.reloc_type(6).parts == ("0x6 (unknown)",)


def test_unknown_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="no constant table"):
        decode.decode("pool-typo", 0)


# ---------------------------------------------------------------------------------------- safe replacement


@pytest.mark.parametrize(
    ("kind", "value", "replacement"),
    [
        ("page-protection", 0x40, 0x04),  # PAGE_EXECUTE_READWRITE -> PAGE_READWRITE
        ("page-protection", 0x10, 0x01),  # PAGE_EXECUTE -> PAGE_NOACCESS
        ("page-protection", 0x20, 0x02),
        ("page-protection", 0x80, 0x08),
        ("page-protection", 0x240, 0x204),  # modifiers kept
        ("page-protection", 0x04, 0x04),  # already safe
        ("pool-type", 0, 0x200),
        ("pool-type", 4, 0x204),
        ("pool-type", 32, 0x220),
        ("pool-type", 16, 0x210),
        ("pool-type", 2, None),  # NonPagedPoolMustSucceed has no NX twin
        ("pool-flags", 0x80, 0x40),
        ("pool-flags", 0x82, 0x42),
        ("mdl-priority", 0x10, 0x40000010),
        ("mdl-priority", 0xFFFFFFFF80000010, 0xC0000010),
        ("lookaside-flags", 0, 0x200),
        ("cache-type", 1, None),  # no replacement value: switch the API
    ],
)
def test_safe_replacement(kind: str, value: int, replacement: int | None) -> None:
    assert decode.safe_replacement(kind, value) == replacement


# -------------------------------------------------------------------------------------------- properties

KINDS = (
    "pool-type",
    "page-protection",
    "mdl-priority",
    "lookaside-flags",
    "cache-type",
    "section_characteristics",
    "dll_characteristics",
    "reloc_type",
)


@given(
    kind=st.sampled_from(KINDS + ("pool-flags",)), value=st.integers(min_value=-(2**63), max_value=2**64 - 1)
)
def test_decoding_never_raises_and_names_every_part(kind: str, value: int) -> None:
    decoded = decode.decode(kind, value)
    assert decoded.name == (" | ".join(decoded.parts) if decoded.parts else f"{decoded.value:#x}")
    assert decoded.value >= 0


@given(value=U32)
def test_pool_type_follows_the_verifier_predicate(value: int) -> None:
    assert decode.decode("pool_type", value).executable is ((value & 1) == 0 and (value & 0x200) == 0)


@given(value=U32)
def test_page_protection_follows_the_verifier_predicate(value: int) -> None:
    assert decode.decode("page_protection", value).executable is bool(value & 0xF0)


@given(value=U32)
def test_mdl_priority_follows_the_verifier_predicate(value: int) -> None:
    assert decode.decode("mdl_priority", value).executable is not bool(value & 0x40000000)


@given(
    kind=st.sampled_from(("pool-type", "pool-flags", "page-protection", "mdl-priority", "lookaside-flags")),
    value=U32,
)
def test_a_replacement_is_always_non_executable(kind: str, value: int) -> None:
    replacement = decode.safe_replacement(kind, value)
    if replacement is not None:
        assert decode.decode(kind, replacement).executable is False


@given(value=U32)
def test_sign_extension_is_transparent(value: int) -> None:
    """A 32-bit value decodes the same whether or not an x86 debugger printed it sign-extended."""
    extended = value | 0xFFFFFFFF00000000 if value & 0x80000000 else value
    plain, folded = decode.decode("mdl_priority", value), decode.decode("mdl_priority", extended)
    assert (plain.value, plain.parts, plain.executable) == (folded.value, folded.parts, folded.executable)
