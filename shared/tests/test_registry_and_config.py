"""Event schema registry and configuration (pure unit tests)."""

import pytest
from marshmallow import Schema, fields

from shared.config import load_settings, normalise_database_url
from shared.errors import EventSchemaError
from shared.events import EventRegistry


def _registry():
    registry = EventRegistry("orders")

    @registry.register("order.placed", 1, "An order was placed")
    class PlacedV1(Schema):
        order_id = fields.String(required=True)
        total = fields.Integer(required=True)

    @registry.register("order.placed", 2)
    class PlacedV2(Schema):
        """An order was placed, with currency."""

        order_id = fields.String(required=True)
        total_minor = fields.Integer(required=True)
        currency = fields.String(required=True)

    return registry


def test_new_event_validates_against_the_latest_version():
    registry = _registry()
    event = registry.new_event(
        "order.placed", {"order_id": "o1", "total_minor": 5, "currency": "CNY"}
    )
    assert event.schema_version == 2
    assert registry.description("order.placed", 2) == "An order was placed, with currency."
    old = registry.new_event("order.placed", {"order_id": "o1", "total": 5}, version=1)
    assert old.schema_version == 1 and old.payload == {"order_id": "o1", "total": 5}


def test_invalid_payloads_and_unknown_types_are_refused():
    registry = _registry()
    with pytest.raises(EventSchemaError) as caught:
        registry.new_event("order.placed", {"order_id": "o1"})
    assert "total_minor" in caught.value.extra["errors"]
    with pytest.raises(EventSchemaError):
        registry.new_event("order.shipped", {})
    with pytest.raises(ValueError):
        registry.register("order.placed", 1)(Schema)


def test_database_urls_always_use_psycopg2():
    assert normalise_database_url("postgresql://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert normalise_database_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CMS_DATABASE_URL", "postgresql://admin:pw@db.internal:5433/crm")
    monkeypatch.setenv("CMS_GATEWAY_PORT", "9000")
    monkeypatch.setenv("CMS_DB_PASSWORD_ORDERS", "s3cret")
    current = load_settings()
    assert current.database_name == "crm"
    assert current.gateway_url == "http://127.0.0.1:9000"
    orders = current.service_url("orders")
    assert (orders.username, orders.password, orders.host, orders.port) == (
        "cms_orders",
        "s3cret",
        "db.internal",
        5433,
    )
    users = current.service_url("users")
    assert users.password and users.password != current.service_url("payments").password
    monkeypatch.setenv("CMS_GATEWAY_PORT", "eighty")
    with pytest.raises(ValueError, match="CMS_GATEWAY_PORT"):
        load_settings()


def test_a_gin_pending_list_below_postgresqls_minimum_is_refused_at_start(monkeypatch):
    monkeypatch.setenv("CMS_DB_GIN_PENDING_LIST_KB", "32")
    with pytest.raises(ValueError, match="CMS_DB_GIN_PENDING_LIST_KB must be at least 64"):
        load_settings()
    monkeypatch.setenv("CMS_DB_GIN_PENDING_LIST_KB", "64")
    assert load_settings().db_gin_pending_list_kb == 64
