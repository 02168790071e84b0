"""Fixtures of the reliability tests: the gateway tests' in-process system (``api``,
``admin``), and a whole system run by ``cms run --processes 2`` on a database and RabbitMQ
virtual host of its own (``scaled_stack``)."""

import dataclasses
import shutil
import subprocess
import uuid
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from sqlalchemy.engine import make_url

from gateway.tests.conftest import admin, api  # noqa: F401 - fixtures
from shared.config import load_settings


def own_vhost(base: str, request) -> str:
    """A RabbitMQ virtual host of its own (local broker), removed at the end."""
    parts = urlsplit(base)
    if parts.hostname not in ("127.0.0.1", "localhost") or not shutil.which("rabbitmqctl"):
        pytest.skip("needs a local RabbitMQ with rabbitmqctl for a virtual host of its own")
    vhost = f"cms_test_rel_{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(
        [
            "rabbitmqctl",
            "-q",
            "set_permissions",
            "-p",
            vhost,
            parts.username or "guest",
            ".*",
            ".*",
            ".*",
        ],
        check=True,
        capture_output=True,
    )
    request.addfinalizer(
        lambda: subprocess.run(
            ["rabbitmqctl", "-q", "delete_vhost", vhost], check=False, capture_output=True
        )
    )
    return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))


def own_database(admin_url: str, request, stem: str) -> str:
    from shared.provision import drop_database

    url = make_url(admin_url).set(database=f"cms_test_{stem}_{uuid.uuid4().hex[:8]}")
    rendered = url.render_as_string(hide_password=False)
    request.addfinalizer(
        lambda: drop_database(dataclasses.replace(load_settings(), database_url=rendered))
    )
    return rendered


@pytest.fixture(scope="module")
def scaled_stack(backing_services, request):
    """Every service in two processes, and the gateway, started by ``cms run``."""
    from tests.reliability.helpers import start_scaled_stack, stop

    admin_url, base_amqp = backing_services
    database = own_database(admin_url, request, "scaled")
    stack = start_scaled_stack(database, own_vhost(base_amqp, request), processes=2)
    try:
        stack.wait_ready(timeout=180)
    except Exception:
        stop(stack)
        raise
    yield stack
    stop(stack)
