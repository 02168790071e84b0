"""Root test fixtures. eventlet's monkey patch must come first (DESIGN §4).

Backing services: ``CMS_DATABASE_URL`` / ``CMS_AMQP_URI`` when set, else the local PostgreSQL
and RabbitMQ when they answer, else testcontainers (needs a Docker engine). Each test run gets
its own database and its own RabbitMQ virtual host, removed afterwards.
"""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import dataclasses  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import uuid  # noqa: E402
from urllib.parse import quote, urlsplit, urlunsplit  # noqa: E402

import pytest  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

import shared  # noqa: E402, F401 - silences eventlet's deprecation banner
from shared.config import SERVICES, load_settings, normalise_database_url  # noqa: E402
from shared.db import create_service_engine  # noqa: E402

LOCAL_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
LOCAL_AMQP_URI = "pyamqp://guest:guest@127.0.0.1:5672/"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _start_containers(request, need_db: bool, need_amqp: bool) -> tuple[str | None, str | None]:
    if not shutil.which("docker"):
        pytest.exit(
            "PostgreSQL/RabbitMQ are not reachable and there is no Docker for testcontainers: "
            "set CMS_DATABASE_URL and CMS_AMQP_URI, or start the local services",
            returncode=3,
        )
    db_url = amqp_uri = None
    if need_db:
        from testcontainers.postgres import PostgresContainer

        postgres = PostgresContainer("postgres:16-alpine", driver="psycopg2")
        postgres.start()
        request.addfinalizer(postgres.stop)
        db_url = postgres.get_connection_url()
    if need_amqp:
        from testcontainers.rabbitmq import RabbitMqContainer

        rabbit = RabbitMqContainer("rabbitmq:3.13-alpine")
        rabbit.start()
        request.addfinalizer(rabbit.stop)
        host, port = rabbit.get_container_host_ip(), rabbit.get_exposed_port(5672)
        amqp_uri = f"pyamqp://guest:guest@{host}:{port}/"
    return db_url, amqp_uri


@pytest.fixture(scope="session")
def backing_services(request):
    """``(admin database URL, AMQP URI)`` of servers the tests may use."""
    db_url = os.environ.get("CMS_DATABASE_URL") or (
        LOCAL_DATABASE_URL if _reachable("127.0.0.1", 5432) else None
    )
    amqp_uri = os.environ.get("CMS_AMQP_URI") or (
        LOCAL_AMQP_URI if _reachable("127.0.0.1", 5672) else None
    )
    if db_url is None or amqp_uri is None:
        started_db, started_amqp = _start_containers(request, db_url is None, amqp_uri is None)
        db_url = db_url or started_db
        amqp_uri = amqp_uri or started_amqp
    return normalise_database_url(db_url), amqp_uri


def _rabbitmqctl(*args: str) -> bool:
    if not shutil.which("rabbitmqctl"):
        return False
    done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, check=False)
    return done.returncode == 0


def make_vhost(base: str, request) -> str:
    """A RabbitMQ virtual host of its own (when rabbitmqctl can make one), removed at the end."""
    vhost = f"cms_test_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(base)
    user = parts.username or "guest"
    if parts.hostname in ("127.0.0.1", "localhost") and _rabbitmqctl("add_vhost", vhost):
        _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        request.addfinalizer(lambda: _rabbitmqctl("delete_vhost", vhost))
        return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))
    return base


@pytest.fixture(scope="session")
def new_vhost(backing_services, request):
    """``new_vhost()``: the URI of another RabbitMQ virtual host, removed after the run."""
    return lambda: make_vhost(backing_services[1], request)


@pytest.fixture(scope="session")
def amqp_uri(backing_services, request):
    """This run's RabbitMQ virtual host."""
    return make_vhost(backing_services[1], request)


def provisioned_database(base, amqp_uri: str, request, **provision_options):
    """``base`` settings on a new ``cms_test_<random>`` database of the same server and on
    ``amqp_uri``, provisioned (``shared.provision.provision`` options), dropped after the run
    unless ``CMS_KEEP_TEST_DATABASE`` is set."""
    from shared.provision import drop_database, provision

    url = make_url(base.database_url).set(database=f"cms_test_{uuid.uuid4().hex[:10]}")
    current = dataclasses.replace(
        base, database_url=url.render_as_string(hide_password=False), amqp_uri=amqp_uri
    )
    provision(current, **provision_options)
    if not os.environ.get("CMS_KEEP_TEST_DATABASE"):
        request.addfinalizer(lambda: drop_database(current))
    return current


