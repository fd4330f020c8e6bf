"""parsers.deferred: a pattern compiled at first use answers exactly as the compiled pattern does."""

from __future__ import annotations

import copy
import pickle
import re

from parsers.deferred import deferred_compile


def test_nothing_is_compiled_before_the_first_use_and_the_methods_are_then_the_patterns_own() -> None:
    pattern = deferred_compile(r"(?P<word>[a-z]+)-(\d+)", re.IGNORECASE)
    assert "match" not in vars(pattern)
    found = pattern.match("Abc-12")
    assert found is not None and found.group("word") == "Abc" and found.group(2) == "12"
    assert "match" in vars(pattern)  # bound to the compiled pattern: no stand-in call per use any more
    compiled = re.compile(r"(?P<word>[a-z]+)-(\d+)", re.IGNORECASE)
    assert (pattern.groups, dict(pattern.groupindex), pattern.flags) == (
        compiled.groups,
        dict(compiled.groupindex),
        compiled.flags,
    )


def test_every_method_matches_re() -> None:
    text = "a-1 b-22 c-333"
    compiled = re.compile(r"([a-z])-(\d+)")
    for method, args in (
        ("search", (text,)),
        ("fullmatch", ("a-1",)),
        ("findall", (text,)),
        ("sub", (r"\2\1", text)),
        ("subn", (r"\2\1", text)),
        ("split", (text,)),
    ):
        fresh = deferred_compile(r"([a-z])-(\d+)")
        got, want = getattr(fresh, method)(*args), getattr(compiled, method)(*args)
        if isinstance(want, re.Match):
            assert isinstance(got, re.Match) and got.span() == want.span(), method
        else:
            assert got == want, method
    assert [m.span() for m in deferred_compile(rb"\d+").finditer(b"1 22")] == [(0, 1), (2, 4)]


def test_copies_and_pickles_before_and_after_use() -> None:
    pattern = deferred_compile(r"x+")
    for _ in range(2):
        assert copy.copy(pattern).search("axx") is not None
        assert pickle.loads(pickle.dumps(pattern)).search("axx") is not None
        pattern.search("")

