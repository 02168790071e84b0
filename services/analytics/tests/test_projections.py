"""Every projection against an independent recomputation from the raw events, after live
delivery through RabbitMQ; shuffled and redelivered events change nothing; a rebuild equals
the live projections."""

from __future__ import annotations

import random
import time
from datetime import UTC, date, datetime

import pytest

from services.analytics import consumer, rebuild
from services.analytics.projector import SUBSCRIPTIONS, Projector, refresh_rfm
from services.analytics.tables import PROJECTION_TABLES, projection_ddl
from services.analytics.tests.dataset import Reference

AS_OF = date(2026, 11, 15)
JUNE = {"date_from": "2026-06-01", "date_to": "2026-07-01"}


def _dump(engine, suffix: str = "") -> dict[str, list[tuple]]:
    """Every projection table's rows, sorted."""
    out = {}
    with engine.connect() as connection:
        for table in PROJECTION_TABLES:
            rows = connection.exec_driver_sql(f"SELECT * FROM {table}{suffix}").fetchall()
            out[table] = sorted(tuple(_plain(v) for v in row) for row in rows)
    return out


def _plain(value):
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return value


@pytest.fixture(scope="module")
def reference(live):
    return Reference(live)


@pytest.fixture(scope="module")
def segmented(live, cluster):
    cluster.analytics.refresh_segments(as_of=AS_OF.isoformat())
    return AS_OF


def _ts(text):
    return datetime.fromisoformat(text + "T00:00:00+00:00") if text else None


def test_revenue_matches_the_raw_events(cluster, reference):
    for granularity in ("day", "week", "month"):
        got = cluster.analytics.revenue(granularity=granularity)
        assert got == reference.revenue(granularity)
    june = cluster.analytics.revenue(granularity="day", currency="CNY", **JUNE)
    assert june == reference.revenue(
        "day", date_from=_ts(JUNE["date_from"]), date_to=_ts(JUNE["date_to"]), currency="CNY"
    )
    assert june and {row["currency"] for row in june} == {"CNY"}


def test_revenue_by_method_products_and_categories_match(cluster, reference):
    assert cluster.analytics.revenue_by_method() == reference.by_method()
    methods = {row["method"] for row in reference.by_method()}
    assert "imported" in methods and "alipay" in methods
    assert cluster.analytics.sales_by_product() == reference.products()
    assert cluster.analytics.sales_by_category() == reference.categories()
    window = {"date_from": _ts(JUNE["date_from"]), "date_to": _ts(JUNE["date_to"])}
    assert cluster.analytics.sales_by_category(currency="USD", **JUNE) == reference.categories(
        currency="USD", **window
    )


def test_payment_rates_match(cluster, reference):
    got = cluster.analytics.payment_rates()
    assert got == reference.payment_rates()
    assert all(0 < row["success_rate"] < 1 for row in got)
    window = {"date_from": _ts(JUNE["date_from"]), "date_to": _ts(JUNE["date_to"])}
    assert cluster.analytics.payment_rates(currency="CNY", **JUNE) == reference.payment_rates(
        currency="CNY", **window
    )


def test_overview_and_repeat_purchase_rate_match(cluster, reference):
    assert cluster.analytics.overview() == reference.overview()
    window = {"date_from": _ts(JUNE["date_from"]), "date_to": _ts(JUNE["date_to"])}
    assert cluster.analytics.overview(**JUNE) == reference.overview(**window)


def test_cohorts_match(cluster, reference):
    for currency in ("CNY", "USD"):
        got = cluster.analytics.cohorts(currency=currency)
        assert got == {"currency": currency, "cohorts": reference.cohorts(currency)}


def test_customer_figures_match(live, engines, reference):
    expected = reference.customer_stats()
    with engines["analytics"].connect() as connection:
        rows = connection.exec_driver_sql("SELECT * FROM customer_stats").mappings().all()
    got = {
        (row["customer_id"], row["currency"]): {
            "orders": row["orders"],
            "total_spent": row["total_spent"],
            "first_purchase": row["first_purchase"],
            "last_purchase": row["last_purchase"],
            "average_order_value": row["average_order_value"],
            "favourite_categories": list(row["favourite_categories"]),
            "favourite_products": list(row["favourite_products"]),
        }
        for row in rows
    }
    wrong = {
        k: {f: ((got.get(k) or {}).get(f), v[f]) for f in v if (got.get(k) or {}).get(f) != v[f]}
        for k, v in expected.items()
        if got.get(k) != v
    }
    assert not wrong, list(wrong.items())[:2]
    assert got.keys() == expected.keys()
    # merged customers' purchases count under the survivor; the undone merge not at all
    assert len(reference.merged_into) == 6
    survivors = [t for t in reference.merged_into.values() if t]
    assert len(survivors) == 5
    for source, target in reference.merged_into.items():
        if target:
            assert not any(key[0] == source for key in got)


