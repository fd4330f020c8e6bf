"""The counts of a report's ``summary``, kept as incidents go by.

A streamed report (:mod:`hvci.batch.streamed`) keeps these instead of its incidents, whatever its format; on
their own here, a text report made that way imports no JSON writer.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from hvci.model import Incident


class Totals(msgspec.Struct):
    """The ``summary`` counts, kept as incidents go by (a streamed report holds these, not the incidents)."""

    incidents: int = 0
    hvci_related: int = 0
    categories: Counter[str] = msgspec.field(default_factory=Counter)
    buckets: Counter[str | None] = msgspec.field(default_factory=Counter)

    def add(self, incident: Incident) -> None:
        self.incidents += 1
        if incident.category is not None:
            self.categories[incident.category] += 1
        if incident.hvci_related:
            self.hvci_related += 1
            self.buckets[incident.bucket] += 1

    def summary(self, incomplete: bool) -> dict[str, Any]:
        return {
            "incidents": self.incidents,
            "hvci_related": self.hvci_related,
            "by_category": dict(sorted(self.categories.items())),
            "by_bucket": dict(sorted(self.buckets.items())),
            "incomplete": incomplete,
        }
