"""An incident's title (one line a person reads first) and its bucket (what groups the same problem)."""

from __future__ import annotations

from hvci.bucket import bucket_id
from hvci.details import CrashDetails, details_json
from hvci.knowledge import kb
from hvci.model import Caller
from parsers.records import BugCheckRecord, VerifierBannerRecord
from symbols.modules import normalize_name


def crash_title(
    category: str | None,
    bc: BugCheckRecord | None,
    details: CrashDetails,
    driver: str | None,
    banner: VerifierBannerRecord | None,
) -> str:
    entry = kb.load().category(category) if category is not None else None
    if entry is not None and entry.incident_title:  # the category's title is data (categories.toml)
        return entry.title_for(driver or "A driver", details_json(details))
    if bc is None:
        if banner is not None:
            return f"Verifier code-integrity banner: {banner.message.strip()}"
        return "Crash output without its bug check" + (f" (in {driver})" if driver else "")
    info = kb.load().bugcheck(bc.code)
    name = (bc.name or (info.name if info else None)) or "unknown bug check"
    where = f" in {driver}" if driver else ""
    if category is not None:
        return f"{name} ({bc.code:#x}){where}, a stop that memory integrity can cause"
    return f"Bug check {bc.code:#x} {name}{where} (not HVCI-related)"


def crash_bucket(
    prefix: str, caller: Caller | None, driver: str | None, symbol: tuple[str, str] | None = None
) -> str:
    """From the caller; without one, from the driver and the function ``SYMBOL_NAME`` names in it.
    ``.pdata`` names a function by its start (``module+0x1000``): bucket on that start offset."""
    if caller is not None and caller.module:
        if caller.resolved_by == "pdata" and caller.offset is not None and caller.displacement is not None:
            return bucket_id(prefix, module=caller.module, offset=caller.offset - caller.displacement)
        return bucket_id(prefix, module=caller.module, function=caller.function, offset=caller.offset)
    function = None
    if symbol is not None and driver is not None and normalize_name(symbol[0]) == normalize_name(driver):
        function = symbol[1]
    return bucket_id(prefix, module=driver, function=function)