def test_rfm_segments_match(segmented, cluster, engines, reference):
    expected = reference.rfm(segmented)
    with engines["analytics"].connect() as connection:
        rows = connection.exec_driver_sql("SELECT * FROM customer_rfm").mappings().all()
    got = {
        (row["currency"], row["customer_id"]): {
            key: row[key]
            for key in ("recency_days", "frequency", "monetary", "r", "f", "m", "segment")
        }
        for row in rows
    }
    assert got == expected
    sizes = cluster.analytics.segments(currency="CNY")
    counts = {s["segment"]: s["customers"] for s in sizes["segments"]}
    assert sum(counts.values()) == sum(1 for key in expected if key[0] == "CNY")
    assert len([name for name, n in counts.items() if n]) >= 6


def test_segment_rpcs_page_and_answer_per_customer(segmented, cluster, reference):
    expected = sorted(
        customer_id
        for (currency, customer_id), row in reference.rfm(segmented).items()
        if currency == "CNY" and row["segment"] == "lost"
    )
    seen, cursor = [], None
    while True:
        page = cluster.analytics.segment_customers(segment="lost", limit=7, cursor=cursor)
        seen += [item["customer_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == expected
    merged = next(source for source, target in reference.merged_into.items() if target)
    answer = cluster.analytics.customer_segments(
        customer_ids=[expected[0], merged, "no-such-customer"]
    )
    assert answer["customers"][expected[0]]["segment"] == "lost"
    survivor = reference.merged_into[merged]
    survivor_segment = reference.rfm(segmented).get(("CNY", survivor))
    assert (answer["customers"][merged] or {}).get("segment") == (
        survivor_segment["segment"] if survivor_segment else None
    )
    assert answer["customers"]["no-such-customer"] is None


def test_clv_fits_and_predicts(segmented, cluster, reference):
    result = cluster.analytics.clv(as_of=AS_OF.isoformat(), unit="weeks", horizon=26, limit=5)
    assert result["customers"] == len(
        {key for key in reference.customer_stats() if key[1] == "CNY"}
    )
    for name in ("r", "alpha", "a", "b"):
        assert result["bgnbd"][name] > 0
    assert result["bgnbd"]["log_likelihood"] < 0
    assert result["gamma_gamma"]["p"] > 0
    top = [row["predicted_value"] for row in result["top"]]
    assert top == sorted(top, reverse=True) and len(top) == 5
    assert sum(bin_["customers"] for bin_ in result["distribution"]) == result["customers"]
    page = cluster.analytics.clv_predictions(as_of=AS_OF.isoformat(), unit="days", limit=10)
    assert len(page["items"]) == 10 and page["next_cursor"]
    assert all(0 <= item["p_alive"] <= 1 for item in page["items"])


def test_shuffled_and_redelivered_events_give_the_same_projections(live, engines, segmented):
    """The same events in random order, a third of them twice, in batches of every size
    from one to a few hundred: the fact tables and derived figures come out identical."""
    engine = engines["analytics"]
    events = [event for source in SUBSCRIPTIONS for event in live[source]]
    rng = random.Random(11)
    stream = events + rng.sample(events, len(events) // 3)
    rng.shuffle(stream)
    suffix = "__shuffled"
    connection = engine.raw_connection()
    try:
        with connection.cursor() as cursor:
            for table in PROJECTION_TABLES:
                cursor.execute(f"DROP TABLE IF EXISTS {table}{suffix}")
            for statement in projection_ddl(suffix):
                cursor.execute(statement)
            start = 0
            while start < len(stream):
                size = rng.choice((1, 2, 5, 50, 300))
                Projector(cursor, suffix).apply(stream[start : start + size])
                start += size
            refresh_rfm(cursor, segmented, suffix)
        connection.commit()
        assert _dump(engine, suffix) == _dump(engine)
    finally:
        with connection.cursor() as cursor:
            for table in PROJECTION_TABLES:
                cursor.execute(f"DROP TABLE IF EXISTS {table}{suffix}")
        connection.commit()
        connection.close()


def test_a_redelivered_live_event_changes_nothing(live, engines, world_config):
    from sqlalchemy.orm import Session

    engine = engines["analytics"]
    before = _dump(engine)
    event = next(e for e in live["payments"] if e["type"] == "payment.refunded")
    with Session(engine) as session:
        assert consumer.handle_all(session, [{**event, "source": "payments"}]) == 0
    assert _dump(engine) == before


def test_freshness_is_measured(live, cluster):
    figures = cluster.analytics.freshness(window_seconds=3600)
    assert figures["events"] > 0 or figures["by_path"].get("catch_up", {}).get("events")
    assert figures["last_ms"] is not None
    text = cluster.analytics.metrics()
    assert 'cms_analytics_freshness_lag_seconds{quantile="0.99"}' in text


def test_rebuild_equals_the_live_projections(live, engines, world_config, segmented):
    engine = engines["analytics"]
    before = _dump(engine)
    fetch = rebuild.RpcFetch(world_config)  # the sources are read in parallel
    totals = {source: len(live[source]) for source in SUBSCRIPTIONS}
    seen = []
    started = time.monotonic()
    try:
        result = rebuild.rebuild(
            engine, fetch, totals, progress=lambda *args: seen.append(args), as_of=segmented
        )
    finally:
        fetch.close()
    elapsed = time.monotonic() - started
    assert result["events"] >= sum(totals.values()) - sum(
        1 for e in live["customers"] if e["type"] not in SUBSCRIPTIONS["customers"]
    )
    assert seen[-1][0] == seen[-1][1] == sum(totals.values())
    assert _dump(engine) == before
    print(f"rebuild: {result['events']} events in {elapsed:.2f} s")
    with engine.connect() as connection:
        status = connection.exec_driver_sql(
            "SELECT status FROM rebuilds WHERE id = %(id)s", {"id": result["id"]}
        ).scalar()
    assert status == "succeeded"


def test_segment_changes_are_published_once(segmented, cluster, reference):
    expected = {
        customer_id: row["segment"]
        for (currency, customer_id), row in reference.rfm(segmented).items()
        if currency == "CNY"
    }
    events = cluster.analytics.read_events(after_position=0, limit=1000, types=["segment.changed"])
    latest, previous = {}, {}
    for event in events:  # in position order: each customer's events chain their segments
        payload = event["payload"]
        assert payload["previous_segment"] == latest.get(payload["customer_id"])
        latest[payload["customer_id"]] = payload["segment"]
        previous[payload["customer_id"]] = event["stream_version"]
    assert {key: latest[key] for key in expected} == expected
    cluster.analytics.refresh_segments(as_of=segmented.isoformat())
    again = cluster.analytics.read_events(after_position=0, limit=1000, types=["segment.changed"])
    assert len(again) == len(events)  # nothing changed, nothing published


def test_cms_analytics_rebuild_on_the_command_line(live, engines, world_config, segmented):
    """``cms analytics rebuild`` in a process of its own, against the running sources: a
    progress bar on the terminal, and the projections equal to what they were."""
    import os
    import subprocess
    import sys

    engine = engines["analytics"]
    with engine.begin() as connection:  # the command scores as of today
        connection.exec_driver_sql("DELETE FROM customer_rfm")
    before = _dump(engine)
    env = dict(
        os.environ,
        CMS_DATABASE_URL=world_config["CMS_TEST_DATABASE_URL"],
        CMS_AMQP_URI=world_config["AMQP_URI"],
    )
    done = subprocess.run(
        [sys.executable, "-c", "from shared.cli import main; main()", "analytics", "rebuild"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "[########################################]" in done.stderr
    assert "analytics projections rebuilt from" in done.stdout
    after = _dump(engine)
    assert len(after.pop("customer_rfm")) > 0
    before.pop("customer_rfm")
    assert after == before


def test_a_customer_with_no_purchase_left_has_the_segment_cleared(engines):
    """A customer whose every purchase was cancelled, returned or refunded leaves the RFM
    table: ``segment.cleared`` tells the customers service, once, where the segment filter
    kept listing them under their last segment for ever."""
    from services.analytics import segments

    customer = f"gone-{random.randrange(10**9)}"
    connection = engines["analytics"].raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(
            "INSERT INTO published_segments (customer_id, segment, version) VALUES (%s, 'new', 1)",
            (customer,),
        )
        segments.publish_changes(cursor, "CNY", date(2026, 11, 28))
        cursor.execute(
            "SELECT event_type, stream_version, payload FROM events WHERE stream_id = %s",
            (customer,),
        )
        [(event_type, version, payload)] = cursor.fetchall()
        assert (event_type, version) == ("segment.cleared", 2)
        assert payload["previous_segment"] == "new" and payload["currency"] == "CNY"
        cursor.execute(
            "SELECT segment, version FROM published_segments WHERE customer_id = %s", (customer,)
        )
        assert cursor.fetchone() == (None, 2)
        segments.publish_changes(cursor, "CNY", date(2026, 11, 29))
        cursor.execute("SELECT count(*) FROM events WHERE stream_id = %s", (customer,))
        assert cursor.fetchone() == (1,)  # cleared once
    finally:
        connection.rollback()
        connection.close()
