"""Incident details: one typed, immutable record per kind, whose JSON the report schema describes exactly.

The schema's ``$defs`` of the records (docs/report.schema.json) must equal what msgspec derives from the
records' types (descriptions aside; a field with a default is absent, never null, in the report); each kind
must be tied to its record(s); and every record must round-trip: record -> JSON (valid against its
definition) -> the same record. Keys that the knowledge base names (decoded values, banner addresses,
call-site argument kinds, title placeholders) must be fields of the records.
"""

from __future__ import annotations

import json
import pickle
from typing import Any, get_args

import jsonschema
import msgspec
import pytest

from hvci.details import (
    DETAILS_BY_KIND,
    CallSiteDetails,
    CrashDetails,
    DecodedValue,
    ImageDetails,
    Record,
    RuleFacts,
    details_json,
    image_details,
)
from hvci.knowledge import kb
from hvci.knowledge.records import _PLACEHOLDER, ARGUMENT_KINDS
from hvci.model import Incident, IncidentKind
from parsers.records import Span
from tests.conftest import REPO, REPORT_SCHEMA

SCHEMA = json.loads(REPORT_SCHEMA.read_text(encoding="utf-8"))
GOLDEN = REPO / "tests" / "hvci" / "golden"


def _records_of(kind: IncidentKind) -> list[type[Record]]:
    return list(DETAILS_BY_KIND[kind])


RECORDS: list[type[Record]] = [*dict.fromkeys(t for kind in DETAILS_BY_KIND for t in _records_of(kind))]
RECORDS.append(RuleFacts)  # an image rule's facts (scan.schema.json's rule details)


def _without_descriptions(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_descriptions(v) for k, v in schema.items() if k not in ("title", "description")}
    if isinstance(schema, list):
        return [_without_descriptions(v) for v in schema]
    return schema


def _as_reported(schema: dict[str, Any]) -> dict[str, Any]:
    """msgspec's schema of a record as the report writes it: a field with a default is left out while it
    has it (so it is never null), and no other key appears."""
    required = set(schema.get("required", ()))
    properties = {}
    for name, prop in schema["properties"].items():
        prop = {k: v for k, v in prop.items() if k != "default"}
        if name not in required and "anyOf" in prop:
            rest = [p for p in prop["anyOf"] if p != {"type": "null"}]
            prop = rest[0] if len(rest) == 1 else {"anyOf": rest}
        properties[name] = prop
    return {**schema, "properties": properties, "additionalProperties": False}


def derived_defs() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(RECORDS, ref_template="#/$defs/{name}")
    return {name: _as_reported(_without_descriptions(schema)) for name, schema in components.items()}


def _kind_rule(kind: IncidentKind) -> dict[str, Any]:
    refs = [{"$ref": f"#/$defs/{t.__name__}"} for t in _records_of(kind)]
    return {
        "if": {"properties": {"kind": {"const": kind}}},
        "then": {"properties": {"details": refs[0] if len(refs) == 1 else {"anyOf": refs}}},
    }


def test_every_kind_has_its_details_record() -> None:
    assert set(DETAILS_BY_KIND) == set(get_args(IncidentKind))


def test_the_schema_defines_each_record_as_its_types_say() -> None:
    derived = derived_defs()
    written = {name: _without_descriptions(SCHEMA["$defs"].get(name)) for name in derived}
    for name, definition in derived.items():
        assert written[name] == definition, f"docs/report.schema.json $defs.{name} should be:\n" + json.dumps(
            definition
        )


def test_the_schema_ties_each_kind_to_its_record() -> None:
    rules = SCHEMA["$defs"]["incidentFields"]["allOf"]
    assert rules == [_kind_rule(kind) for kind in get_args(IncidentKind)]


def _sample(info: msgspec.inspect.Type, full: bool) -> Any:
    """A value of a field's type: a record filled (all fields, or only the required ones), one-item arrays."""
    if isinstance(info, msgspec.inspect.StructType):
        return info.cls(
            **{f.name: _sample(f.type, full) for f in info.fields if full or f.required}  # type: ignore[misc]
        )
    if isinstance(info, msgspec.inspect.UnionType):
        return _sample(next(t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)), full)
    if isinstance(info, msgspec.inspect.VarTupleType):
        return (_sample(info.item_type, full),)
    if isinstance(info, msgspec.inspect.LiteralType):
        return info.values[-1]
    samples = {
        msgspec.inspect.IntType: 0xFFFFF80547A10208,
        msgspec.inspect.StrType: "0x40 <b>[bold]",
        msgspec.inspect.BoolType: False,
    }
    return samples[type(info)]


