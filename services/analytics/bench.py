"""Rebuild throughput: ``python -m services.analytics.bench [ORDERS]`` (default 8,000).

Provisions a database and a RabbitMQ virtual host of its own (``CMS_DATABASE_URL`` names the
server), stores a generated history (ORDERS/4 customers, ORDERS orders with their payments, as
contract-shaped events; services/analytics/tests/dataset.py) in the customers, orders and
payments event logs, serves each source's ``read_events`` from a process of its own, runs
``cms analytics rebuild`` in another, prints its figure, and removes everything again.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("customers", "orders", "payments")

SERVE_SOURCE = """
import eventlet
eventlet.monkey_patch()
import sys
from nameko.runners import ServiceRunner
from services.analytics.tests.conftest import source_service
from shared.config import settings
current = settings()
config = current.nameko_config(DB_URIS={sys.argv[1]: current.service_url(sys.argv[1])})
runner = ServiceRunner(config)
runner.add_service(source_service(sys.argv[1]))
runner.start()
runner.wait()
"""


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True)  # noqa: S603, S607


def _wait_for_sources(amqp: str, timeout: float = 60.0) -> None:
    from nameko.standalone.rpc import ClusterRpcProxy

    deadline = time.monotonic() + timeout
    with ClusterRpcProxy({"AMQP_URI": amqp}, timeout=5) as cluster:
        for source in SOURCES:
            while True:
                try:
                    getattr(cluster, source).ping()
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)


def main(orders: int) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from services.analytics.tests.conftest import store_events
    from services.analytics.tests.dataset import generate
    from shared.config import load_settings
    from shared.db import create_service_engine
    from shared.provision import drop_database, provision

    if not shutil.which("rabbitmqctl"):
        raise SystemExit("needs rabbitmqctl (a local RabbitMQ) for a virtual host of its own")
    base = load_settings()
    vhost = f"cms_bench_{uuid.uuid4().hex[:8]}"
    url = make_url(base.database_url).set(database=f"cms_bench_{uuid.uuid4().hex[:8]}")
    amqp = f"{base.amqp_uri.rstrip('/')}/{vhost}"
    current = dataclasses.replace(
        base, database_url=url.render_as_string(hide_password=False), amqp_uri=amqp
    )
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    processes = []
    try:
        provision(current, services=[*SOURCES, "analytics"])
        history = generate(customers=max(orders // 4, 10), orders=orders)
        for source in SOURCES:
            engine = create_service_engine(current.service_url(source), schema=source)
            store_events(engine, history[source])
            # The history stands for events published long ago: without this, each source's
            # outbox relay would publish all of them during the rebuild and the figure would
            # measure the relay as much as the rebuild.
            with engine.begin() as conn:
                conn.execute(
                    text(
                        "UPDATE outbox_cursor SET published_position = "
                        "(SELECT coalesce(max(global_position), 0) FROM events)"
                    )
                )
            engine.dispose()
        print({source: len(events) for source, events in history.items()}, flush=True)
        env = {
            **os.environ,
            "CMS_DATABASE_URL": current.database_url,
            "CMS_AMQP_URI": amqp,
            "CMS_LOG_LEVEL": "WARNING",
        }
        for source in SOURCES:
            processes.append(
                subprocess.Popen(  # noqa: S603
                    [sys.executable, "-c", SERVE_SOURCE, source], env=env, cwd=ROOT
                )
            )
        _wait_for_sources(amqp)
        subprocess.run(
            [sys.executable, "-m", "shared.cli", "analytics", "rebuild", "--quiet"],
            env=env,
            cwd=ROOT,
            check=True,
        )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait()
        drop_database(current)
        _rabbitmqctl("delete_vhost", vhost)


if __name__ == "__main__":
    import eventlet

    eventlet.monkey_patch()
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8000)
