"""The symbol path a command uses when none is given: the debuggers' own environment variables.

Every command that resolves addresses reads it at start, most of them before they know whether symbols will
be needed (an ``analyze`` of a log without a crash never looks one up); here it costs no store code and no
``pathlib`` to import (:mod:`symbols.store` searches the path once there is something to find).
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def symbol_path_from_environment(environ: Mapping[str, str] | None = None) -> str | None:
    """``_NT_ALT_SYMBOL_PATH`` then ``_NT_SYMBOL_PATH``, joined as the debuggers search them."""
    env = os.environ if environ is None else environ
    parts = [env[name] for name in ("_NT_ALT_SYMBOL_PATH", "_NT_SYMBOL_PATH") if env.get(name)]
    return ";".join(parts) if parts else None
