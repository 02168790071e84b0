"""Fixtures of the users service tests: a running container on this run's database, a helper
to call its entrypoints, unique users, and (for rules about "no admin" / "the last admin") a
container on a database of its own."""

import dataclasses
import uuid

import pytest
from nameko.containers import get_container_cls
from sqlalchemy.engine import make_url

from services.users.service import UsersService
from shared.testing import Caller

PASSWORD = "Velvet-Harbour-Lantern-42"


def system_actor(**extra):
    return {
        "id": "system",
        "kind": "system",
        "role": "admin",
        "ip": None,
        "request_id": None,
        "session_id": None,
        **extra,
    }


def user_actor(user, session_id=None, **extra):
    return {
        "id": user["id"],
        "kind": "user",
        "role": user["role"],
        "ip": "127.0.0.1",
        "request_id": f"req-{uuid.uuid4().hex[:8]}",
        "session_id": session_id,
        **extra,
    }


def unique_email(tag="user"):
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


def unique_ip():
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


@pytest.fixture(scope="module")
def users_container(nameko_config):
    """One users container per test module: what ``container_factory`` makes, kept for the
    module (stopping a container takes about a second; per test that would dominate the run)
    and stopped after it, so that no other suite finds a ``users`` service it did not start."""
    container = get_container_cls(nameko_config)(UsersService, nameko_config)
    container.start()
    yield container
    container.stop()


@pytest.fixture
def users(users_container):
    return Caller(users_container)


@pytest.fixture
def admin(users):
    """A fresh active admin of its own (other tests' admins do not matter to it)."""
    return users.create_user(
        actor=system_actor(),
        email=unique_email("admin"),
        name="Test Admin",
        role="admin",
        password=PASSWORD,
    )


@pytest.fixture
def make_user(users):
    def make(role="sales", password=PASSWORD, **extra):
        return users.create_user(
            actor=system_actor(),
            email=extra.pop("email", unique_email(role)),
            name=extra.pop("name", "Test User"),
            role=role,
            password=password,
            **extra,
        )

    return make


@pytest.fixture
def isolated_config(cms_settings, nameko_config):
    """nameko config whose users schema lives in a database of its own, provisioned like the
    real one: for rules that depend on every user there is (no admin yet, the last admin)."""
    from shared.provision import drop_database, provision

    url = make_url(cms_settings.database_url).set(database=f"cms_test_{uuid.uuid4().hex[:10]}")
    current = dataclasses.replace(
        cms_settings, database_url=url.render_as_string(hide_password=False)
    )
    provision(current, services=["users"], messaging=False)
    config = dict(nameko_config)
    config["DB_URIS"] = {**nameko_config["DB_URIS"], "users": current.service_url("users")}
    yield config
    drop_database(current)


@pytest.fixture
def isolated_users(container_factory, isolated_config):
    container = container_factory(UsersService, isolated_config)
    container.start()
    return Caller(container)
