"""Runs one CMS service (or the gateway) as a process: ``python -m shared.serve orders``.

eventlet's monkey patch comes first, before anything imports sockets or psycopg2, so that every
service process is cooperative (DESIGN §4).
"""

import eventlet

eventlet.monkey_patch()

import importlib  # noqa: E402
import inspect  # noqa: E402
import sys  # noqa: E402

from nameko.cli.run import is_entrypoint, run  # noqa: E402

from shared import logs  # noqa: E402
from shared.config import SERVICES, settings  # noqa: E402
from shared.db import ensure_cooperative_psycopg2  # noqa: E402
from shared.outages import survive_broker_restarts  # noqa: E402
from shared.rpc import refuse_redelivered_requests  # noqa: E402


def module_for(name: str) -> str:
    if name == "gateway":
        return "gateway.service"
    if name in SERVICES:
        return f"services.{name}.service"
    raise SystemExit(f"unknown service {name!r}; one of: gateway, {', '.join(SERVICES)}")


def service_classes(module_name: str) -> list[type]:
    module = importlib.import_module(module_name)
    found = []
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if cls.__module__ != module_name:
            continue
        if any(is_entrypoint(member) for _, member in inspect.getmembers(cls)):
            found.append(cls)
    return found


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m shared.serve <gateway|" + "|".join(SERVICES) + ">")
    name = args[0]
    current = settings()
    logs.configure(name, current.log_level)
    if not ensure_cooperative_psycopg2():
        raise SystemExit("psycopg2 could not be made cooperative under eventlet")
    refuse_redelivered_requests()
    survive_broker_restarts()
    run(service_classes(module_for(name)), current.nameko_config())


if __name__ == "__main__":
    main()
