"""Raw baselines: what PostgreSQL and RabbitMQ give on this machine without CMS in between.

- ``pg_insert``: single-row ``INSERT``s with psycopg2 in autocommit (each its own transaction),
  ``concurrency`` connections. ``temporary=True`` writes a temporary table (not WAL-logged, so
  a commit does not wait for a WAL flush: the statement round trip); ``temporary=False`` a
  regular table, where every commit waits for its WAL flush, as every CMS write does.
- ``amqp_publish``: persistent messages of the size of an event envelope, each published with
  publisher confirms (kombu ``confirm_publish``: ``publish`` returns when the broker has taken
  responsibility for it) to a durable queue, ``concurrency`` connections, as the outbox relay
  publishes.
"""

from __future__ import annotations

import json
import uuid

import psycopg2
from kombu import Connection, Exchange, Producer, Queue
from sqlalchemy.engine import make_url

from bench.load import OK, Measurement, run_threads

EXCHANGE = Exchange("bench.publish", type="topic", durable=True)
QUEUE = Queue("bench.publish", EXCHANGE, routing_key="#", durable=True)
ENVELOPE = {
    "event_id": "00000000-0000-0000-0000-000000000000",
    "type": "customer.registered",
    "schema_version": 1,
    "source": "customers",
    "stream_type": "customer",
    "stream_id": "00000000-0000-0000-0000-000000000000",
    "stream_version": 1,
    "position": 1,
    "occurred_at": "2026-11-27T03:00:00.123456Z",
    "metadata": {"request_id": "bench", "correlation_id": "bench", "actor_id": "bench"},
    "payload": {"name": "x" * 300, "tags": ["vip"], "emails": ["sealed"], "phones": ["sealed"]},
}


def _connect(database_url: str):
    url = make_url(database_url)
    connection = psycopg2.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        dbname=url.database,
        application_name="cms-bench",
    )
    connection.autocommit = True
    return connection


def pg_insert(
    database_url: str, concurrency: int, duration: float, warmup: float, temporary: bool = True
) -> Measurement:
    table = "bench_insert_logged"
    if not temporary:
        setup = _connect(database_url)
        with setup.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (id bigserial PRIMARY KEY, "
                "payload jsonb NOT NULL, at timestamptz NOT NULL DEFAULT now())"
            )
        setup.close()
    payload = json.dumps({"kind": "bench", "name": "x" * 200})

    def make_worker(number: int):
        connection = _connect(database_url)
        name = "bench_insert" if temporary else table
        cursor = connection.cursor()
        if temporary:
            cursor.execute(
                "CREATE TEMPORARY TABLE bench_insert (id bigserial PRIMARY KEY, "
                "payload jsonb NOT NULL, at timestamptz NOT NULL DEFAULT now())"
            )
        statement = f"INSERT INTO {name} (payload) VALUES (%s)"  # noqa: S608 - fixed names

        def call(iteration: int):
            cursor.execute(statement, (payload,))
            return OK

        def close():
            cursor.close()
            connection.close()

        return call, close

    try:
        return run_threads(make_worker, concurrency, duration, warmup)
    finally:
        if not temporary:
            cleanup = _connect(database_url)
            with cleanup.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cleanup.close()


def amqp_publish(amqp_uri: str, concurrency: int, duration: float, warmup: float) -> Measurement:
    with Connection(amqp_uri) as connection:
        QUEUE.bind(connection.channel()).declare()
    body = json.dumps(ENVELOPE)

    def make_worker(number: int):
        connection = Connection(amqp_uri, transport_options={"confirm_publish": True})
        connection.connect()
        producer = Producer(connection.channel(), exchange=EXCHANGE)

        def call(iteration: int):
            producer.publish(
                body,
                routing_key="customer.registered",
                delivery_mode=2,
                content_type="application/json",
                content_encoding="utf-8",
                message_id=str(uuid.uuid4()),
            )
            return OK

        return call, connection.release

    try:
        return run_threads(make_worker, concurrency, duration, warmup)
    finally:
        with Connection(amqp_uri) as connection:
            QUEUE.bind(connection.channel()).delete()
