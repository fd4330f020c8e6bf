"""User key remapping: a TOML file of ``"binding.id" = "keys"`` read once at startup.

The file is ``$HVCI_TRIAGE_KEYMAP`` when that is set, else ``keymap.toml`` in the user's config folder
(``%APPDATA%\\hvci-triage`` on Windows, ``$XDG_CONFIG_HOME/hvci-triage`` or ``~/.config/hvci-triage``
elsewhere). Keys use Textual's names, comma-separated (``"e,right"``). A broken file is reported and
ignored; the defaults stay.
"""

from __future__ import annotations

import os
from pathlib import Path

KEYMAP_ENV = "HVCI_TRIAGE_KEYMAP"


def keymap_path() -> Path:
    explicit = os.environ.get(KEYMAP_ENV)
    if explicit:
        return Path(explicit)
    if os.name == "nt" and os.environ.get("APPDATA"):
        base = Path(os.environ["APPDATA"])
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "hvci-triage" / "keymap.toml"


def load_keymap(path: Path | None = None) -> tuple[dict[str, str], str | None]:
    """The keymap and, when the file exists but cannot be used, why (the defaults then apply)."""
    path = path or keymap_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, None
    except OSError as error:
        return {}, f"keymap {path}: {error.strerror or error}"
    import tomllib  # only when there is a file: most start-ups have none (~2-6 ms)

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        return {}, f"keymap {path}: {error}"
    table = data.get("keymap", data)
    if not isinstance(table, dict):
        return {}, f"keymap {path}: expected binding ids mapped to key strings"
    keymap = {str(k): v for k, v in table.items() if isinstance(v, str)}
    bad = sorted(str(k) for k, v in table.items() if not isinstance(v, str))
    return keymap, (f"keymap {path}: ignored non-string entries {', '.join(bad)}" if bad else None)
