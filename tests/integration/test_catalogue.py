"""The event catalogue (docs/events.md, docs/events/*.json, docs/asyncapi.yaml) against the
code: no drift, no breaking change within a published version."""

import copy
import json

import pytest
import yaml
from jsonschema import Draft202012Validator
from marshmallow import Schema, fields, validate

from shared import catalogue
from shared.events import EventRegistry


def test_the_committed_catalogue_is_what_the_code_generates():
    different = catalogue.drift()
    assert not different, (
        "the event catalogue differs from the code; run `python -m shared.catalogue` and "
        f"commit the result: {different}"
    )


def test_no_published_event_version_changed_in_a_breaking_way():
    problems = catalogue.compatibility_problems(
        catalogue.published_schemas(), catalogue.current_schemas()
    )
    assert not problems, "\n".join(problems)


def test_every_schema_is_valid_json_schema_and_every_service_with_events_is_there():
    schemas = catalogue.current_schemas()
    for schema in schemas.values():
        Draft202012Validator.check_schema(schema)
    sources = {schema["properties"]["source"]["const"] for schema in schemas.values()}
    assert {"users", "customers"} <= sources
    assert "customer.registered.v1" in schemas and "user.registered.v1" in schemas


def test_asyncapi_document_names_every_event_with_its_exchange_and_routing_key():
    document = yaml.safe_load((catalogue.DOCS / "asyncapi.yaml").read_text())
    assert document["asyncapi"].startswith("3.")
    schemas = document["components"]["schemas"]
    for key in catalogue.current_schemas():
        message_id = key.replace(".", "_")
        assert message_id in document["components"]["messages"]
        assert schemas[message_id]["properties"]["type"]["const"] == key.rsplit(".v", 1)[0]
    for channel in document["channels"].values():
        binding = channel["bindings"]["amqp"]
        assert binding["exchange"]["type"] == "topic"
        assert binding["exchange"]["name"].endswith(".events")
        for message in channel["messages"].values():
            target = message["$ref"].rsplit("/", 1)[1]
            assert document["components"]["messages"][target]["name"] == channel["address"]
    text = json.dumps(document)
    assert "#/$defs/" not in text  # every reference resolves inside the document


def test_sealed_fields_are_marked_and_accept_only_sealed_or_erased_values():
    schema = catalogue.current_schemas()["customer.registered.v1"]
    name = schema["properties"]["payload"]["properties"]["name"]
    assert name["x-cms-sealed"] is True
    validator = Draft202012Validator({"$defs": schema["$defs"], **name})
    sealed = {"$sealed": {"subject": "c1", "alg": "A256GCM", "nonce": "AAAA", "data": "BBBB"}}
    assert validator.is_valid(sealed)
    assert validator.is_valid({"$erased": {"subject": "c1"}})
    assert not validator.is_valid("Zhang Wei")


# -- the evolution rules, on a made-up event -------------------------------------------------


def _schema_of(schema_cls) -> dict:
    registry = EventRegistry("demo")
    registry.register("demo.happened", 1, "A demo event.")(schema_cls)
    event = catalogue.EventVersion(
        "demo", "demo.happened", 1, "A demo event.", registry.schema("demo.happened", 1)
    )
    return catalogue.envelope_schema(event)["properties"]["payload"]


class Base(Schema):
    demo_id = fields.UUID(required=True)
    amount = fields.Integer(required=True)
    note = fields.String(required=True, allow_none=True)
    kind = fields.String(required=True, validate=validate.OneOf(("a", "b")))
    lines = fields.List(fields.Nested(type("Line", (Schema,), {"qty": fields.Integer()})))


def test_additive_changes_within_a_version_are_allowed():
    class Added(Base):
        extra = fields.String()  # a new optional field
        kind = fields.String(required=True, validate=validate.OneOf(("a", "b", "c")))
        note = fields.String(required=True)  # never null any more: narrower

    assert catalogue.breaking_changes(_schema_of(Base), _schema_of(Added)) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"amount": None}, "amount: removed"),
        ({"amount": fields.String(required=True)}, "amount: type"),
        ({"amount": fields.Integer(required=True, allow_none=True)}, "amount: type"),
        ({"amount": fields.Integer()}, "amount: no longer required"),
        ({"demo_id": fields.String(required=True)}, "demo_id: format"),
        (
            {"lines": fields.List(fields.Nested(type("L2", (Schema,), {"qty": fields.String()})))},
            "lines[items].qty: type",
        ),
    ],
)
def test_breaking_changes_within_a_version_are_found(change, expected):
    attrs = {name: field for name, field in Base._declared_fields.items()}
    for name, field in change.items():
        if field is None:
            attrs.pop(name)
        else:
            attrs[name] = field
    changed = type("Changed", (Schema,), attrs)
    problems = catalogue.breaking_changes(_schema_of(Base), _schema_of(changed))
    assert any(problem.startswith(expected) for problem in problems), problems


def test_removing_a_published_version_needs_it_retired():
    published = catalogue.current_schemas()
    current = copy.deepcopy(published)
    del current["customer.tagged.v1"]
    problems = catalogue.compatibility_problems(published, current)
    assert problems and problems[0].startswith("customer.tagged.v1: a published event version")


def test_a_superseded_version_is_marked_deprecated_with_its_period():
    class V1(Schema):
        demo_id = fields.UUID(required=True)

    class V2(Schema):
        demo_id = fields.String(required=True)

    registry = EventRegistry("demo")
    registry.register("demo.happened", 1, "Old.")(V1)
    registry.register("demo.happened", 2, "New.")(V2)
    events = [
        catalogue.EventVersion("users", "demo.happened", v, "", registry.schema("demo.happened", v))
        for v in (1, 2)
    ]
    schemas = catalogue._schemas(events)
    assert schemas["demo.happened.v1"]["deprecated"] is True
    assert "deprecated" not in schemas["demo.happened.v2"]
    text = catalogue.render_markdown(events, schemas)
    assert f"both are published for at least {catalogue.DEPRECATION_DAYS} days" in text
