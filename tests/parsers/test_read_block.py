"""``read_block``: the shared loop of table-like parsers (lm, verifier, image dumps)."""

from __future__ import annotations

from parsers.base import Line, LineCursor, read_block


def _rest(cursor: LineCursor) -> list[str]:
    out = []
    while (line := cursor.next()) is not None:
        out.append(line.text)
    return out


def test_the_first_foreign_line_and_the_blanks_before_it_go_back() -> None:
    cursor = LineCursor.from_text("head\nrow 1\nrow 2\n\n\nnoise\nmore")
    first = cursor.next()
    assert first is not None
    end = read_block(cursor, first, lambda line, _: line.text.startswith("row"), limit=100)
    assert (end.last_line, end.cut) == (3, False)
    assert _rest(cursor) == ["", "", "noise", "more"]


def test_take_learns_that_a_blank_line_came_before() -> None:
    seen: list[tuple[str, bool]] = []
    blanks: list[int] = []

    def take(line: Line, after_blank: bool) -> bool:
        seen.append((line.text, after_blank))
        return not after_blank

    cursor = LineCursor.from_text("head\na\n\nb\nc")
    first = cursor.next()
    assert first is not None
    end = read_block(cursor, first, take, limit=100, on_blank=lambda: blanks.append(1))
    assert seen == [("a", False), ("b", True)] and blanks == [1]
    assert end.last_line == 2 and _rest(cursor) == ["", "b", "c"]


def test_the_limit_cuts_the_block_and_says_so() -> None:
    cursor = LineCursor.from_text("head\n" + "\n".join(f"row {i}" for i in range(10)))
    first = cursor.next()
    assert first is not None
    end = read_block(cursor, first, lambda line, _: True, limit=4)
    assert (end.last_line, end.cut) == (5, True)
    assert _rest(cursor)[0] == "row 4"
