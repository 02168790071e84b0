"""Fixtures of the analytics tests: a database and a RabbitMQ virtual host of their own, the
customers, orders and payments event stores filled with a generated contract-shaped history,
those services' event mechanism running (relay to RabbitMQ, ``read_events`` over RPC), and
the analytics service consuming them."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import time
import uuid
from urllib.parse import quote, urlsplit, urlunsplit

import eventlet
import pytest
from nameko.containers import get_container_cls
from nameko.standalone.rpc import ClusterRpcProxy
from psycopg2.extras import execute_values
from sqlalchemy.engine import make_url

from services.analytics.service import AnalyticsService
from services.analytics.tests.dataset import generate
from shared.db import create_service_engine
from shared.service import EventSourcedService

SOURCES = ("customers", "orders", "payments")


def source_service(name: str) -> type:
    """The event mechanism of a source service (its event store, relay and ``read_events``)
    without its domain: the analytics tests feed it generated events, and need nothing else
    of the service that is built beside them."""
    return type(f"{name.title()}Events", (EventSourcedService,), {"name": name})


def _rabbitmqctl(*args: str) -> bool:
    if not shutil.which("rabbitmqctl"):
        return False
    return subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def world_config(cms_settings, nameko_config):
    """nameko config on a database and virtual host of their own, provisioned for the three
    sources and analytics (so no other test's events reach these projections)."""
    from shared.provision import drop_database, provision

    url = make_url(cms_settings.database_url).set(database=f"cms_test_{uuid.uuid4().hex[:10]}")
    amqp = cms_settings.amqp_uri
    parts = urlsplit(amqp)
    vhost = f"cms_test_{uuid.uuid4().hex[:10]}"
    made_vhost = parts.hostname in ("127.0.0.1", "localhost") and _rabbitmqctl("add_vhost", vhost)
    if made_vhost:
        _rabbitmqctl("set_permissions", "-p", vhost, parts.username or "guest", ".*", ".*", ".*")
        amqp = urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))
    current = dataclasses.replace(
        cms_settings, database_url=url.render_as_string(hide_password=False), amqp_uri=amqp
    )
    provision(current, services=[*SOURCES, "analytics"])
    config = dict(nameko_config)
    config["AMQP_URI"] = amqp
    config["CMS_TEST_DATABASE_URL"] = current.database_url
    config["DB_URIS"] = {
        **nameko_config["DB_URIS"],
        **{name: current.service_url(name) for name in (*SOURCES, "analytics")},
    }
    yield config
    drop_database(current)
    if made_vhost:
        _rabbitmqctl("delete_vhost", vhost)


@pytest.fixture(scope="module")
def engines(world_config):
    made = {
        name: create_service_engine(world_config["DB_URIS"][name], schema=name, pool_size=3)
        for name in (*SOURCES, "analytics")
    }
    yield made
    for engine in made.values():
        engine.dispose()


def store_events(engine, envelopes) -> None:
    """Append envelopes to a source's event log as that service would have (same positions)."""
    connection = engine.raw_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute("LOCK TABLE events IN EXCLUSIVE MODE")
            execute_values(
                cursor,
                "INSERT INTO events (global_position, event_id, stream_type, stream_id, "
                "stream_version, event_type, schema_version, payload, metadata, occurred_at) "
                "VALUES %s",
                [
                    (
                        e["position"],
                        e["event_id"],
                        e["stream_type"],
                        e["stream_id"],
                        e["stream_version"],
                        e["type"],
                        e["schema_version"],
                        json.dumps(e["payload"]),
                        json.dumps(e["metadata"]),
                        e["occurred_at"],
                    )
                    for e in envelopes
                ],
                page_size=1000,
            )
            cursor.execute(
                "SELECT setval('events_global_position_seq', "
                "(SELECT max(global_position) FROM events))"
            )
        connection.commit()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def dataset():
    return generate()


#: The share of the history stored before analytics starts (caught up through read_events);
#: the rest arrives live through RabbitMQ, one event per delivery.
EARLIER = 0.8


@pytest.fixture(scope="module")
def history(engines, dataset):
    for name in SOURCES:
        events = dataset[name]
        store_events(engines[name], events[: int(len(events) * EARLIER)])
    return dataset


@pytest.fixture(scope="module")
def running(world_config, history):
    """The three sources' event mechanism and the analytics service, running."""
    containers = []
    for service in (*(source_service(name) for name in SOURCES), AnalyticsService):
        container = get_container_cls(world_config)(service, world_config)
        container.start()
        containers.append(container)
    yield containers
    for container in reversed(containers):
        container.stop()


def processed(engine) -> int:
    with engine.connect() as connection:
        return connection.exec_driver_sql(
            "SELECT count(*) FROM processed_events WHERE consumer = 'analytics'"
        ).scalar()


def wait_until(predicate, timeout: float = 240.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        eventlet.sleep(0.2)


@pytest.fixture(scope="module")
def live(running, engines, dataset, world_config):
    """The generated history stored at its sources, delivered to analytics through RabbitMQ
    (and catch-up), and every event applied."""
    for name in SOURCES:
        events = dataset[name]
        store_events(engines[name], events[int(len(events) * EARLIER) :])
    total = sum(len(events) for events in dataset.values())
    wait_until(lambda: processed(engines["analytics"]) >= total, what="every event applied")
    return dataset


@pytest.fixture(scope="module")
def cluster(world_config):
    with ClusterRpcProxy(world_config, timeout=60) as proxy:
        yield proxy
