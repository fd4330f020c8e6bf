"""Numbers no Windows target prints: anything wider than 64 bits.

Arguments, addresses and flags are 64-bit at most. A "value" of 3,600 digits in a pasted ``Arguments``
line is damage, not data, and once it is a Python integer it breaks every writer downstream (JSON refuses
integers past 4,300 digits). The stream checks every record a parser produces with :func:`widest_digits`
and turns one that carries such a number into a diagnostic, so no parser has to remember to.
"""

from __future__ import annotations

import msgspec

from parsers.deferred import deferred_compile

_LIMIT = (1 << 64) - 1
#: msgpack holds integers from -2**63 to 2**64 - 1 and refuses wider ones: a record it encodes holds no
#: integer the walk would report (see :func:`widest_digits`)
_ENCODE = msgspec.msgpack.Encoder().encode
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # per record class, worked out at its first record
#: A field annotated with only these holds no integer a parser read (a ``Span``'s numbers are counted
#: lines), so the walk skips it: the text of an ``!analyze`` report's fields and of every stack frame.
_NO_NUMBER = deferred_compile(r"(?:str|None|bool|Severity|Span|tuple|\.\.\.|[\[\], |])*")


def _walked(kind: type) -> tuple[str, ...]:
    """The names of the fields of a record class (a msgspec struct) that may hold a parsed integer, from
    their annotations as written (``parsers.records`` postpones them, so they are text)."""
    if not issubclass(kind, msgspec.Struct):
        return ()
    annotations = kind.__annotations__
    return tuple(
        name
        for name in kind.__struct_fields__
        if not (isinstance(annotations.get(name), str) and _NO_NUMBER.fullmatch(annotations[name]))
    )


def widest_digits(value: object) -> int:
    """The hex digit count of the widest integer over 64 bits anywhere in ``value`` (a record, and the
    records, tuples and lists inside it); 0 when every integer fits. Every record of a log passes here:
    msgspec's encoder (in C, ~1 us for an ``!analyze`` record) clears nearly all of them, since it refuses
    any integer outside -2**63 .. 2**64 - 1 anywhere in the value; only a record it refuses (a wide number,
    an object it cannot encode) is walked, the walk a loop over a stack (~7 us a record: issue 16)."""
    try:
        _ENCODE(value)
    except (OverflowError, TypeError, ValueError):
        return _walk(value)
    return 0


def _walk(value: object) -> int:
    """:func:`widest_digits` by looking at every integer the value's records, tuples and lists hold."""
    widest = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (str, bool)) or item is None:
            continue
        if isinstance(item, int):
            if item > _LIMIT or item < -_LIMIT:
                widest = max(widest, (item.bit_length() + 3) // 4)
        elif isinstance(item, (tuple, list)):
            stack.extend(item)
        else:
            names = _FIELD_NAMES.get(type(item))
            if names is None:
                names = _FIELD_NAMES.setdefault(type(item), _walked(type(item)))
            stack.extend(getattr(item, name) for name in names)
    return widest
