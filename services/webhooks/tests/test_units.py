"""The webhooks service's pure parts: filters, backoff, signatures, URL rules."""

import time
import uuid

import pytest

from services.webhooks import config, signing
from services.webhooks.endpoints import check_url
from services.webhooks.ingest import delivery_id, matches, type_matches
from shared.errors import BadRequest


def test_type_filters():
    assert type_matches(["*"], "order.paid")
    assert type_matches(["order.*"], "order.paid")
    assert not type_matches(["order.*"], "orders_x.paid")
    assert type_matches(["customer.updated"], "customer.updated")
    assert not type_matches(["customer.updated"], "customer.updated_v2")


def test_field_filters_apply_to_events_that_report_changes():
    endpoint = {"event_types": ["customer.*"], "fields": ["company", "tags"]}
    changed = {"type": "customer.updated", "payload": {"changes": {"company": {}, "name": {}}}}
    other = {"type": "customer.updated", "payload": {"changes": {"name": {}}}}
    tagged = {"type": "customer.tagged", "payload": {"tags": ["vip"]}}
    assert matches(endpoint, changed)
    assert not matches(endpoint, other)
    assert matches(endpoint, tagged)
    assert matches({"event_types": ["*"], "fields": None}, other)


def test_backoff_doubles_up_to_the_maximum_and_covers_72_hours():
    settings = config.load({})
    waits = [settings.backoff(n) for n in range(1, 8)]
    assert waits[:4] == [10, 20, 40, 80]
    assert settings.backoff(30) == 3600
    assert settings.retry_hours >= 72


def test_settings_come_from_nameko_config_then_environment(monkeypatch):
    monkeypatch.setenv("CMS_WEBHOOK_PAUSE_AFTER", "7")
    monkeypatch.setenv("CMS_WEBHOOK_ALLOW_HTTP_LOOPBACK", "yes")
    assert config.load({}).pause_after == 7
    assert config.load({}).allow_http_loopback is True
    assert config.load({"WEBHOOK_PAUSE_AFTER": 3}).pause_after == 3


def test_signatures_verify_only_the_same_body_secret_and_a_fresh_time():
    body = b'{"type":"order.paid"}'
    now = int(time.time())
    signature = signing.sign("s3cret", now, body)
    assert signature.startswith("v1=")
    assert signing.verify("s3cret", str(now), body, signature)
    assert signing.verify("s3cret", str(now), body, "v1=old," + signature)  # rotation
    assert not signing.verify("other", str(now), body, signature)
    assert not signing.verify("s3cret", str(now), body + b" ", signature)
    assert not signing.verify(
        "s3cret", str(now - 3600), body, signing.sign("s3cret", now - 3600, body)
    )
    assert not signing.verify("s3cret", "soon", body, signature)


@pytest.mark.parametrize(
    ("url", "loopback_allowed", "ok"),
    [
        ("https://erp.example.com/hook", False, True),
        ("http://erp.example.com/hook", True, False),
        ("http://127.0.0.1:8080/hook", False, False),
        ("http://127.0.0.1:8080/hook", True, True),
        ("http://localhost/hook", True, True),
        ("https://", False, False),
        ("https://host:port/", False, False),
        ("javascript:alert(1)", True, False),
    ],
)
def test_urls(url, loopback_allowed, ok):
    settings = config.load({"WEBHOOK_ALLOW_HTTP_LOOPBACK": loopback_allowed})
    if ok:
        assert check_url(url, settings) == url
    else:
        with pytest.raises(BadRequest):
            check_url(url, settings)


def test_secrets_at_rest_are_sealed_to_their_endpoint():
    from services.webhooks import secret_store
    from shared.errors import ServiceUnavailable

    stored = secret_store.seal("whsec_abc", "endpoint-1", master="k1")
    assert "whsec_abc" not in stored and stored.startswith("v1:")
    assert secret_store.open_(stored, "endpoint-1", master="k1") == "whsec_abc"
    for endpoint, master in (("endpoint-2", "k1"), ("endpoint-1", "k2")):
        with pytest.raises(ServiceUnavailable):
            secret_store.open_(stored, endpoint, master=master)


def test_an_events_delivery_to_an_endpoint_always_has_the_same_id():
    endpoint, other, event = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert delivery_id(endpoint, event) == delivery_id(str(endpoint), str(event))
    assert delivery_id(endpoint, event) != delivery_id(other, event)
    assert delivery_id(endpoint, event) != delivery_id(endpoint, uuid.uuid4())
