"""Numbers no Windows target prints: anything wider than 64 bits.

Arguments, addresses and flags are 64-bit at most. A "value" of 3,600 digits in a pasted ``Arguments``
line is damage, not data, and once it is a Python integer it breaks every writer downstream (JSON refuses
integers past 4,300 digits). The stream checks every record a parser produces with :func:`widest_digits`
and turns one that carries such a number into a diagnostic, so no parser has to remember to.
"""

from __future__ import annotations

import dataclasses

_LIMIT = (1 << 64) - 1
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # per record class: dataclasses.fields() costs per call


def widest_digits(value: object) -> int:
    """The hex digit count of the widest integer over 64 bits anywhere in ``value`` (a record, and the
    records, tuples and lists inside it); 0 when every integer fits."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return (value.bit_length() + 3) // 4 if value > _LIMIT or value < -_LIMIT else 0
    if isinstance(value, (tuple, list)):
        return max((widest_digits(item) for item in value), default=0)
    if isinstance(value, str):
        return 0
    names = _FIELD_NAMES.get(type(value))
    if names is None:
        if not dataclasses.is_dataclass(value) or isinstance(value, type):
            return 0
        names = _FIELD_NAMES.setdefault(type(value), tuple(f.name for f in dataclasses.fields(value)))
    return max((widest_digits(getattr(value, name)) for name in names), default=0)
