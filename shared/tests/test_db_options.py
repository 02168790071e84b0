"""Session options every service connection gets from ``shared.db.create_service_engine``."""

from sqlalchemy import text


def test_service_connections_use_their_schema_and_no_parallel_workers(service_engine):
    with service_engine("orders").connect() as conn:
        assert conn.execute(text("SHOW search_path")).scalar() == "orders,extensions"
        assert conn.execute(text("SHOW max_parallel_workers_per_gather")).scalar() == "0"
