"""Fixtures of the customers service tests: a running container on this run's database, a
helper to call its entrypoints as a given principal, unique test data, and a database of its
own for tests that need to know every row (rebuild, the index plans on seeded data)."""

import random
import uuid

import pytest
from nameko.containers import get_container_cls

from services.customers.service import CustomersService
from shared.db import create_service_engine
from shared.testing import Caller

#: Uncommon characters, so that a random two-character name is unique within a test run.
RARE = "穆琳璇瑾珏琮瑜璐琦瑶婕妤婳嫣姝媛翊昶晔曦旻昀暄煦炜烨焱钰铭锴镕锦鑫钊"


def principal(role="admin", user_id=None):
    return {"id": user_id or str(uuid.uuid4()), "role": role, "kind": "user"}


def actor_of(who, **extra):
    return {
        "id": who["id"],
        "kind": who.get("kind", "user"),
        "role": who["role"],
        "ip": "127.0.0.1",
        "request_id": f"req-{uuid.uuid4().hex[:8]}",
        "session_id": None,
        **extra,
    }


def as_(who):
    """The ``actor`` and ``viewer`` arguments of a call made by ``who``."""
    return {"actor": actor_of(who), "viewer": who}


def unique_email(tag="c"):
    return f"{tag}-{uuid.uuid4().hex[:12]}@Example.COM"


def unique_mobile():
    """A valid Chinese mobile number, national form: 139 + 8 digits."""
    return f"139{random.randrange(10**8):08d}"


def unique_chinese_name():
    return "".join(random.sample(RARE, 2))


def unique_tag():
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def customers_container(nameko_config):
    """One customers container per test module (stopping one takes about a second), stopped
    after it so that no other suite finds a ``customers`` service it did not start."""
    container = get_container_cls(nameko_config)(CustomersService, nameko_config)
    container.start()
    yield container
    container.stop()


@pytest.fixture
def customers(customers_container):
    return Caller(customers_container)


@pytest.fixture
def customers_engine(service_engine):
    return service_engine("customers")


@pytest.fixture
def admin():
    return principal("admin")


@pytest.fixture
def make_customer(customers, admin):
    """Create a customer as ``by`` (an admin by default) with unique contacts."""

    def make(by=None, force=False, **data):
        data.setdefault("name", f"Test {uuid.uuid4().hex[:6]}")
        data.setdefault("emails", [{"address": unique_email()}])
        data.setdefault("phones", [{"number": unique_mobile()}])
        return customers.create_customer(**as_(by or admin), data=data, force=force)

    return make


@pytest.fixture(scope="module")
def isolated_config(isolated_settings, nameko_config):
    """nameko config whose customers schema lives in a database of its own, on a RabbitMQ
    virtual host of its own, provisioned like the real ones: what its tests write (thousands of
    rows, some of them) never reaches the run's shared database or the queues of the services
    that later tests start."""
    current = isolated_settings(["customers"])
    config = dict(nameko_config, AMQP_URI=current.amqp_uri)
    config["DB_URIS"] = {**nameko_config["DB_URIS"], "customers": current.service_url("customers")}
    return config


@pytest.fixture(scope="module")
def isolated_engine(isolated_config):
    engine = create_service_engine(isolated_config["DB_URIS"]["customers"], schema="customers")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def isolated_customers(isolated_config):
    container = get_container_cls(isolated_config)(CustomersService, isolated_config)
    container.start()
    yield Caller(container)
    container.stop()
