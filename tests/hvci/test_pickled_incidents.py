"""Incidents cross the worker pipe pickled (:mod:`hvci.batch.pool`, the triage view's child
:mod:`hvci.logs.worker`) and must come back as the same objects.

Every incident of every sample log (the goldens' inputs) and of a scan of every sample driver is pickled as
the workers do, one by one and in one batch: equal, of the same type at every level, still immutable, and
rebuilt through its class (so ``Incident``'s check of its details runs on the parent's side too). Every
record inside is a msgspec Struct, which pickles as its class and field values in C; a slotted dataclass
there would go back to pickle's per-field ``__getstate__``/``__setstate__`` path, about 3x the CPU per
incident on each side (issue 16).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from hvci.details import EventDetails, ImageDetails
from hvci.images.scan import scan_paths
from hvci.logs.pipeline import analyze_inputs
from hvci.model import Incident
from parsers.records import Span
from parsers.stream import open_input
from tests.hvci.test_golden import ROOT, SAMPLES

DRIVERS = sorted((ROOT / "samples" / "drivers" / "build").glob("*.sys"))


def _dumps(value: object) -> bytes:
    return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)  # as the workers send parts


@pytest.fixture(scope="module")
def incidents() -> list[Incident]:
    found: list[Incident] = []
    for path in SAMPLES:
        found.extend(analyze_inputs([open_input(path, name=path.relative_to(ROOT).as_posix())]).incidents)
    for image in scan_paths(DRIVERS).images:
        found.extend(image.incidents)
    return found


def _walk(value: object) -> Iterator[object]:
    """The value and everything inside it (fields of Structs and other objects with slots, tuple items)."""
    yield value
    if isinstance(value, tuple | list):
        for item in value:
            yield from _walk(item)
    elif isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            yield from _walk(getattr(value, name))
    elif hasattr(value, "__dataclass_fields__"):
        for name in value.__dataclass_fields__:
            yield from _walk(getattr(value, name))


def _types(value: object) -> list[type]:
    return [type(v) for v in _walk(value)]


def test_the_samples_give_incidents_of_every_kind(incidents: list[Incident]) -> None:
    kinds = {i.kind for i in incidents}
    assert {"bugcheck", "verifier-banner", "event", "image", "call-site", "readiness"} <= kinds
    assert any(isinstance(i.details, ImageDetails) for i in incidents)


def test_every_sample_incident_comes_back_equal_of_the_same_types_and_immutable(
    incidents: list[Incident],
) -> None:
    for incident in incidents:
        copy = pickle.loads(_dumps(incident))
        assert copy == incident, incident.id
        assert _types(copy) == _types(incident), incident.id
        with pytest.raises(AttributeError):
            copy.title = "changed"  # type: ignore[misc]
        with pytest.raises(AttributeError):
            copy.details.x = 1  # type: ignore[union-attr]
    batch = pickle.loads(_dumps(("incidents", incidents)))
    assert batch == ("incidents", incidents)
    assert _types(batch[1]) == _types(incidents)


def test_every_record_in_an_incident_pickles_as_a_struct(incidents: list[Incident]) -> None:
    records = {type(v) for incident in incidents for v in _walk(incident) if hasattr(v, "__slots__")}
    assert Incident in records and EventDetails in records
    slow = sorted(t.__qualname__ for t in records if not issubclass(t, msgspec.Struct))
    assert slow == [], "records that pickle through __getstate__/__setstate__"


def test_an_unpickled_incident_is_made_through_its_class_and_checked() -> None:
    forged = Incident("a.log:1", Span("a.log", 1, 1), "bugcheck", None, False, "none", "t")
    # details the class refuses, set behind its back: the parent's side must refuse them again
    msgspec.structs.force_setattr(forged, "details", EventDetails("provider", 1, "message"))
    with pytest.raises(TypeError, match="cannot have"):
        pickle.loads(_dumps(forged))


def test_a_stream_of_pickled_messages_reads_back_in_order(tmp_path: Path, incidents: list[Incident]) -> None:
    """The triage view's child writes messages back to back on one pipe."""
    path = tmp_path / "messages"
    with path.open("wb") as out:
        pickle.dump(("provisional", incidents[:5]), out, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.dump(("incidents", incidents), out, protocol=pickle.HIGHEST_PROTOCOL)
    with path.open("rb") as back:
        assert pickle.load(back) == ("provisional", incidents[:5])
        assert pickle.load(back) == ("incidents", incidents)
