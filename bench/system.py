"""The system under test: a database and a RabbitMQ virtual host of its own, ``cms run`` on
them, the memory and CPU of its processes, and a teardown that leaves nothing behind."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psutil
from sqlalchemy.engine import make_url

from shared.config import Settings, load_settings, normalise_database_url
from shared.lifetime import die_with_parent

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
DEFAULT_AMQP_URI = "pyamqp://guest:guest@127.0.0.1:5672/"
BENCH_ADMIN_EMAIL = "bench-admin@example.com"
#: Sign-in attempts one address may make per window while the bench runs (CMS_LOGIN_RATE_LIMIT):
#: every bench client comes from 127.0.0.1, and the login phase signs in thousands of times.
BENCH_LOGIN_RATE_LIMIT = 100_000_000
MB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rabbitmqctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603
        ["rabbitmqctl", "-q", *args],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


class SetupError(RuntimeError):
    """The bench cannot run here (and says why)."""


def create_vhost(base_uri: str, name: str) -> str:
    """A RabbitMQ virtual host of our own (``rabbitmqctl add_vhost``); returns its URI."""
    parts = urlsplit(base_uri)
    if parts.hostname not in ("127.0.0.1", "localhost") or not shutil.which("rabbitmqctl"):
        raise SetupError(
            "the bench makes a RabbitMQ virtual host of its own with rabbitmqctl: it needs a "
            f"local RabbitMQ and rabbitmqctl on the PATH (CMS_AMQP_URI is {base_uri})"
        )
    done = rabbitmqctl("add_vhost", name)
    if done.returncode != 0:
        raise SetupError(f"rabbitmqctl add_vhost {name} failed: {done.stderr.strip()}")
    user = parts.username or "guest"
    rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
    return urlunsplit(parts._replace(path="/" + quote(name, safe="")))


def delete_vhost(name: str) -> None:
    rabbitmqctl("delete_vhost", name)


def queued_messages(vhost: str) -> int | None:
    """Messages ready or unacknowledged in the vhost's queues; None when rabbitmqctl cannot
    tell."""
    done = rabbitmqctl("list_queues", "-p", vhost, "messages", "--no-table-headers")
    if done.returncode != 0:
        return None
    counts = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    return sum(int(count) for count in counts if count.isdigit())


@dataclass
class System:
    """One bench system. ``prepare()`` makes the database settings and the vhost,
    ``start()`` runs ``cms run``, ``close()`` undoes everything that was done (idempotent)."""

    admin_url: str
    base_amqp: str
    name: str = field(default_factory=lambda: f"cms_bench_{uuid.uuid4().hex[:10]}")
    admin_email: str = BENCH_ADMIN_EMAIL
    admin_password: str = field(default_factory=lambda: "Bench-" + secrets.token_urlsafe(18))
    login_rate_limit: int = BENCH_LOGIN_RATE_LIMIT
    amqp_uri: str | None = None
    settings: Settings | None = None
    process: subprocess.Popen | None = None
    port: int = 0
    output: list[str] = field(default_factory=list)
    keep_database: bool = False
    reuse_database: bool = False
    processes_per_service: int = 1
    _vhost_made: bool = False
    _database_made: bool = False

    @classmethod
    def from_environment(cls) -> System:
        admin_url = normalise_database_url(
            os.environ.get("CMS_DATABASE_URL") or DEFAULT_DATABASE_URL
        )
        system = cls(
            admin_url=admin_url, base_amqp=os.environ.get("CMS_AMQP_URI") or DEFAULT_AMQP_URI
        )
        system.admin_email = os.environ.get("CMS_ADMIN_EMAIL") or BENCH_ADMIN_EMAIL
        system.admin_password = os.environ.get("CMS_ADMIN_PASSWORD") or system.admin_password
        return system

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        return (
            make_url(self.admin_url).set(database=self.name).render_as_string(hide_password=False)
        )

    def prepare(self) -> Settings:
        """The vhost, and the settings of the bench database (provisioned by the caller)."""
        self.amqp_uri = create_vhost(self.base_amqp, self.name)
        self._vhost_made = True
        self.port = free_port()
        # from here on, close() drops the database (IF EXISTS), unless it was there before
        self._database_made = not self.reuse_database
        self.settings = dataclasses.replace(
            load_settings(),
            database_url=self.database_url,
            amqp_uri=self.amqp_uri,
            gateway_port=self.port,
        )
        return self.settings

    def environment(self) -> dict[str, str]:
        return dict(
            os.environ,
            CMS_DATABASE_URL=self.database_url,
            CMS_AMQP_URI=self.amqp_uri or "",
            CMS_GATEWAY_HOST="127.0.0.1",
            CMS_GATEWAY_PORT=str(self.port),
            CMS_ADMIN_EMAIL=self.admin_email,
            CMS_ADMIN_PASSWORD=self.admin_password,
            CMS_LOGIN_RATE_LIMIT=str(self.login_rate_limit),
            CMS_LOG_LEVEL=os.environ.get("CMS_LOG_LEVEL") or "WARNING",
            PYTHONUNBUFFERED="1",
        )

    def start(self, timeout: float = 600.0) -> None:
        """``cms run`` (it provisions again, idempotently, and creates the admin), until the
        gateway's /readyz answers 200. The seeded events reach every consumer at start, so
        the services may be slow to answer for a while."""
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "shared.cli",
                "run",
                "--ready-timeout",
                f"{timeout:g}",
                "--processes",
                str(self.processes_per_service),
            ],
            cwd=ROOT,
            env=self.environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=die_with_parent,  # the stack must not outlive the bench
        )

        def pump() -> None:
            assert self.process and self.process.stdout
            for line in self.process.stdout:
                self.output.append(line)

        threading.Thread(target=pump, daemon=True, name="cms-run-output").start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SetupError(f"cms run exited early:\n{self.tail()}")
            if any("CMS is ready" in line for line in self.output) and self._ready():
                return
            time.sleep(0.3)
        raise SetupError(f"cms run was not ready after {timeout:g} s:\n{self.tail()}")

    def add_admin(self) -> None:
        """A new admin of the bench's own (``bench-<random>@example.com``) in a reused
        database, whose first admin's password this run does not know; over RPC, as
        ``cms create-admin`` does."""
        from nameko.standalone.rpc import ClusterRpcProxy

        self.admin_email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        actor = {"id": "system", "kind": "system", "role": "admin", "ip": None}
        with ClusterRpcProxy({"AMQP_URI": self.amqp_uri, "serializer": "json"}, timeout=30) as rpc:
            rpc.users.create_user(
                actor={**actor, "request_id": None},
                email=self.admin_email,
                name="bench",
                role="admin",
                password=self.admin_password,
            )

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=3) as response:  # noqa: S310
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def tail(self, lines: int = 40) -> str:
        return "".join(self.output[-lines:])

    def service_processes(self) -> dict[str, psutil.Process]:
        """``{"users": Process, ..., "gateway": Process}``: the processes ``cms run`` started."""
        if self.process is None:
            return {}
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return {}
        found: dict[str, psutil.Process] = {}
        for child in children:
            with contextlib.suppress(psutil.Error):
                command = child.cmdline()
                if "shared.serve" in command:
                    name = command[-1]
                    key, number = name, 1
                    while key in found:
                        number += 1
                        key = f"{name}-{number}"
                    found[key] = child
        return found

    def stop(self, grace: float = 30.0) -> None:
        """Ctrl-C to ``cms run`` (it stops its services), then SIGKILL whatever of the process
        tree is still there."""
        if self.process is None:
            return
        try:
            tree = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            tree = []
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        for process in tree:
            with contextlib.suppress(psutil.Error):
                process.kill()
        with contextlib.suppress(ProcessLookupError, OSError):
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        psutil.wait_procs(tree, timeout=10)

    def close(self) -> list[str]:
        """Stop the stack, drop the database, delete the vhost; returns what could not be
        undone (for the report), never raises."""
        problems: list[str] = []
        try:
            self.stop()
        except Exception as exc:  # noqa: BLE001 - go on tearing down
            problems.append(f"stopping cms run: {exc}")
        if self._database_made and self.settings is not None and self.keep_database:
            problems.append(f"database {self.name} kept (--keep-database): drop it yourself")
        elif self._database_made and self.settings is not None:
            try:
                from shared.provision import drop_database

                drop_database(self.settings)
                self._database_made = False
            except Exception as exc:  # noqa: BLE001
                problems.append(f"dropping database {self.name}: {exc}")
        if self._vhost_made:
            try:
                delete_vhost(self.name)
                self._vhost_made = False
            except Exception as exc:  # noqa: BLE001
                problems.append(f"deleting vhost {self.name}: {exc}")
        return problems


def high_water_mark(pid: int) -> int | None:
    """The peak resident set size of a process since it started, as the kernel keeps it
    (``VmHWM`` in ``/proc/<pid>/status``, Linux); ``None`` elsewhere."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


