"""An argument that stays unknown says why: where the unknown came from, and what the code did to it."""

from __future__ import annotations

from hvci.images.callsites import EXECUTABLE, analyse_calls
from symbols.pe import PeImage
from tests.conftest import realworld


def test_an_unknown_value_changed_by_the_code_says_both_halves() -> None:
    """WinDivert 2.2.2 ORs NormalPagePriority into a priority read from a global set at run time (decided
    from the global's stores: the reason still shows the load and the operation)."""
    analysis = analyse_calls(PeImage.open(realworld("drivers", "WinDivert64-2.2.2.sys")))
    sites = [s for s in analysis.sites if s.api == "MmMapLockedPagesSpecifyCache"]
    assert sites and all(s.verdict != EXECUTABLE for s in sites)
    assert any("loaded at run time from the global" in s.reason and ", then `or " in s.reason for s in sites)
