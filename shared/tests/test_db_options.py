"""Session options every service connection gets from ``shared.db.create_service_engine``."""

from sqlalchemy import text


def test_service_connections_use_their_schema_no_parallel_workers_and_short_gin_lists(
    service_engine,
):
    with service_engine("orders").connect() as conn:
        assert conn.execute(text("SHOW search_path")).scalar() == "orders,extensions"
        assert conn.execute(text("SHOW max_parallel_workers_per_gather")).scalar() == "0"
        assert conn.execute(text("SHOW gin_pending_list_limit")).scalar() == "256kB"
