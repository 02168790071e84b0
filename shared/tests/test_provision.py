"""Provisioning. Runs at once (parallel test groups, each with a database of its own) change the
same cluster-wide roles; without a lock PostgreSQL refused one of two concurrent changes of a
role's row with "tuple concurrently updated". The messaging it declares includes the RPC
exchange."""

import threading

from kombu import Connection

from shared.provision import create_role_and_schema, declare_messaging


def test_provisioning_runs_at_once_change_their_roles_one_at_a_time(cms_settings):
    failures: list[Exception] = []
    start = threading.Barrier(3)

    def provision_roles() -> None:
        start.wait()
        try:
            for _ in range(4):
                for service in ("users", "customers"):
                    create_role_and_schema(cms_settings, service)
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=provision_roles) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_provisioning_declares_the_rpc_exchange_before_any_service_starts(new_vhost):
    """A replica's first catch-up calls another service before any RPC entrypoint has
    declared the exchange: without it, the call is a channel error instead of a service not
    running yet (an unroutable call)."""
    amqp_uri = new_vhost()
    declare_messaging(amqp_uri, ["orders"])
    with Connection(amqp_uri) as connection:
        connection.channel().exchange_declare("nameko-rpc", "topic", passive=True)
