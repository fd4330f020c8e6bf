"""Decoders for the numbers in bug check arguments, banners and call sites: pool types, pool flags, page
protections, MDL priorities, pool tags, section characteristics.

Every decoder is driven by the tables of ``hvci/knowledge/constants.toml``; none guesses silently. Bits the
tables do not know are kept as ``0x... (unknown)`` parts, and whether a value asks for executable memory
follows the table's documented rule (for most tables the verifier's own test), with a note whenever the
answer rests on that rule rather than on a named constant. A 32-bit value printed sign-extended to 64 bits
(x86 targets: ``ffffffff80000010``) is folded back to 32 bits, with a note.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from types import MappingProxyType

import msgspec

from hvci.knowledge.kb import ARGUMENT_KINDS, ConstantEntry, ConstantTable, load


class Decoded(msgspec.Struct, frozen=True):
    """A decoded value. ``executable`` is None when the value alone cannot tell."""

    value: int  # the value decoded (after folding a sign-extended 32-bit value)
    name: str  # e.g. "PAGE_EXECUTE_READWRITE | PAGE_NOCACHE"
    executable: bool | None
    parts: tuple[str, ...]
    note: str | None


def _table(kind: str) -> ConstantTable:
    key = kind.replace("-", "_")
    table = load().constants.get(key)
    if table is None:
        raise ValueError(f"no constant table for {kind!r}")
    return table


def _normalize(value: int, width: int, notes: list[str]) -> int:
    """Fold negative and sign-extended values into the type's width; say so when it happens."""
    if width < 64 and value >> 32 == 0xFFFFFFFF and value & 0x80000000:
        notes.append(f"sign-extended 32-bit value (x86 target); decoded as {value & 0xFFFFFFFF:#010x}")
        return value & 0xFFFFFFFF
    if value < 0:
        folded = value & ((1 << width) - 1)
        notes.append(f"negative value read as the unsigned {width}-bit {folded:#x}")
        return folded
    return value


def _executable(table: ConstantTable, value: int, matched: ConstantEntry | None) -> bool | None:
    if table.has_rule:
        if table.executable_if_any is not None and value & table.executable_if_any:
            return True
        if table.nx_if_any is not None and value & table.nx_if_any:
            return False
        return table.otherwise
    return matched.executable if matched is not None else None


def executable_by_known_bits(kind: str, mask: int, value: int) -> bool | None:
    """Whether a value of ``kind`` is executable when only the bits in ``mask`` are known (set as in
    ``value``), by the table's rule: e.g. a pool type with 0x200 known set is NX whatever the rest, a page
    protection with the execute bits 0xF0 known clear is not executable. None when the known bits do not
    settle it (or the table has no rule)."""
    table = _table(kind)
    if not table.has_rule:
        return None
    execute, nx = table.executable_if_any, table.nx_if_any
    if execute is not None and value & execute & mask:
        return True

    def clear(bits: int | None) -> bool:
        return bits is None or (mask & bits == bits and value & bits == 0)

    if not clear(execute):
        return None
    if nx is not None and value & nx & mask:
        return False
    if clear(nx) and table.otherwise is not None:
        return table.otherwise
    return None


def _rule_text(table: ConstantTable) -> str:
    clauses = []
    if table.executable_if_any is not None:
        clauses.append(f"executable when any of {table.executable_if_any:#x} is set")
    if table.nx_if_any is not None:
        clauses.append(f"non-executable when any of {table.nx_if_any:#x} is set")
    if table.otherwise is not None:
        clauses.append(f"otherwise {'executable' if table.otherwise else 'non-executable'}")
    return "; ".join(clauses)


def _split(table: ConstantTable, value: int) -> tuple[list[ConstantEntry], ConstantEntry | None, int]:
    """Named flags and field values, the enumeration value left over (if it has a name), and unknown bits."""
    rest = value
    flags: list[ConstantEntry] = []
    for entry in table.entries:
        if entry.role == "flag" and rest & entry.value == entry.value:
            flags.append(entry)
            rest &= ~entry.value
    for mask in dict.fromkeys(e.mask for e in table.entries if e.role == "field"):
        field_value = rest & mask
        if not field_value:
            continue
        for entry in table.entries:
            if entry.role == "field" and entry.mask == mask and entry.value == field_value:
                flags.append(entry)
                rest &= ~mask
                break
    values = {e.value: e for e in reversed(table.entries) if e.role == "value"}
    if rest in values:
        return flags, values[rest], 0
    # Bits no enumeration value uses are unknown extras; the enumeration value may still be named.
    value_bits = 0
    for known in values:
        value_bits |= known
    if values and rest & value_bits in values:
        return flags, values[rest & value_bits], rest & ~value_bits
    return flags, None, rest


