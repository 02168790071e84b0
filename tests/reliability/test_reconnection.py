"""Outages without restarting the real servers: the customers service reaches PostgreSQL and
RabbitMQ through TCP proxies (shared.testing.TcpProxy) that the test cuts and restores while
the gateway and every other service keep running. During an outage callers get a 503 problem
within the RPC timeout, never a hang; afterwards the service recovers by itself."""

import os
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy.engine import make_url

from gateway.tests.conftest import PASSWORD, Api, _free_port
from shared.config import SERVICES
from shared.lifetime import die_with_parent
from shared.testing import TcpProxy
from tests.stack import ROOT

pytestmark = pytest.mark.slow
RPC_TIMEOUT = 5


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


def _spawn(name: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "shared.serve", name],
        cwd=ROOT,
        env=env,
        preexec_fn=die_with_parent,
    )


@pytest.fixture(scope="module")
def outage(nameko_config, cms_settings):
    """The gateway and every service as processes of their own (as ``cms run`` starts them);
    the customers service reaches PostgreSQL and RabbitMQ through the proxies, which run in
    this process. Yields ``(api, token, pg proxy, amqp proxy)``."""
    database = make_url(cms_settings.admin_url)
    amqp = urlsplit(nameko_config["AMQP_URI"])
    pg_proxy = TcpProxy(database.host or "127.0.0.1", database.port or 5432).start()
    amqp_proxy = TcpProxy(amqp.hostname or "127.0.0.1", amqp.port or 5672).start()
    port = _free_port()
    env = dict(
        os.environ,
        CMS_DATABASE_URL=cms_settings.database_url,
        CMS_AMQP_URI=nameko_config["AMQP_URI"],
        CMS_RPC_TIMEOUT=str(RPC_TIMEOUT),
        CMS_GATEWAY_PORT=str(port),
        CMS_LOG_LEVEL="ERROR",
    )
    behind = dict(
        env,
        CMS_DATABASE_URL=database.set(host="127.0.0.1", port=pg_proxy.port).render_as_string(
            hide_password=False
        ),
        CMS_AMQP_URI=_through(nameko_config["AMQP_URI"], amqp_proxy.port),
    )
    processes = [_spawn(name, env) for name in ("gateway", *SERVICES) if name != "customers"]
    processes.append(_spawn("customers", behind))
    api = Api(f"http://127.0.0.1:{port}", ip="127.0.0.1")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if api.call("GET", "/readyz").status_code == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
        actor = {"id": "system", "kind": "system", "role": "admin", "ip": None, "request_id": None}
        with ClusterRpcProxy(nameko_config, timeout=15) as cluster:
            cluster.users.create_user(
                actor=actor, email=email, name="Admin", role="admin", password=PASSWORD
            )
        token = api.login(email, PASSWORD)["access_token"]
        _recovers(api, token, within=60)  # the customers process is up and answering
        yield api, token, pg_proxy, amqp_proxy
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        pg_proxy.stop()
        amqp_proxy.stop()


def _create(api, token):
    started = time.monotonic()
    response = api.call(
        "POST",
        "/api/v1/customers",
        token=token,
        json={"kind": "person", "name": f"Outage {uuid.uuid4().hex[:6]}", "force": True},
    )
    return response, time.monotonic() - started


def _recovers(api, token, within: float) -> float:
    """Seconds until a command succeeds again."""
    started = time.monotonic()
    answers = []
    while time.monotonic() - started < within:
        response, took = _create(api, token)
        if response.status_code == 201:
            return time.monotonic() - started
        assert response.status_code == 503, response.text
        answers.append((round(time.monotonic() - started, 1), round(took, 1), response.text))
        time.sleep(0.5)
    raise AssertionError(f"the customers service did not recover within {within} s: {answers}")


def _unavailable(response, took):
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert took < RPC_TIMEOUT + 5, f"answered after {took:.1f} s"
    return response.json()


def _not_ready(api):
    ready = api.call("GET", "/readyz")
    assert ready.status_code == 503, ready.text
    assert "customers" in ready.json()["missing"], ready.text


def test_postgresql_outage_is_a_503_and_the_service_reconnects(outage):
    api, token, pg_proxy, _ = outage
    assert _create(api, token)[0].status_code == 201
    pg_proxy.cut()
    try:
        for _ in range(3):
            problem = _unavailable(*_create(api, token))
            assert "customers" in problem["detail"], problem
        # reads of the same service too
        listed = api.call("GET", "/api/v1/customers", token=token)
        assert listed.status_code == 503, listed.text
        _not_ready(api)
        # and the other services go on
        assert api.call("GET", "/api/v1/me", token=token).status_code == 200
    finally:
        pg_proxy.restore()
    _recovers(api, token, within=30)
    for _ in range(3):
        assert _create(api, token)[0].status_code == 201


def test_rabbitmq_outage_is_a_timeout_503_and_the_service_reconnects(outage):
    api, token, _, amqp_proxy = outage
    assert _create(api, token)[0].status_code == 201
    amqp_proxy.cut()
    try:
        problem = _unavailable(*_create(api, token))
        assert "customers" in problem["detail"], problem
        _not_ready(api)
    finally:
        amqp_proxy.restore()
    _recovers(api, token, within=60)
    for _ in range(3):
        assert _create(api, token)[0].status_code == 201
