"""5,000 rows in one import run, on a database and a RabbitMQ virtual host of their own: the
run's 5,000 customer events would otherwise wait in the queues of the orders and analytics
services until some later test starts them, and slow that test down."""

import random
import uuid

import pytest
from nameko.containers import get_container_cls
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import text

from services.customers.service import CustomersService
from services.customers.tests.conftest import actor_of, unique_tag
from services.customers.tests.test_imports import do_import, write_csv


@pytest.fixture(scope="module")
def cluster(isolated_config):
    container = get_container_cls(isolated_config)(CustomersService, isolated_config)
    container.start()
    # generous: a revert of 5,000 customers is one call, and the suite shares two cores
    with ClusterRpcProxy(isolated_config, timeout=300) as proxy:
        yield proxy
    container.stop()


@pytest.fixture
def call(cluster):
    def call(method, **kwargs):
        return getattr(cluster.customers, method)(**kwargs)

    return call


@pytest.fixture
def customers(cluster):
    return cluster.customers


@pytest.fixture
def customers_engine(isolated_engine):
    return isolated_engine


@pytest.fixture
def admin():
    return {"id": str(uuid.uuid4()), "role": "admin", "kind": "user"}


@pytest.mark.slow
def test_five_thousand_rows_in_one_run(tmp_path, call, customers, admin, customers_engine):
    tag = unique_tag()
    marker = uuid.uuid4().hex[:8]
    rows = [["姓名", "邮箱", "手机", "标签", "城市"]]
    base = random.randrange(10**8 - 5000)  # 158…: a block no other test draws from
    rows += [
        [f"客户{n}", f"bulk-{marker}-{n}@example.com", f"158{base + n:08d}", tag, "上海"]
        for n in range(5000)
    ]
    rows[1234][1] = "not-an-email"
    path = write_csv(tmp_path / "big.csv", rows)
    summary = do_import(call, path, admin, mode="upsert", match_on="email")
    assert summary["status"] == "completed"
    assert summary["total_rows"] == summary["processed_rows"] == 5000
    assert (summary["created"], summary["updated"], summary["rejected"]) == (4999, 0, 1)
    with customers_engine.connect() as conn:
        events = conn.execute(
            text(
                "SELECT count(*) FROM events WHERE metadata ? 'import_id' "
                "AND metadata ->> 'import_id' = :id"
            ),
            {"id": summary["id"]},
        ).scalar()
        landed = conn.execute(
            text("SELECT count(*) FROM customers WHERE :tag = ANY(tags)"), {"tag": tag}
        ).scalar()
    assert events == landed == summary["created"]
    [rejection] = customers.import_rejections(viewer=admin, import_id=summary["id"])["items"]
    assert rejection["row"] == 1235 and list(rejection["reasons"]) == ["邮箱"]
    # reverted in batches of customers, one transaction each
    reverted = call("revert_import", actor=actor_of(admin), import_id=summary["id"])
    assert (reverted["status"], reverted["revert_conflicts"]) == ("reverted", 0)
    with customers_engine.connect() as conn:
        statuses = dict(
            conn.execute(
                text("SELECT status, count(*) FROM customers WHERE :tag = ANY(tags) GROUP BY 1"),
                {"tag": tag},
            ).all()
        )
    assert statuses == {"archived": 4999}
