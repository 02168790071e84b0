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
    assert config.load({}).pause_after_hours == 72  # the README's retry promise
    monkeypatch.setenv("CMS_WEBHOOK_PAUSE_AFTER_HOURS", "24")
    monkeypatch.setenv("CMS_WEBHOOK_ALLOW_HTTP_LOOPBACK", "yes")
    assert config.load({}).pause_after_hours == 24
    assert config.load({}).allow_http_loopback is True
    assert config.load({"WEBHOOK_PAUSE_AFTER_HOURS": 3}).pause_after_hours == 3


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
        ("https://203.0.113.9/hook", False, False),  # TEST-NET: reserved
        ("https://8.8.8.8/hook", False, True),
        ("https://[2606:4700::1111]/hook", False, True),
        # the loopback setting allows the loopback over https too, and nothing else
        ("https://127.0.0.1:8443/hook", True, True),
        ("https://[::1]/hook", True, True),
        ("http://10.0.0.5/hook", True, False),
        ("https://169.254.169.254/latest/meta-data/", True, False),
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


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
        "https://10.1.2.3/hook",
        "https://192.168.1.10/hook",
        "https://172.16.0.1/hook",
        "https://172.31.255.254/hook",
        "https://127.0.0.1/hook",
        "https://127.8.9.10:8443/hook",
        "https://localhost/hook",
        "https://LOCALHOST./hook",
        "https://api.localhost/hook",
        "https://[::1]/hook",
        "https://[fd00::1]/hook",  # IPv6 unique local
        "https://[fe80::1]/hook",  # IPv6 link-local
        "https://[::ffff:10.0.0.1]/hook",  # IPv4-mapped
        "https://[::]/hook",
        "https://0.0.0.0/hook",
        "https://100.64.0.1/hook",  # carrier-grade NAT
        "https://224.0.0.1/hook",  # multicast
        "https://2130706433/hook",  # 127.0.0.1 spelled as a number
        "https://127.1/hook",
        "https://0x7f.0.0.1/hook",
        "https://user:s3cr3tpw@erp.example.com/hook",
        "https://token@erp.example.com/hook",
    ],
)
def test_private_internal_and_credentialled_urls_are_refused(url):
    with pytest.raises(BadRequest) as refused:
        check_url(url, config.load({}))
    assert list(refused.value.extra["errors"]) == ["url"]
    assert "s3cr3tpw" not in str(refused.value.extra)


def test_a_stored_url_with_credentials_is_shown_masked():
    from services.webhooks.targets import mask

    assert mask("https://user:pass@erp.example.com/h?q=1") == "https://***@erp.example.com/h?q=1"
    assert mask("https://erp.example.com/h") == "https://erp.example.com/h"


def test_event_types_must_be_in_the_catalogue():
    from services.webhooks.endpoints import check_event_types

    known = frozenset({"order.paid", "order.placed", "customer.updated"})
    assert check_event_types(["order.*", "*", "order.paid", "order.*"], known) == [
        "*",
        "order.*",
        "order.paid",
    ]
    with pytest.raises(BadRequest) as unknown:
        check_event_types(["order.paidd", "orderz.*", "customer.updated"], known)
    messages = unknown.value.extra["errors"]["event_types"]
    assert len(messages) == 2
    assert "order.paidd" in messages[0] and "order.paid?" in messages[0]
    assert "orderz.*" in messages[1]


def test_the_catalogue_knows_the_event_types_the_readme_names():
    from services.webhooks.endpoints import check_event_types

    assert check_event_types(["order.*", "customer.updated", "payment.captured"])
