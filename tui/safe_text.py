"""Log text as inert text: never markup, never terminal escapes.

Everything a log contains is data. Textual interprets ``str`` as markup in several places (``Static``,
``DataTable`` cells, notifications), and a raw ESC byte written to the terminal would be obeyed by it. So
every string that came from an input goes through :func:`clean` (control characters become visible
symbols) and is wrapped in a :class:`rich.text.Text`, which Textual renders literally.
"""

from __future__ import annotations

from rich.text import Text

#: Tabs are expanded to this many spaces so that columns in debugger output keep their shape.
TAB = "    "

#: Bidirectional overrides and isolates can make displayed text lie about its content.
_BIDI = {0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069}


def _visible(code: int) -> str:
    if code < 0x20:
        return chr(0x2400 + code)  # U+2400.. CONTROL PICTURES: ESC shows as ␛
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"\\u{code:04x}" if code > 0xFF else f"\\x{code:02x}"


def _is_unsafe(code: int) -> bool:
    return code < 0x20 or 0x7F <= code <= 0x9F or code in _BIDI


_TABLE = {code: _visible(code) for code in [*range(0x20), *range(0x7F, 0xA0), *_BIDI] if _is_unsafe(code)}
_TABLE[ord("\t")] = TAB


def clean(text: str) -> str:
    """``text`` with tabs expanded and every control or bidi character replaced by a visible stand-in."""
    return text.translate(_TABLE)


def safe(text: str | None, style: str = "") -> Text:
    """Input-derived text as a one-line renderable that is displayed literally (``[bold]`` stays
    ``[bold]``); too long for its cell, it ends in an ellipsis."""
    return Text(clean(text or ""), style=style, no_wrap=True, overflow="ellipsis", end="")
