"""End to end: ``cms run`` on an empty database brings the whole skeleton up, and Ctrl-C
stops every process cleanly."""

import re
import time
import uuid
from pathlib import Path

import psutil
import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shared.config import SERVICES
from tests.stack import start_stack


@pytest.fixture
def fresh_database_url(backing_services):
    admin_url, _ = backing_services
    name = f"cms_test_run_{uuid.uuid4().hex[:8]}"
    url = make_url(admin_url).set(database=name)
    yield url.render_as_string(hide_password=False)
    engine = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def test_run_creates_everything_serves_and_stops_on_ctrl_c(fresh_database_url, amqp_uri):
    stack = start_stack(fresh_database_url, amqp_uri)
    try:
        stack.wait_ready()
        ready = requests.get(f"{stack.url}/readyz", timeout=5).json()
        assert set(ready["services"]) == set(SERVICES)
        assert f"CMS is ready: {stack.url}" in stack.text()
        children = psutil.Process(stack.process.pid).children()
        commands = sorted(child.cmdline()[-1] for child in children)
        assert commands == sorted(["gateway", *SERVICES])
    finally:
        code = stack.interrupt()
    assert code == 0, stack.text()
    assert "stopped." in stack.text()
    assert not any(
        child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children
    )
    engine = create_engine(fresh_database_url)
    with engine.connect() as conn:
        schemas = set(
            conn.execute(text("SELECT schema_name FROM information_schema.schemata")).scalars()
        )
        for service in SERVICES:  # every service migrated to its newest revision
            versions = conn.execute(
                text(f"SELECT version_num FROM {service}.alembic_version")
            ).scalars()
            assert list(versions) == [_newest_revision(service)], service
    engine.dispose()
    assert set(SERVICES) <= schemas


def test_run_prints_the_first_admin_once_and_it_can_sign_in(fresh_database_url, amqp_uri):
    stack = start_stack(fresh_database_url, amqp_uri)
    try:
        stack.wait_ready()
        text_ = stack.text()
        assert "First admin account created" in text_
        email = re.search(r"email: +(\S+)", text_).group(1)
        password = re.search(r"password: +(\S+)", text_).group(1)
        login = requests.post(
            f"{stack.url}/api/v1/auth/login",
            json={"email": email, "password": password},
            timeout=10,
        )
        assert login.status_code == 200, login.text
        assert login.json()["user"]["role"] == "admin"
    finally:
        assert stack.interrupt() == 0
    again = start_stack(fresh_database_url, amqp_uri)
    try:
        again.wait_ready()
        assert "First admin" not in again.text()
    finally:
        assert again.interrupt() == 0


def test_services_stop_when_their_supervisor_is_killed(fresh_database_url, amqp_uri):
    stack = start_stack(fresh_database_url, amqp_uri)
    try:
        stack.wait_ready()
        children = psutil.Process(stack.process.pid).children()
        assert len(children) == len(SERVICES) + 1  # and the gateway
        stack.process.kill()
        deadline = time.monotonic() + 30
        alive = children
        while alive and time.monotonic() < deadline:
            time.sleep(0.5)  # psutil.wait_procs needs select.poll, which eventlet removes
            alive = [c for c in alive if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        assert not alive, f"still running after the supervisor died: {alive}"
    finally:
        stack.kill()


def _newest_revision(service: str) -> str:
    """The newest migration of a service (revisions are numbered like their files)."""
    versions = Path(__file__).parents[1] / "services" / service / "migrations" / "versions"
    return max(path.name.split("_", 1)[0] for path in versions.glob("[0-9]*_*.py"))


def test_a_service_process_that_dies_is_started_again(fresh_database_url, amqp_uri):
    """kill -9 of one service (a crash, the OOM killer) stopped the whole of CMS; the
    supervisor starts it again and CMS answers as before."""
    stack = start_stack(fresh_database_url, amqp_uri)
    try:
        stack.wait_ready()
        children = psutil.Process(stack.process.pid).children()
        [payments] = [child for child in children if child.cmdline()[-1] == "payments"]
        payments.kill()
        deadline = time.monotonic() + 90
        while "payments started again" not in stack.text():
            assert stack.process.poll() is None, stack.text()
            assert time.monotonic() < deadline, stack.text()
            time.sleep(0.5)
        while True:  # every service answers again, the new payments process among them
            try:
                if requests.get(f"{stack.url}/readyz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, stack.text()
            time.sleep(0.5)
        now = [c.cmdline()[-1] for c in psutil.Process(stack.process.pid).children()]
        assert sorted(now) == sorted(["gateway", *SERVICES])
        assert "payments exited (-9); starting it again in 1 s" in stack.text()
    finally:
        code = stack.interrupt()
    assert code == 0, stack.text()
