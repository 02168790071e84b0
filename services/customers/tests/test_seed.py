"""20,000 seeded customers: short Chinese names and pinyin are found through the GIN index on
``search_tokens`` (the plan, not a timing, is what is checked), and the seeded rows are what
the service itself would have written (their events fold into them)."""

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from services.customers import tables
from services.customers.projections import customer_row
from services.customers.search import index_tokens
from services.customers.seed import seed_customers
from services.customers.tests.conftest import as_, principal
from services.customers.uow import UnitOfWork
from services.customers.views import search_query

SEEDED = 20_000
TOKENS_INDEX = "customers_search_tokens_idx"


@pytest.fixture(scope="module")
def seeded(isolated_engine):
    with Session(isolated_engine) as session:
        assert seed_customers(session, SEEDED, seed=7) == SEEDED
    return isolated_engine


def _plan(engine, **args):
    query = search_query(principal("admin"), **args)
    with engine.connect() as conn:
        compiled = query.compile(dialect=conn.dialect)
        rows = conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params).scalars().all()
    return "\n".join(rows)


def test_seeded_rows_look_real(seeded):
    with seeded.connect() as conn:
        count = conn.execute(select(func.count()).select_from(tables.customers)).scalar()
        names = conn.execute(select(tables.customers.c.name).limit(200)).scalars().all()
        events = conn.execute(text("SELECT count(*) FROM events")).scalar()
    assert count == SEEDED and events == SEEDED
    assert sum(1 for name in names if len(name) <= 4) > 100  # mostly Chinese names
    assert any(name.isascii() for name in names)


def test_short_chinese_name_and_pinyin_use_the_tokens_index(seeded, isolated_customers):
    admin = principal("admin")
    for name in ("穆琳", "张伟"):
        isolated_customers.create_customer(**as_(admin), data={"name": name})
    with seeded.begin() as conn:
        conn.execute(text("ANALYZE customers"))
    for q in ("穆琳", "zhangwei", "zw"):
        plan = _plan(seeded, q=q)
        assert f"Bitmap Index Scan on {TOKENS_INDEX}" in plan, plan
    assert {"穆琳", "mulin"} <= set(index_tokens("穆琳", None))
    found = isolated_customers.search_customers(viewer=admin, q="穆琳", limit=200)["items"]
    assert "穆琳" in [c["name"] for c in found]
    assert all("穆琳" in c["name"] + (c["company"] or "") for c in found)
    pinyin = isolated_customers.search_customers(viewer=admin, q="zhangwei", limit=200)["items"]
    assert "张伟" in [c["name"] for c in pinyin]


def test_latin_fragments_use_trigram_indexes(seeded):
    plan = _plan(seeded, q="user1234.")
    assert "customers_emails_trgm_idx" in plan, plan


def test_seeded_rows_are_what_their_events_fold_into(seeded):
    """What a rebuild would write for a sample of the seeded customers (a full rebuild of
    20,000 is the rebuild tests' business, on fewer rows)."""
    with Session(seeded) as session:
        rows = session.execute(select(tables.customers).order_by(func.random()).limit(200)).all()
        uow = UnitOfWork(session)
        for row in rows:
            expected = {**customer_row(uow.load_customer(str(row.id))), "order_count": 0}
            assert {**row._mapping, "id": str(row.id)} == expected


def test_the_seed_leaves_no_gin_entries_pending(seeded):
    """Searches would scan the pending entries, and the next write would merge them. (The
    other tests of the module write too, through connections that merge at 256 kB: 32
    pages.)"""
    with seeded.begin() as conn:
        pending = conn.execute(
            text(
                "SELECT c.relname, gin_clean_pending_list(i.indexrelid) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
                "WHERE i.indrelid = CAST('customers' AS regclass) AND am.amname = 'gin'"
            )
        ).all()
    assert len(pending) == 8 and all(pages <= 32 for _, pages in pending), pending