class Sampler:
    """Samples the RSS of every service process (and the gateway) in a background thread;
    keeps the peak and the last value of each, and the kernel's high-water mark, which also
    catches peaks shorter than the sampling interval (an argon2 hash holds 64 MiB for ~0.1 s).
    """

    def __init__(self, system: System, interval: float = 0.5):
        self.system = system
        self.interval = interval
        self.peak: dict[str, int] = {}
        self.last: dict[str, int] = {}
        self.high: dict[str, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")
        self._processes: dict[str, psutil.Process] = {}

    def start(self) -> None:
        self._processes = self.system.service_processes()
        self._thread.start()

    def sample(self) -> None:
        for name, process in self._processes.items():
            try:
                rss = process.memory_info().rss
            except psutil.Error:
                continue
            self.last[name] = rss
            self.peak[name] = max(rss, self.peak.get(name, 0))
            mark = high_water_mark(process.pid)
            if mark is not None:
                self.high[name] = max(mark, self.high.get(name, 0))
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def figures(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "peak_mb": round(max(self.peak[name], self.high.get(name, 0)) / MB, 1),
                "sampled_peak_mb": round(self.peak[name] / MB, 1),
                "last_mb": round(self.last.get(name, 0) / MB, 1),
            }
            for name in sorted(self.peak, key=_process_order)
        }