def decode(kind: str, value: int) -> Decoded:
    """Decode ``value`` as the constant kind ``kind`` (a constants.toml table, ``-`` or ``_`` spelling)."""
    table = _table(kind)
    notes: list[str] = []
    value = _normalize(value, table.width, notes)
    flags, matched, unknown = _split(table, value)
    parts = ([matched.name] if matched else []) + [e.name for e in flags]
    if unknown:
        parts.append(f"{unknown:#x} (unknown)")
        notes.append(f"{unknown:#x} is not a documented {table.title} value or bit")
    if matched is not None and matched.note:
        notes.append(matched.note.rstrip("."))
    for entry in (matched, *flags):
        if entry is not None and "UNCONFIRMED" in entry.source:
            notes.append(f"{entry.name}: {entry.source}")
    executable = _executable(table, value, matched)
    if table.has_rule and (unknown or matched is None and not flags):
        notes.append(f"executable-ness from the rule for {table.title}: {_rule_text(table)}")
    if executable is None and table.undecided_note:
        notes.append(table.undecided_note)
    name = " | ".join(parts) if parts else f"{value:#x}"
    return Decoded(value, name, executable, tuple(parts), "; ".join(notes) or None)


#: The decoder of every argument kind of the affected-API and subcode tables (all but ``none``): each kind
#: names its constants.toml table, so a new kind is a table there and a name in ``ARGUMENT_KINDS``.
DECODERS: Mapping[str, Callable[[int], Decoded]] = MappingProxyType(
    {kind: functools.partial(decode, kind) for kind in ARGUMENT_KINDS if kind != "none"}
)


def detail_key(kind: str) -> str | None:
    """The key of incident details that shows a decoded value of argument kind ``kind`` (None: not shown)."""
    return _table(kind).detail_key if kind in DECODERS else None


def section_characteristics(value: int) -> Decoded:
    """IMAGE_SCN_* flags of a PE section; ``executable`` is IMAGE_SCN_MEM_EXECUTE, W+X is called out."""
    decoded = decode("section_characteristics", value)
    if decoded.value & 0xA0000000 == 0xA0000000:
        return Decoded(
            decoded.value,
            decoded.name,
            decoded.executable,
            decoded.parts,
            _join("writable and executable (W+X)", decoded.note),
        )
    return decoded


def dll_characteristics(value: int) -> Decoded:
    """IMAGE_DLLCHARACTERISTICS_* flags of the optional header."""
    return decode("dll_characteristics", value)


def reloc_type(value: int) -> Decoded:
    """An IMAGE_REL_BASED_* base-relocation type (the high 4 bits of a relocation entry)."""
    return decode("reloc_type", value)


def pool_tag(value: int) -> str | None:
    """The ASCII pool tag of a little-endian ULONG (0x484d454d -> "MEMH"), or None when it is not one.

    Tags are four printable ASCII characters stored as a multi-character constant; 0 means "no tag". A
    value with bits above 32 (other than a sign extension) or with a non-printable byte is not a tag.
    """
    value = _normalize(value, 32, [])
    if value == 0 or value >> 32:
        return None
    raw = value.to_bytes(4, "little").rstrip(b"\0")
    if not raw or not all(0x20 <= b < 0x7F for b in raw):
        return None
    return raw.decode("ascii")


def safe_replacement(kind: str, value: int) -> int | None:
    """The non-executable value to use instead of ``value`` (``value`` itself when it is already safe).

    PAGE_EXECUTE_READWRITE -> PAGE_READWRITE (modifiers kept), NonPagedPool -> NonPagedPoolNx,
    POOL_FLAG_NON_PAGED_EXECUTE -> POOL_FLAG_NON_PAGED, a priority -> priority | MdlMappingNoExecute.
    None when no documented replacement exists (NonPagedPoolMustSucceed; any cache type: switch the API).
    """
    table = _table(kind)
    decoded = decode(kind, value)
    if decoded.executable is False:
        return decoded.value
    if decoded.executable is None:
        return None
    if table.safe_or:
        candidate = decoded.value | table.safe_or
    else:
        flags, matched, unknown = _split(table, decoded.value)
        candidate = decoded.value
        changed = False
        for entry in (matched, *flags):
            if entry is None or entry.replacement is None:
                continue
            replacement = table.entry(entry.replacement)
            if replacement is None:
                return None
            candidate = (candidate & ~entry.value) | replacement.value
            changed = True
        if not changed:
            return None
    return candidate if decode(kind, candidate).executable is False else None


def _join(*notes: str | None) -> str | None:
    text = "; ".join(n for n in notes if n)
    return text or None
