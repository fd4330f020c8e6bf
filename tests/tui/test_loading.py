"""A load's incident list: enriched versions replace earlier ones; provisional ones (the quick look at a large
input's head) never replace, are replaced by the full analysis, and go if it never confirms them."""

from __future__ import annotations

from msgspec.structs import replace

from tests.tui.conftest import sample_incidents
from tui.loading import Load, Source


def test_provisional_incidents_give_way_to_the_full_analysis() -> None:
    pool, protection, other = sample_incidents()
    load = Load(Source.memory(b"", "big.log"))
    load.add(pool, provisional=True)
    load.add(protection, provisional=True)
    enriched = replace(pool, title="enriched")
    load.add(enriched)  # the child's version replaces the provisional one
    load.add(replace(pool, title="late provisional"), provisional=True)  # never over the child's
    load.add(other)
    load.settle()  # the child never reported the protection banner: it goes
    assert [i.title for i in load.incidents] == ["enriched", other.title]
    assert load.incidents[1] is other
    version = load.version
    load.settle()
    assert load.version == version  # nothing left to drop
