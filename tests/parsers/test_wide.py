"""``widest_digits`` finds an integer wider than 64 bits anywhere in a record (nested records, tuples)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from parsers.records import BugCheckRecord, EventRecord, Span, StackFrame, StackRecord
from parsers.wide import _walk, widest_digits

SPAN = Span("p", 1, 1)


def test_nothing_wide_is_zero() -> None:
    assert widest_digits(BugCheckRecord(SPAN, "bugcheck-line", 0xC4, (0x2000, (1 << 64) - 1, 0, 0))) == 0
    assert (
        widest_digits(EventRecord(SPAN, "Microsoft-Windows-CodeIntegrity", 3087, "text", status=0xC0000428))
        == 0
    )
    assert widest_digits("x" * 5000) == 0 and widest_digits(True) == 0


def test_a_wide_number_anywhere_is_found() -> None:
    huge = int("9" * 3600)
    assert (
        widest_digits(BugCheckRecord(SPAN, "bugcheck-line", 0xC4, (0x2000, huge)))
        == (huge.bit_length() + 3) // 4
    )
    frame = StackFrame(3, "frame", return_address=1 << 70)
    assert widest_digits(StackRecord(SPAN, "k", (StackFrame(2, "ok"), frame))) == 18
    assert widest_digits(-(1 << 80)) == 21


def test_every_field_that_can_hold_a_parsed_number_is_walked() -> None:
    """The walk skips only fields of text (and spans): a field that names ``int`` or another record class
    in its annotation is looked at, in every record class."""
    import re

    import msgspec

    from parsers import records
    from parsers.wide import _walked

    classes = [c for c in vars(records).values() if isinstance(c, type) and issubclass(c, msgspec.Struct)]
    assert len(classes) > 10
    text_only = {"str", "None", "bool", "tuple", "Severity", "Span"}
    for cls in classes:
        walked = set(_walked(cls))
        for name in cls.__struct_fields__:
            annotation = cls.__annotations__[name]
            names = set(re.findall(r"[A-Za-z_]+", str(annotation)))
            assert (name in walked) == bool(names - text_only), (cls.__name__, name, annotation)


_INTS = st.one_of(
    # around every bound: msgpack's -2**63 and 2**64 - 1, the walk's 2**64 - 1
    st.integers(-(1 << 64), 1 << 64),
    st.sampled_from([(1 << 64) - 1, 1 << 64, -(1 << 63), -(1 << 63) - 1, -(1 << 64) + 1, -(1 << 64)]),
    st.integers(),
)
_FRAMES = st.builds(
    StackFrame,
    st.integers(0, 1 << 20),
    st.text(max_size=8),
    child_sp=st.none() | _INTS,
    return_address=st.none() | _INTS,
    args=st.tuples(_INTS, _INTS) | st.just(()),
    module=st.none() | st.text(max_size=4),
)
_BUGCHECKS = st.builds(
    BugCheckRecord, st.just(SPAN), st.text(max_size=4), _INTS, st.lists(_INTS, max_size=4).map(tuple)
)
_VALUES = st.recursive(
    st.one_of(
        _INTS,
        st.none(),
        st.booleans(),
        st.text(max_size=4),
        _FRAMES,
        _BUGCHECKS,
        st.builds(StackRecord, st.just(SPAN), st.text(max_size=3), st.lists(_FRAMES, max_size=3).map(tuple)),
        st.builds(object),  # what the encoder cannot encode: the walk decides
    ),
    lambda inner: st.lists(inner, max_size=3) | st.lists(inner, max_size=3).map(tuple),
    max_leaves=12,
)


@given(_VALUES)
def test_the_encoders_verdict_is_the_walks(value: object) -> None:
    """Property (issue 16): what the encoder clears, the walk finds nothing wide in; the rest is walked."""
    assert widest_digits(value) == _walk(value)