@pytest.mark.parametrize("full", [True, False], ids=["every-field", "required-fields"])
@pytest.mark.parametrize("record", RECORDS, ids=[t.__name__ for t in RECORDS])
def test_each_record_round_trips_through_the_json_the_schema_describes(
    record: type[Record], full: bool
) -> None:
    details = _sample(msgspec.inspect.type_info(record), full)
    data = json.loads(json.dumps(details_json(details)))
    jsonschema.validate(data, {"$ref": f"#/$defs/{record.__name__}", "$defs": SCHEMA["$defs"]})
    assert msgspec.convert(data, record) == details
    if full:  # every field is in the report, in the order it is declared
        assert list(data) == list(record.__struct_fields__)


def test_every_golden_incident_reads_back_into_its_kinds_record() -> None:
    """Real reports: each incident's details convert into one of its kind's records and render back the
    same, key order included."""
    seen = set()
    for path in sorted(GOLDEN.rglob("*.json")):
        for incident in json.loads(path.read_text(encoding="utf-8")).get("incidents", []):
            details = incident["details"]
            for record in _records_of(incident["kind"]):
                try:
                    typed = msgspec.convert(details, record, str_keys=True)
                except msgspec.ValidationError:
                    continue
                if json.dumps(details_json(typed)) == json.dumps(details):
                    seen.add(incident["kind"])
                    break
            else:
                pytest.fail(f"{path.name} {incident['id']}: {details} is no {incident['kind']} record")
    assert len(seen) >= 8  # most kinds appear in the goldens


def test_an_incident_holds_only_its_kinds_record_and_keeps_it_unchanged() -> None:
    incident = Incident("a.log:1", Span("a.log", 1, 1), "bugcheck", None, False, "none", "t")
    assert incident.details == CrashDetails()
    with pytest.raises(TypeError, match="cannot have"):
        Incident("a.log:1", Span("a.log", 1, 1), "event", None, False, "none", "t", details=CrashDetails())
    crash = CrashDetails(pool_type=DecodedValue(0, "NonPagedPool", True), pool_tag="MEMH")
    kept = Incident("a.log:1", Span("a.log", 1, 1), "bugcheck", None, False, "none", "t", details=crash)
    with pytest.raises(AttributeError):
        kept.details.pool_tag = "XXXX"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(kept)) == kept  # incidents cross the worker pipe


def _field_types(record: type[Record]) -> dict[str, str]:
    """Each field's type as the record declares it (the annotation's text)."""
    declared = {k: v for c in reversed(record.__mro__) for k, v in vars(c).get("__annotations__", {}).items()}
    return {name: declared[name] for name in record.__struct_fields__}


def test_decoded_values_and_banner_addresses_the_knowledge_base_names_are_crash_fields() -> None:
    crash = _field_types(CrashDetails)
    base = kb.load()
    for name, table in base.constants.items():
        if table.detail_key is not None:
            assert crash.get(table.detail_key) == "DecodedValue | None", (name, table.detail_key)
    for meaning in base.subcodes:
        for kind in meaning.arg_kinds[1:]:
            if kind.endswith("-ptr") and kind != "section-name-ptr":
                key = kind.removesuffix("-ptr").replace("-", "_")
                assert crash.get(key) == "str | None", (meaning.arg1, kind)


def test_every_argument_kind_of_an_affected_api_is_a_call_site_field() -> None:
    site = _field_types(CallSiteDetails)
    for kind in ARGUMENT_KINDS:
        if kind != "none":
            assert site.get(kind.replace("-", "_")) == "tuple[NamedValue, ...] | None", kind


def test_every_title_placeholder_names_a_crash_field() -> None:
    crash = _field_types(CrashDetails)
    decoded = _field_types(DecodedValue)
    for category in kb.load().categories.values():
        for part in category.title_details:
            for key, name in _PLACEHOLDER.findall(part):
                assert key in crash, (category.id, part)
                assert not name or (crash[key] == "DecodedValue | None" and name in decoded), part


def test_an_image_incident_shows_every_fact_its_rule_found() -> None:
    """ImageDetails is the rule, its status, level and message, then RuleFacts' fields (same names, types
    and order): a fact added to one record and not the other would be lost on the way to the report."""
    facts = [(f.name, f.type) for f in msgspec.structs.fields(RuleFacts)]
    assert [(f.name, f.type) for f in msgspec.structs.fields(ImageDetails)][4:] == facts
    found = _sample(msgspec.inspect.type_info(RuleFacts), full=True)
    shown = details_json(image_details("r", "error", found, "fail", "m"))
    assert shown == {"rule": "r", "status": "fail", "level": "error", "message": "m", **details_json(found)}