@pytest.fixture(scope="session")
def cms_settings(backing_services, amqp_uri, request):
    """Settings for this run: a database of its own, provisioned like a real deployment."""
    base = dataclasses.replace(load_settings(), database_url=backing_services[0])
    return provisioned_database(base, amqp_uri, request)


@pytest.fixture(scope="session")
def isolated_settings(cms_settings, new_vhost, request):
    """``isolated_settings(["users"], messaging=False)``: settings of another database (and,
    with messaging, another virtual host) provisioned for those services, dropped after the
    run. For tests that write thousands of events, or need to know every row."""

    def make(services: list[str], messaging: bool = True):
        amqp = new_vhost() if messaging else cms_settings.amqp_uri
        return provisioned_database(
            cms_settings, amqp, request, services=services, messaging=messaging
        )

    return make


@pytest.fixture(scope="session")
def nameko_config(cms_settings):
    """The nameko config of this run: its broker vhost, its database, short timeouts."""
    return cms_settings.nameko_config(
        DB_URIS={service: cms_settings.service_url(service) for service in SERVICES},
        RPC_TIMEOUT=5,
        RELAY_INTERVAL=0.2,
        WEB_SERVER_ADDRESS="127.0.0.1:0",
    )


@pytest.fixture(scope="session")
def service_engine(cms_settings):
    """``service_engine("orders")``: an engine connected as that service's role."""
    engines = {}

    def get(service: str):
        if service not in engines:
            engines[service] = create_service_engine(
                cms_settings.service_url(service), schema=service, pool_size=10
            )
        return engines[service]

    yield get
    for engine in engines.values():
        engine.dispose()


@pytest.fixture
def users_engine(service_engine):
    return service_engine("users")


@pytest.fixture
def scratch_table(service_engine):
    """A throw-away table in the analytics schema, for consumer tests."""
    engine = service_engine("analytics")
    name = f"scratch_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {name} (key text PRIMARY KEY, hits int NOT NULL)"))
    yield name
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {name}"))


LIVE_ADMIN_EMAIL = "admin@example.com"
LIVE_ADMIN_PASSWORD = "Correct-Horse-Battery-42"


@pytest.fixture(scope="session")
def live_stack(backing_services, request):
    """The whole system started with ``cms run`` (every service and the gateway as separate
    processes) on a database and virtual host of its own; ``.url``, ``.admin_email``,
    ``.admin_password``."""
    from shared.provision import drop_database
    from tests.stack import start_stack

    admin_url, base_amqp = backing_services
    database = f"cms_test_live_{uuid.uuid4().hex[:8]}"
    url = make_url(admin_url).set(database=database).render_as_string(hide_password=False)
    stack = start_stack(
        url,
        make_vhost(base_amqp, request),
        CMS_ADMIN_EMAIL=LIVE_ADMIN_EMAIL,
        CMS_ADMIN_PASSWORD=LIVE_ADMIN_PASSWORD,
        # every browser flow signs in from 127.0.0.1: more than the default 20 sign-ins per
        # address in 5 minutes (the limiter has tests of its own)
        CMS_LOGIN_RATE_LIMIT="1000",
    )
    stack.admin_email, stack.admin_password = LIVE_ADMIN_EMAIL, LIVE_ADMIN_PASSWORD
    try:
        stack.wait_ready()
    except Exception:
        stack.interrupt()
        raise
    yield stack
    stack.interrupt()
    drop_database(dataclasses.replace(load_settings(), database_url=url))


def pytest_runtest_logstart(nodeid, location):
    """With ``CMS_TEST_PROGRESS`` (``tests.parallel`` sets it), the test now running is
    written there, so a group stopped at the suite's deadline can say which test hung."""
    path = os.environ.get("CMS_TEST_PROGRESS")
    if path:
        with open(path, "w", encoding="utf-8") as progress:
            progress.write(nodeid)
