"""Provisioning runs at once (parallel test groups, each with a database of its own) change the
same cluster-wide roles; without a lock PostgreSQL refused one of two concurrent changes of a
role's row with "tuple concurrently updated"."""

import threading

from shared.provision import create_role_and_schema


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
