"""Sources a user can open: the knowledge files cite Microsoft's documentation by repository path and our
research notes by section; what ``explain`` shows is only the public web pages.

``DDI:wdm/ne-wdm-_pool_type.md`` (the windows-driver-docs-ddi repository), ``WDD:devtest/x.md``
(windows-driver-docs) and ``win32:desktop-src/Debug/pe-format.md`` (win32) are the same pages on
learn.microsoft.com; URLs are kept as they are; a citation of our own notes (``hvci-domain.md §1.1``) is
left out, because a user of the package does not have them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Documentation repositories by the prefix the knowledge files use, and where their pages are published.
_DOC_SETS = {
    "DDI": "https://learn.microsoft.com/windows-hardware/drivers/ddi/",
    "WDD": "https://learn.microsoft.com/windows-hardware/drivers/",
    "win32": "https://learn.microsoft.com/windows/win32/",
}
_DOC_PATH = re.compile(r"\b(DDI|WDD|win32):(?:desktop-src/)?([A-Za-z0-9_./-]+?)\.md\b")
_URL = re.compile(r"https://[^\s;,)]+")


def public_sources(sources: Iterable[str]) -> list[str]:
    """The web pages behind ``sources``, in order and without repeats."""
    found: dict[str, None] = {}
    for source in sources:
        for match in _DOC_PATH.finditer(source):
            found[_DOC_SETS[match[1]] + match[2].lower()] = None
        for url in _URL.findall(source):
            found[url.rstrip(".")] = None
    return list(found)
