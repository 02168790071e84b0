"""The ``cms`` command: provision the database and broker, run everything, run one service.

cms provision      create the database, roles, schemas, run migrations, declare queues
cms run            provision, then start every service and the gateway; Ctrl-C stops them
cms serve NAME     run one service (or ``gateway``) in this process
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from sqlalchemy.engine import make_url

from shared import logs
from shared.config import SERVICES, Settings, load_settings
from shared.lifetime import die_with_parent

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = (*SERVICES, "gateway")


def _reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _postgres_address(current: Settings) -> tuple[str, int]:
    url = current.admin_url
    return url.host or "127.0.0.1", url.port or 5432


def _amqp_address(current: Settings) -> tuple[str, int]:
    url = make_url(current.amqp_uri.replace("pyamqp://", "amqp://", 1))
    return url.host or "127.0.0.1", url.port or 5672


def _docker_engine() -> bool:
    if not shutil.which("docker"):
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, check=False)  # noqa: S607
    return probe.returncode == 0


def _wait_for(address: tuple[str, int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _reachable(*address):
            return True
        time.sleep(1)
    return False


def ensure_backing_services(current: Settings) -> None:
    """PostgreSQL and RabbitMQ must answer; start them with docker compose when they do not
    and a Docker engine is there, otherwise say exactly what to do."""
    needed = {
        "postgres": _postgres_address(current),
        "rabbitmq": _amqp_address(current),
    }
    missing = [name for name, address in needed.items() if not _reachable(*address)]
    if not missing:
        return
    if _docker_engine():
        print(f"starting {', '.join(missing)} with docker compose ...", flush=True)
        subprocess.run(  # noqa: S603
            ["docker", "compose", "up", "-d", "--wait", *missing],  # noqa: S607
            cwd=ROOT,
            check=True,
        )
        missing = [name for name in missing if not _wait_for(needed[name], 60)]
        if not missing:
            return
    lines = ["CMS needs PostgreSQL and RabbitMQ, and cannot reach:"]
    if "postgres" in missing:
        host, port = needed["postgres"]
        lines.append(
            f"  - PostgreSQL at {host}:{port} (CMS_DATABASE_URL). Install PostgreSQL 13+ "
            "(Debian: apt-get install postgresql; then "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start), "
            "or set CMS_DATABASE_URL to a server whose user may create databases and roles."
        )
    if "rabbitmq" in missing:
        host, port = needed["rabbitmq"]
        lines.append(
            f"  - RabbitMQ at {host}:{port} (CMS_AMQP_URI). Install RabbitMQ 3.12+ "
            "(Debian: apt-get install rabbitmq-server; then rabbitmq-server -detached), "
            "or set CMS_AMQP_URI."
        )
    lines.append("Or install Docker and run: docker compose up")
    raise SystemExit("\n".join(lines))


def cmd_provision(args: argparse.Namespace) -> None:
    from shared.provision import provision

    current = load_settings()
    ensure_backing_services(current)
    provision(current)
    print(f"provisioned database {current.database_name}: schemas {', '.join(SERVICES)}")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop_all(children: dict[str, subprocess.Popen], grace: float = 15.0) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children.values():
        remaining = max(0.1, deadline - time.monotonic())
        try:
            child.wait(remaining)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


#: A process that exits after CMS was ready is started again after 1, 2, 4 … 30 s; one that
#: exits this many times within ``CRASH_WINDOW_S`` is crash-looping, and CMS stops instead.
CRASH_LIMIT = 5
CRASH_WINDOW_S = 300.0


def _spawn(name: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "shared.serve", name],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )


def cmd_run(args: argparse.Namespace) -> None:
    """Every service and the gateway as child processes, supervised: until CMS is ready, a
    child that exits stops everything (a broken setup is said at once); after that, it is
    started again with a growing pause, unless it keeps exiting (a crash loop stops CMS)."""
    current = load_settings()
    if not args.no_provision:
        cmd_provision(args)
    children: dict[str, subprocess.Popen] = {}
    names: dict[str, str] = {}
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    for name in PROCESSES:
        for index in range(args.processes if name != "gateway" else 1):
            key = name if args.processes == 1 or name == "gateway" else f"{name}-{index + 1}"
            names[key] = name
            children[key] = _spawn(name, env)
    exits: dict[str, list[float]] = {key: [] for key in children}
    due: dict[str, float] = {}  # key → when it starts again
    interrupted = False

    def on_signal(signum, frame):
        nonlocal interrupted
        interrupted = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    ready_url = f"{current.gateway_url}/readyz"
    announced = False
    deadline = time.monotonic() + args.ready_timeout
    try:
        while not interrupted:
            now = time.monotonic()
            for key, child in children.items():
                code = child.poll()
                if code is None or key in due:
                    continue
                if not announced:
                    print(
                        f"stopping: process exited {{{key!r}: {code}}}", file=sys.stderr, flush=True
                    )
                    raise SystemExit(1)
                exits[key] = [t for t in exits[key] if now - t < CRASH_WINDOW_S] + [now]
                if len(exits[key]) >= CRASH_LIMIT:
                    print(
                        f"stopping: {key} exited {len(exits[key])} times within "
                        f"{CRASH_WINDOW_S:g} s (last exit code {code})",
                        file=sys.stderr,
                        flush=True,
                    )
                    raise SystemExit(1)
                pause = min(30.0, 2.0 ** (len(exits[key]) - 1))
                due[key] = now + pause
                print(f"{key} exited ({code}); starting it again in {pause:g} s", flush=True)
            for key, when in list(due.items()):
                if when <= now:
                    del due[key]
                    children[key] = _spawn(names[key], env)
                    print(f"{key} started again", flush=True)
            if not announced:
                if _ready(ready_url):
                    announced = True
                    ensure_first_admin(current)
                    print(f"\nCMS is ready: {current.gateway_url}  (Ctrl-C stops it)\n", flush=True)
                elif time.monotonic() > deadline:
                    print(f"not ready after {args.ready_timeout:g} s: {ready_url}", flush=True)
                    raise SystemExit(1)
            time.sleep(0.5)
    finally:
        print("stopping CMS ...", flush=True)
        _stop_all(children)
        print("stopped.", flush=True)


def _call_users(current: Settings, method: str, timeout: float = 30.0, **kwargs):
    """Call the users service over RPC from this (non-service) process."""
    return _call(current, "users", method, timeout, **kwargs)


def _call(current: Settings, service: str, method: str, timeout: float = 30.0, **kwargs):
    """Call a service over RPC from this (non-service) process, waiting for it to be up."""
    from nameko.exceptions import RpcTimeout, UnknownService
    from nameko.standalone.rpc import ClusterRpcProxy

    deadline = time.monotonic() + timeout
    while True:
        try:
            with ClusterRpcProxy({"AMQP_URI": current.amqp_uri}, timeout=10) as cluster:
                return getattr(getattr(cluster, service), method)(**kwargs)
        except (RpcTimeout, UnknownService, OSError) as exc:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"the {service} service does not answer ({exc}): start CMS first (make run)"
                ) from exc
            time.sleep(1)


def ensure_first_admin(current: Settings) -> None:
    """The first admin: from CMS_ADMIN_EMAIL / CMS_ADMIN_PASSWORD, or generated and printed
    once. Nothing happens when an admin exists already."""
    import secrets

    email = os.environ.get("CMS_ADMIN_EMAIL") or "admin@cms.local"
    given = os.environ.get("CMS_ADMIN_PASSWORD")
    password = given or secrets.token_urlsafe(15)
    result = _call_users(current, "ensure_admin", email=email, password=password)
    if not result["created"]:
        return
    print("\nFirst admin account created (shown once; change the password after signing in):")
    print(f"  email:    {email}")
    print("  password: " + ("(from CMS_ADMIN_PASSWORD)" if given else password), flush=True)


def cmd_ensure_admin(args: argparse.Namespace) -> None:
    ensure_first_admin(load_settings())


def cmd_create_admin(args: argparse.Namespace) -> None:
    import getpass

    current = load_settings()
    password = args.password or os.environ.get("CMS_ADMIN_PASSWORD")
    if not password:
        password = getpass.getpass("password for the new admin: ")
        if getpass.getpass("again: ") != password:
            raise SystemExit("the passwords differ")
    from shared.errors import CmsError

    actor = {"id": "system", "kind": "system", "role": "admin", "ip": None, "request_id": None}
    try:
        user = _call_users(
            current,
            "create_user",
            actor=actor,
            email=args.email,
            name=args.name,
            role="admin",
            password=password,
        )
    except CmsError as exc:
        raise SystemExit(f"not created: {exc} {exc.extra or ''}") from exc
    print(f"admin {user['email']} created (id {user['id']})")


SYSTEM_ACTOR = {"id": "system", "kind": "system", "role": "admin", "ip": None, "request_id": None}


def _progress_bar(done: int, total: int) -> None:
    width = 40
    filled = width * done // max(total, 1)
    bar = "#" * filled + "-" * (width - filled)
    print(f"\r[{bar}] {done}/{total} rows", end="", file=sys.stderr, flush=True)


def cmd_import_customers(args: argparse.Namespace) -> None:
    import uuid

    from shared.errors import CmsError
    from shared.importer import run_import

    current = load_settings()
    path = Path(args.file)
    if not path.is_file():
        raise SystemExit(f"no such file: {path}")
    import_id = str(uuid.uuid4())
    print(f"import {import_id}: {path.name}, mode {args.mode}, matched on {args.match_on}")
    try:
        summary = run_import(
            lambda method, **kwargs: _call(current, "customers", method, 120.0, **kwargs),
            path,
            actor=SYSTEM_ACTOR,
            import_id=import_id,
            filename=path.name,
            mode=args.mode,
            match_on=args.match_on,
            progress=_progress_bar,
        )
    except CmsError as exc:
        raise SystemExit(f"\nimport refused: {exc} {exc.extra.get('errors', '')}") from exc
    print()
    print(
        "{status}: {created} created, {updated} updated, {unchanged} unchanged, "
        "{rejected} rejected".format(**summary)
    )
    if summary["rejected"]:
        print(f"rejected rows: GET /api/v1/customers/imports/{import_id}/rejections.csv")
    print(f"undo with: cms revert-import {import_id}")


def cmd_import_orders(args: argparse.Namespace) -> None:
    """Past orders from another system (services/orders/imports.py describes the columns);
    idempotent on the external order id: running a file twice creates nothing twice."""
    import uuid

    from shared.errors import CmsError
    from shared.importer import run_import

    current = load_settings()
    path = Path(args.file)
    if not path.is_file():
        raise SystemExit(f"no such file: {path}")
    import_id = str(uuid.uuid4())
    print(f"order import {import_id}: {path.name}")
    try:
        summary = run_import(
            lambda method, **kwargs: _call(current, "orders", method, 120.0, **kwargs),
            path,
            actor=SYSTEM_ACTOR,
            import_id=import_id,
            filename=path.name,
            mode="create",
            match_on="external_id",
            progress=_progress_bar,
        )
    except CmsError as exc:
        raise SystemExit(f"\nimport refused: {exc} {exc.extra.get('errors', '')}") from exc
    print()
    print(
        "{status}: {created} created, {skipped} already there, {rejected} rejected".format(
            **summary
        )
    )
    for rejection in summary["rejections"]:
        print(f"  row {rejection['row']}: {rejection['reasons']}")


def cmd_revert_import(args: argparse.Namespace) -> None:
    from shared.errors import CmsError

    try:
        summary = _call(
            load_settings(),
            "customers",
            "revert_import",
            300.0,
            actor=SYSTEM_ACTOR,
            import_id=args.import_id,
        )
    except CmsError as exc:
        raise SystemExit(f"not reverted: {exc}") from exc
    print(f"import {args.import_id}: {summary['status']}")


def cmd_backup(args: argparse.Namespace) -> None:
    from shared.backup import BackupError, backup

    try:
        done = backup(load_settings(), args.file)
    except BackupError as exc:
        raise SystemExit(f"backup failed: {exc}") from exc
    print(f"backed up {', '.join(done['schemas'])} of {done['database']} to {done['path']}")


def cmd_restore(args: argparse.Namespace) -> None:
    from shared.backup import BackupError, rebuild_read_models, restore

    current = load_settings()
    try:
        done = restore(current, args.file)
    except BackupError as exc:
        raise SystemExit(f"restore failed: {exc}") from exc
    print(f"restored {', '.join(done['schemas'])} into {done['database']}")
    if args.rebuild:
        for service, count in rebuild_read_models(current).items():
            print(f"{service}: read models rebuilt from {count} events")


def cmd_analytics(args: argparse.Namespace) -> None:
    from services.analytics import rebuild

    raise SystemExit(rebuild.main(["--quiet"] if args.quiet else []))


def cmd_serve(args: argparse.Namespace) -> None:
    from shared import serve

    os.execv(sys.executable, [sys.executable, "-m", serve.__name__, args.name])  # noqa: S606


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cms", description="CMS command line")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("provision", help="create database, roles, schemas; migrate; declare queues")
    run = sub.add_parser("run", help="provision, then start every service and the gateway")
    run.add_argument("--no-provision", action="store_true", help="skip provisioning")
    run.add_argument("--processes", type=int, default=1, help="processes per service")
    run.add_argument("--ready-timeout", type=float, default=90.0, help="seconds to get ready")
    serve = sub.add_parser("serve", help="run one service in this process")
    serve.add_argument("name", choices=PROCESSES)
    sub.add_parser("ensure-admin", help="create the first admin if there is none")
    create_admin = sub.add_parser("create-admin", help="create an admin account")
    create_admin.add_argument("--email", required=True)
    create_admin.add_argument("--name", default="Administrator")
    create_admin.add_argument("--password", help="default: CMS_ADMIN_PASSWORD, else asked")
    importing = sub.add_parser("import-customers", help="import customers from CSV or XLSX")
    importing.add_argument("file")
    importing.add_argument("--mode", choices=("create", "update", "upsert"), default="upsert")
    importing.add_argument("--match-on", choices=("email", "phone", "external_id"), default="email")
    orders_import = sub.add_parser("import-orders", help="import past orders (CSV or XLSX)")
    orders_import.add_argument("file")
    reverting = sub.add_parser("revert-import", help="undo an import")
    reverting.add_argument("import_id")
    backing_up = sub.add_parser("backup", help="dump every service schema to a file")
    backing_up.add_argument("file")
    restoring = sub.add_parser("restore", help="restore a backup into an empty database")
    restoring.add_argument("file")
    restoring.add_argument(
        "--rebuild", action="store_true", help="then replay the events into the read models"
    )
    analytics = sub.add_parser("analytics", help="analytics projections")
    analytics.add_argument("action", choices=("rebuild",), help="rebuild from every event")
    analytics.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    logs.configure("cms", os.environ.get("CMS_LOG_LEVEL", "WARNING").upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    commands = {
        "provision": cmd_provision,
        "run": cmd_run,
        "serve": cmd_serve,
        "ensure-admin": cmd_ensure_admin,
        "create-admin": cmd_create_admin,
        "import-customers": cmd_import_customers,
        "revert-import": cmd_revert_import,
        "backup": cmd_backup,
        "restore": cmd_restore,
        "import-orders": cmd_import_orders,
        "analytics": cmd_analytics,
    }
    commands[args.command](args)


if __name__ == "__main__":
    main()
