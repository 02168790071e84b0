"""Historical import of orders: same events, original dates, idempotent on the external id."""

import time
import uuid

import pytest
from sqlalchemy import text

from services.orders.imports import import_payment_id
from services.orders.tests.conftest import actor_of
from shared.errors import BadRequest
from shared.importer import run_import


def _import(orders, admin, path):
    return run_import(
        lambda method, **kwargs: getattr(orders, method)(**kwargs),
        path,
        actor=actor_of(admin),
        import_id=str(uuid.uuid4()),
        filename=path.name,
        mode="create",
        match_on="external_id",
    )


def _known_to_orders(service_engine, customer_id: str, timeout: float = 90.0) -> None:
    """Wait until the orders service's customer replica has the customer (live delivery, or
    the periodic catch-up behind the rest of the run's customers)."""
    deadline = time.monotonic() + timeout
    with service_engine("orders").connect() as conn:
        while time.monotonic() < deadline:
            found = conn.execute(
                text("SELECT 1 FROM customers WHERE id = :id"), {"id": customer_id}
            ).first()
            conn.rollback()
            if found:
                return
            time.sleep(0.2)
    raise AssertionError(f"the orders replica never learnt of customer {customer_id}")


@pytest.fixture
def csv_file(tmp_path, make_customer, make_product, service_engine):
    buyer = make_customer()
    _known_to_orders(service_engine, buyer["id"])
    product = make_product(price=1500, sku=f"IMP-{uuid.uuid4().hex[:6]}")
    tag = uuid.uuid4().hex[:8]
    rows = [
        "外部订单号,客户ID,下单时间,币种,订单明细,金额,已付款,备注",
        f"OLD-{tag}-1,{buyer['id']},2023-05-01,CNY,{product['sku']}*2;UNKNOWN-1*1@3.50,,是,gift",
        f"OLD-{tag}-2,{buyer['id']},2023-06-02T10:30:00Z,CNY,,99.90,no,",
        f"OLD-{tag}-3,{uuid.uuid4()},2023-06-03,CNY,,10,no,",  # unknown customer
        f"OLD-{tag}-4,{buyer['id']},2023-06-04,CNY,,10.001,no,",  # too many decimals
        f"OLD-{tag}-2,{buyer['id']},2023-06-02,CNY,,99.90,no,",  # the same order again
        f"OLD-{tag}-5,{buyer['id']},2023-06-05,CNY,NOPE-{tag}*2,,no,",  # unknown SKU, no price
    ]
    path = tmp_path / "orders.csv"
    path.write_text("\ufeff" + "\n".join(rows) + "\n", encoding="utf-8")
    return path, buyer, tag


def test_an_import_run_twice_creates_nothing_twice(orders, admin, csv_file, service_engine):
    path, buyer, tag = csv_file
    first = _import(orders, admin, path)
    assert (first["status"], first["created"], first["skipped"], first["rejected"]) == (
        "completed",
        2,
        1,
        3,
    )
    reasons = {item["row"]: item["reasons"] for item in first["rejections"]}
    assert "customer_id" in reasons[4] and "amount" in reasons[5]
    # says the SKU is unknown, where it said only "give the price of NOPE-…"
    assert reasons[7]["lines"] == [
        f"Line 1: NOPE-{tag} is not in the catalogue; give its price (NOPE-{tag}*2@price)."
    ]
    second = _import(orders, admin, path)
    assert (second["created"], second["skipped"], second["rejected"]) == (0, 3, 3)

    listed = orders.list_orders(viewer=admin, customer_id=buyer["id"])["items"]
    by_external = {item["external_id"]: item for item in listed}
    assert set(by_external) == {f"OLD-{tag}-1", f"OLD-{tag}-2"}
    paid = by_external[f"OLD-{tag}-1"]
    assert paid["status"] == "paid" and paid["total"] == 3000 + 350
    assert paid["placed_at"].startswith("2023-05-01T00:00:00")
    unpaid = by_external[f"OLD-{tag}-2"]
    assert unpaid["status"] == "placed" and unpaid["total"] == 9990
    with service_engine("orders").connect() as conn:
        events = conn.execute(
            text("SELECT event_type, payload FROM events WHERE stream_id = :id ORDER BY 1"),
            {"id": paid["id"]},
        ).all()
    kinds = sorted(event.event_type for event in events)
    assert kinds == ["order.paid", "order.payment_applied", "order.placed"]
    applied = next(e.payload for e in events if e.event_type == "order.payment_applied")
    assert applied["payment_id"] == import_payment_id(f"OLD-{tag}-1")
    placed = next(e.payload for e in events if e.event_type == "order.placed")
    assert placed["source"] == "import" and placed["placed_at"] == "2023-05-01T00:00:00Z"


def test_unknown_columns_refuse_the_file(orders, admin, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("external_id,customer_id,placed_at,currency,amount,colour\n", encoding="utf-8")
    with pytest.raises(BadRequest) as refused:
        _import(orders, admin, path)
    assert "columns" in refused.value.extra["errors"]


def test_the_command_line_imports_through_the_same_rpcs(
    orders_container, nameko_config, csv_file, monkeypatch, capsys
):
    from shared.cli import main

    path, _buyer, _tag = csv_file
    monkeypatch.setenv("CMS_AMQP_URI", nameko_config["AMQP_URI"])
    main(["import-orders", str(path)])
    first = capsys.readouterr().out
    assert "completed: 2 created, 1 already there, 3 rejected" in first
    main(["import-orders", str(path)])
    assert "completed: 0 created, 3 already there, 3 rejected" in capsys.readouterr().out
