"""Comparing the words of two texts: a debugger's description against the knowledge base's."""

from __future__ import annotations

import re

_WORDS = re.compile(r"[a-z0-9]+")
#: Share of distinct words two texts must have in common to be the same sentence reworded.
_SAME_WORDS = 0.85


def normalized_words(text: str) -> str:
    """Lower-case words joined by single spaces: texts compared regardless of spacing and punctuation."""
    return " ".join(_WORDS.findall(text.lower()))


def text_matches(printed: str, description: str) -> bool:
    """A printed description against a known one, tolerant of spacing and punctuation, and of the
    rewording between a debugger's bug-code table and the docs (an old debugger prints "... to
    StorPortInitialize." where the docs say "... to the StorPortInitialize routine.")."""
    a, b = normalized_words(printed), normalized_words(description)
    if not a or not b:
        return False
    if a == b or a.startswith(b) or b.startswith(a):
        return True
    words_a, words_b = set(a.split()), set(b.split())
    return len(words_a & words_b) >= _SAME_WORDS * max(len(words_a), len(words_b))
