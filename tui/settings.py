"""View settings the user changed and expects to find again (the list/detail split), kept beside the keymap.

A small JSON file, ``view.json`` in the same folder as ``keymap.toml`` (see :mod:`tui.keymap`). It is read at
start-up and written when a setting changes; a missing, unreadable or broken file means the defaults, and a
failed write is reported by the caller, never fatal.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from tui.keymap import keymap_path

#: Steps of the list's share of the screen when the user resizes it.
SHARE_STEP = 0.05
SHARE_MIN = 0.15
SHARE_MAX = 0.85


def settings_path() -> Path:
    return keymap_path().with_name("view.json")


@dataclass(frozen=True, slots=True)
class ViewSettings:
    """``list_share``: the findings list's fraction of the width (side by side) or height (stacked);
    ``None`` sizes it to its content."""

    list_share_wide: float | None = None
    list_share_tall: float | None = None

    def share(self, wide: bool) -> float | None:
        return self.list_share_wide if wide else self.list_share_tall

    def with_share(self, wide: bool, share: float | None) -> ViewSettings:
        if share is not None:
            share = round(min(SHARE_MAX, max(SHARE_MIN, share)), 2)
        return replace(self, **{"list_share_wide" if wide else "list_share_tall": share})


def load_settings(path: Path) -> ViewSettings:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ViewSettings()
    if not isinstance(data, dict):
        return ViewSettings()
    values = {}
    for name in ("list_share_wide", "list_share_tall"):
        value = data.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and SHARE_MIN <= value <= SHARE_MAX:
            values[name] = float(value)
    return ViewSettings(**values)


def save_settings(path: Path, settings: ViewSettings) -> str | None:
    """Write ``settings``; the reason when that failed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(settings), indent=2) + "\n", encoding="utf-8")
    except OSError as error:
        return f"could not remember the layout in {path}: {error.strerror or error}"
    return None
