"""Commands and a rebuild at the same time: the rebuild waits for the commands in flight and
the next ones wait for it; nothing deadlocks and the read model stays equal to the log."""

import eventlet
import eventlet.event
from sqlalchemy.orm import Session

from services.customers.commands import CustomerCommands
from services.customers.projections import rebuild
from services.customers.schemas import CustomerData
from services.customers.tests.conftest import principal, unique_email
from services.customers.tests.test_rebuild import rebuild_and_compare
from services.customers.uow import UnitOfWork


def test_commands_during_a_rebuild(customers_engine):
    admin = principal("admin")
    errors = []

    def command(number):
        data = CustomerData().load(
            {"name": f"并发 {number}", "emails": [{"address": unique_email("cc")}]}
        )
        try:
            with Session(customers_engine) as session:
                uow = UnitOfWork(session, {"actor_id": admin["id"], "actor_kind": "user"})
                commands = CustomerCommands(uow)
                customer_id = commands.create(admin, data, force=False)
                uow.commit()
                for round_ in range(3):
                    eventlet.sleep(0)
                    uow = UnitOfWork(session)
                    CustomerCommands(uow).set_tags(admin, customer_id, [f"r{round_}"], [], None)
                    uow.commit()
        except Exception as exc:  # noqa: BLE001 - a deadlock would land here
            errors.append(exc)

    def rebuilding():
        try:
            with Session(customers_engine) as session:
                rebuild(session)
                session.commit()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    pool = eventlet.GreenPool(12)
    for number in range(8):
        pool.spawn(command, number)
        if number in (2, 5):
            pool.spawn(rebuilding)
    pool.waitall()
    assert errors == []
    rebuild_and_compare(customers_engine)


def test_a_command_waits_for_another_on_the_same_customer(customers_engine):
    """Two edits of one customer at once: the second waits for the first's row lock and then
    succeeds (only a bulk import's batch refuses to wait, and runs again)."""
    admin = principal("admin")
    with Session(customers_engine) as session:
        uow = UnitOfWork(session, {"actor_id": admin["id"], "actor_kind": "user"})
        data = CustomerData().load({"name": "等待", "emails": [{"address": unique_email("w")}]})
        customer_id = CustomerCommands(uow).create(admin, data, force=False)
        uow.commit()
    holding, errors = eventlet.event.Event(), []

    def first():
        with Session(customers_engine) as session:
            uow = UnitOfWork(session)
            CustomerCommands(uow).set_tags(admin, customer_id, ["first"], [], None)
            holding.send()
            eventlet.sleep(0.5)  # the row stays locked meanwhile
            uow.commit()

    def second():
        holding.wait()
        try:
            with Session(customers_engine) as session:
                uow = UnitOfWork(session)
                CustomerCommands(uow).set_tags(admin, customer_id, ["second"], [], None)
                uow.commit()
        except Exception as exc:  # noqa: BLE001 - LockNotAvailable would land here
            errors.append(exc)

    pool = eventlet.GreenPool(2)
    pool.spawn(first)
    pool.spawn(second)
    pool.waitall()
    assert errors == []
    with Session(customers_engine) as session:
        tags = UnitOfWork(session).lock_rows([customer_id])[customer_id].tags
    assert sorted(tags) == ["first", "second"]
