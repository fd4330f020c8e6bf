"""An incident's title (one line a person reads first) and its bucket (what groups the same problem)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hvci.bucket import bucket_id
from hvci.knowledge import kb
from hvci.model import Caller
from parsers.records import BugCheckRecord, VerifierBannerRecord
from symbols.modules import normalize_name


def _named(details: Mapping[str, Any], key: str) -> str | None:
    value = details.get(key)
    return str(value["name"]) if isinstance(value, Mapping) and "name" in value else None


def crash_title(
    category: str | None,
    bc: BugCheckRecord | None,
    details: Mapping[str, Any],
    driver: str | None,
    banner: VerifierBannerRecord | None,
) -> str:
    who = driver or "A driver"
    section = details.get("section")
    in_section = f" ({section})" if section else ""
    if category == "execute-pool-type":
        parts = [
            p
            for p in (
                _named(details, "pool_type"),
                f"tag {details['pool_tag']}" if "pool_tag" in details else None,
            )
            if p
        ]
        return f"{who} allocated executable pool" + (f" ({', '.join(parts)})" if parts else "")
    if category == "execute-page-protection":
        name = _named(details, "protection")
        return f"{who} asked for an executable page protection" + (f" ({name})" if name else "")
    if category == "execute-page-mapping":
        name = _named(details, "priority")
        return f"{who} mapped an MDL without MdlMappingNoExecute" + (f" (priority {name})" if name else "")
    if category == "execute-write-section":
        return f"{who} has a section that is both writable and executable{in_section}"
    if category == "section-alignment":
        return f"{who} has a section that is not page aligned{in_section}"
    if category == "iat-in-executable-section":
        return f"{who} has its import address table in an executable section{in_section}"
    if category == "unsupported-relocs":
        return f"{who} has unsupported or page-straddling relocations"
    if bc is None:
        if banner is not None:
            return f"Verifier code-integrity banner: {banner.message.strip()}"
        return "!analyze output without a bug check"
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