def _process_order(name: str) -> tuple[int, str]:
    order = ("gateway", "users", "customers", "orders", "payments", "analytics")
    base = name.split("-")[0]
    return (order.index(base) if base in order else len(order), name)


#: The machine counts as quiet below this share of one core (the services' timers and
#: RabbitMQ's own housekeeping stay well under it).
QUIET_PERCENT = 40.0


def settle(timeout: float = 60.0, window: float = 0.25) -> float:
    """Wait until the machine is quiet (CPU below ``QUIET_PERCENT`` of one core over one
    ``window``): what the previous phase set going after its answers (a payment's capture
    800 ms later, the consumers of its events) must not be measured as part of the next
    phase. Returns the seconds waited (``timeout`` at most)."""
    started = time.perf_counter()
    cores = psutil.cpu_count() or 1
    psutil.cpu_percent(None)
    while True:
        time.sleep(window)
        busy = psutil.cpu_percent(None) * cores
        waited = time.perf_counter() - started
        if busy < QUIET_PERCENT or waited >= timeout:
            return round(waited, 1)


class CpuMeter:
    """CPU time used during a phase, in percent of one core (this machine has
    ``psutil.cpu_count()`` of them): the whole machine, each CMS process, PostgreSQL's and
    RabbitMQ's processes (those alive at the end of the phase), the bench itself, and
    ``other``: the rest (other programs, server processes that ended during the phase, such
    as the backends of the raw baselines' own connections)."""

    def __init__(self, system: System):
        self.system = system

    def _snapshot(self) -> tuple[float, float, dict[str, float]]:
        times = psutil.cpu_times()
        busy = sum(times) - times.idle - getattr(times, "iowait", 0.0)
        per: dict[str, float] = {}
        for name, process in self.system.service_processes().items():
            with contextlib.suppress(psutil.Error):
                cpu = process.cpu_times()
                per[name] = cpu.user + cpu.system
        for process in psutil.process_iter(["name", "cpu_times"]):
            label = {"postgres": "postgresql", "beam.smp": "rabbitmq"}.get(
                process.info["name"] or ""
            )
            if label and process.info["cpu_times"]:
                cpu = process.info["cpu_times"]
                per[f"{label}:{process.pid}"] = cpu.user + cpu.system
        me = psutil.Process()
        with contextlib.suppress(psutil.Error):
            cpu = me.cpu_times()
            per["bench"] = cpu.user + cpu.system + cpu.children_user + cpu.children_system
        return time.perf_counter(), busy, per

    @contextlib.contextmanager
    def measure(self, into: dict):
        start = self._snapshot()
        try:
            yield
        finally:
            end = self._snapshot()
            into.update(self._difference(start, end))

    @staticmethod
    def _difference(start, end) -> dict[str, float]:
        wall = max(end[0] - start[0], 1e-9)
        figures: dict[str, float] = {"machine": (end[1] - start[1]) / wall * 100}
        grouped: dict[str, float] = {}
        for key, seconds in end[2].items():
            # a server process started during the phase (a new pooled connection's backend)
            # counts with all its time; one that ended during it is lost to "other"
            group = key.split(":")[0]
            grouped[group] = grouped.get(group, 0.0) + seconds - start[2].get(key, 0.0)
        for group, seconds in grouped.items():
            figures[group] = seconds / wall * 100
        # what none of the above used: other programs on the machine, the kernel, short-lived
        # PostgreSQL backends
        figures["other"] = max(0.0, figures["machine"] - sum(grouped.values()) / wall * 100)
        return {key: round(value, 1) for key, value in figures.items()}
