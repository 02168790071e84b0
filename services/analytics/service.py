"""nameko entrypoints of the analytics service (thin: the fold is in projector.py, the figures
in queries.py, lifetime value in clv.py, rebuild in rebuild.py).

Events arrive through one durable ``@event_handler`` per subscribed type (``@subscribe``:
requeued on error, queues declared by provisioning) and through catch-up on ``read_events``
at start and every ``CMS_ANALYTICS_CATCH_UP_INTERVAL`` seconds. RFM segments are recomputed
every ``CMS_ANALYTICS_SEGMENT_INTERVAL`` seconds (and on ``refresh_segments``).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import eventlet
from nameko.dependency_providers import Config
from nameko.rpc import rpc
from nameko.timer import timer

from services.analytics import clv_runner, consumer, queries, schemas, segments
from services.analytics import rebuild as rebuilding
from services.analytics.projector import PAYLOAD_FIELDS, SUBSCRIPTIONS, refresh_rfm
from services.analytics.purchase_summary import summarise
from shared.consumer import catch_up_first, catching_up
from shared.errors import CmsError, NotFound, RuleViolation, ServiceUnavailable
from shared.rpc import Rpc
from shared.service import EventSourcedService
from shared.subscriptions import subscribe

log = logging.getLogger(__name__)

CATCH_UP_INTERVAL = float(os.environ.get("CMS_ANALYTICS_CATCH_UP_INTERVAL", "30"))
SEGMENT_INTERVAL = float(os.environ.get("CMS_ANALYTICS_SEGMENT_INTERVAL", "60"))
CLV_CACHE_SECONDS = 60.0

api = rpc(expected_exceptions=(CmsError,))

_clv_cache: dict[tuple, tuple[float, dict[str, Any]]] = {}


def _today() -> date:
    return datetime.now(UTC).date()


@subscribe(SUBSCRIPTIONS, "apply_events", consumer=consumer.CONSUMER, batched=True)
class AnalyticsService(EventSourcedService):
    """Revenue, customer figures, RFM segments, cohorts, payment rates and lifetime value,
    projected from the customers, orders and payments events."""

    name = "analytics"
    rpc = Rpc()
    config = Config()

    def _read(self, read: Callable[..., Any], *args: Any) -> Any:
        try:
            return read(consumer.raw_cursor(self.db), *args)
        finally:
            self.db.rollback()

    # -- consuming -----------------------------------------------------------------------------

    def apply_events(self, envelopes: list[dict[str, Any]]) -> None:
        """Events delivered by RabbitMQ (see ``@subscribe``: a batch, applied in one
        transaction); far behind, a catch-up in pages first."""
        newest = max(envelopes, key=lambda envelope: int(envelope.get("position") or 0))
        catch_up_first(self.db, consumer.CONSUMER, newest, self._catch_up)
        consumer.handle_all(self.db, envelopes)

    @timer(interval=CATCH_UP_INTERVAL, eager=True)
    def catch_up(self) -> None:
        """Apply what live deliveries missed, from every source's ``read_events``."""
        try:
            with catching_up(consumer.CONSUMER):
                self._catch_up()
        except ServiceUnavailable as exc:
            log.info("analytics catch-up postponed: %s", exc)

    def _catch_up(self) -> int:
        def fetch(source: str, after: int, limit: int, types) -> list[dict[str, Any]]:
            return self.rpc.read_events(
                source, after, limit, types, payload_fields=PAYLOAD_FIELDS.get(source)
            )

        applied = consumer.catch_up_all(self.db, fetch)
        if applied:
            log.info("analytics caught up on %d events", applied)
            self._refresh_segments(_today())
        return applied

    @timer(interval=SEGMENT_INTERVAL, eager=True)
    def housekeeping(self) -> None:
        """Recompute the RFM segments as of today; forget freshness samples over a day old."""
        self._refresh_segments(_today())
        cursor = consumer.raw_cursor(self.db)
        consumer.prune_freshness(cursor)
        self.db.commit()

    def _refresh_segments(self, as_of: date) -> None:
        try:
            cursor = consumer.raw_cursor(self.db)
            consumer.lock(cursor)
            refresh_rfm(cursor, as_of)
            published = segments.publish_changes(cursor, schemas.DEFAULT_CURRENCY, as_of)
            self.db.commit()
            if published:
                log.info("%d customers changed segment", published)
        except Exception:
            self.db.rollback()
            raise

    @api
    def refresh_segments(self, as_of: str | None = None) -> dict[str, Any]:
        """Recompute the RFM scores and segments now (as of a date, default today)."""
        day = date.fromisoformat(as_of) if as_of else _today()
        self._refresh_segments(day)
        return {"as_of": day.isoformat()}

    # -- figures -------------------------------------------------------------------------------

    @api
    def overview(self, **kwargs) -> list[dict[str, Any]]:
        return self._read(queries.overview, schemas.load(schemas.RangeArgs, kwargs))

    @api
    def revenue(self, **kwargs) -> list[dict[str, Any]]:
        return self._read(queries.revenue_series, schemas.load(schemas.RevenueArgs, kwargs))

    @api
    def revenue_by_method(self, **kwargs) -> list[dict[str, Any]]:
        return self._read(queries.revenue_by_method, schemas.load(schemas.RangeArgs, kwargs))

    @api
    def sales_by_product(self, **kwargs) -> list[dict[str, Any]]:
        return self._read(queries.sales_by_product, schemas.load(schemas.ProductArgs, kwargs))

    @api
    def sales_by_category(self, **kwargs) -> list[dict[str, Any]]:
        return self._read(queries.sales_by_category, schemas.load(schemas.RangeArgs, kwargs))

    @api
    def payment_rates(self, **kwargs) -> list[dict[str, Any]]:
        return self._read(queries.payment_rates, schemas.load(schemas.RangeArgs, kwargs))

    @api
    def cohorts(self, **kwargs) -> dict[str, Any]:
        args = schemas.load(schemas.CohortArgs, kwargs)
        return {"currency": args["currency"], "cohorts": self._read(queries.cohorts, args)}

    @api
    def customer_figures(self, **kwargs) -> dict[str, Any]:
        args = schemas.load(schemas.CustomerFiguresArgs, kwargs)
        return self._read(queries.customer_figures, args)

    @api
    def customer_analytics(self, customer_id: str) -> dict[str, Any]:
        if not isinstance(customer_id, str) or not 0 < len(customer_id) <= 100:
            raise NotFound("no such customer")
        return self._read(queries.customer_detail, customer_id)

    # -- segments ------------------------------------------------------------------------------

    @api
    def segments(self, currency: str | None = None) -> dict[str, Any]:
        args = schemas.load(schemas.CohortArgs, {"currency": currency})
        return self._read(queries.segment_sizes, args["currency"])

    @api
    def segment_customers(self, segment, currency=None, limit=100, cursor=None) -> dict[str, Any]:
        """Customer ids of one segment, by id, keyset paged (``cursor``: the last id seen)."""
        args = schemas.load(
            schemas.SegmentArgs,
            {"segment": segment, "currency": currency, "limit": limit, "cursor": cursor},
        )
        return self._read(
            queries.segment_members,
            args["segment"],
            args["currency"],
            args["limit"],
            args["cursor"],
        )

    @api
    def customer_segments(self, customer_ids, currency=None) -> dict[str, Any]:
        """The segment (with r, f, m) of each of the given customer ids; null when none."""
        args = schemas.load(
            schemas.SegmentsOfArgs, {"customer_ids": customer_ids, "currency": currency}
        )
        return self._read(queries.segments_of, args["customer_ids"], args["currency"])

    # -- lifetime value ------------------------------------------------------------------------

    def _clv(self, args: dict[str, Any]) -> dict[str, Any]:
        as_of = args.get("as_of") or _today()
        key = (args["currency"], as_of, args["unit"], args["horizon"])
        cached = _clv_cache.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        end = datetime.combine(as_of + timedelta(days=1), datetime.min.time(), UTC)
        rows = self._read(queries.purchases_for_clv, args["currency"], end)
        summary = summarise(rows, as_of, args["unit"])
        try:
            # a child process: scipy and the fit's memory never stay in the service
            fitted = clv_runner.fit(summary, args["horizon"])
        except ValueError as exc:
            raise RuleViolation(str(exc), {"code": "not_enough_data"}) from exc
        result = {
            "currency": args["currency"],
            "as_of": as_of.isoformat(),
            "unit": args["unit"],
            "horizon": args["horizon"],
            **fitted,
        }
        _clv_cache[key] = (time.monotonic() + CLV_CACHE_SECONDS, result)
        return result

    @api
    def clv(self, **kwargs) -> dict[str, Any]:
        """The fitted BG/NBD and Gamma-Gamma parameters with their log-likelihoods, the
        distribution of predicted values, and the top customers by predicted value."""
        args = schemas.load(schemas.ClvArgs, kwargs)
        result = self._clv(args)
        predictions = result["predictions"]
        values = sorted(p["predicted_value"] for p in predictions)
        top = sorted(predictions, key=lambda p: (-p["predicted_value"], p["customer_id"]))
        return {
            **{k: v for k, v in result.items() if k != "predictions"},
            "total_predicted_value": sum(values),
            "distribution": _histogram(values, args["bins"]),
            "top": top[: args["limit"]],
        }

    @api
    def clv_predictions(self, **kwargs) -> dict[str, Any]:
        """Each customer's predictions for the horizon, by customer id, keyset paged."""
        args = schemas.load(schemas.ClvArgs, kwargs)
        predictions = sorted(self._clv(args)["predictions"], key=lambda p: p["customer_id"])
        after = args.get("cursor")
        if after:
            predictions = [p for p in predictions if p["customer_id"] > after]
        items = predictions[: args["limit"]]
        more = len(predictions) > args["limit"]
        return {"items": items, "next_cursor": items[-1]["customer_id"] if more else None}

    # -- freshness and rebuild -----------------------------------------------------------------

    @api
    def freshness(self, window_seconds: int = 900) -> dict[str, Any]:
        args = schemas.load(schemas.FreshnessArgs, {"window_seconds": window_seconds})
        return self._read(consumer.freshness_figures, args["window_seconds"])

    @api
    def metrics(self) -> str:
        """Prometheus text exposition of the freshness figures."""
        return consumer.prometheus(self._read(consumer.freshness_figures, 300))

    @api
    def start_rebuild(self, actor: dict[str, Any] | None = None) -> dict[str, Any]:
        """Start rebuilding every projection in this process; poll ``get_rebuild``."""
        rebuild_id = str(uuid.uuid4())
        engine = self.db.get_bind()
        config = dict(self.config)
        cursor = consumer.raw_cursor(self.db)
        cursor.execute(
            "SELECT pg_try_advisory_lock(%s), pg_advisory_unlock(%s)",
            (rebuilding.REBUILD_LOCK, rebuilding.REBUILD_LOCK),
        )
        if not cursor.fetchone()[0]:
            self.db.rollback()
            raise RuleViolation("a rebuild is running already", {"code": "rebuild_running"})
        cursor.execute(
            "INSERT INTO rebuilds (id, status, requested_by) VALUES (%s, 'running', %s)",
            (rebuild_id, (actor or {}).get("id")),
        )
        self.db.commit()
        eventlet.spawn_n(_run_rebuild, engine, config, rebuild_id)
        return self._read(rebuilding.get_rebuild, rebuild_id)

    @api
    def get_rebuild(self, rebuild_id: str) -> dict[str, Any]:
        try:
            uuid.UUID(str(rebuild_id))
        except ValueError:
            raise NotFound("no such rebuild") from None
        found = self._read(rebuilding.get_rebuild, str(rebuild_id))
        if found is None:
            raise NotFound("no such rebuild")
        return found


def _run_rebuild(engine, config: dict[str, Any], rebuild_id: str) -> None:
    fetch = rebuilding.RpcFetch(config)
    try:
        result = rebuilding.rebuild(engine, fetch, fetch.totals(), rebuild_id=rebuild_id)
        log.info("analytics rebuilt: %s", {k: v for k, v in result.items() if k != "positions"})
    except Exception:
        log.exception("analytics rebuild %s failed", rebuild_id)
    finally:
        fetch.close()


def _histogram(values: list[int], bins: int) -> list[dict[str, Any]]:
    """Equal-width bins of predicted values (minor units)."""
    if not values:
        return []
    low, high = values[0], values[-1]
    width = max(1, -(-(high - low + 1) // bins))
    counts = [0] * bins
    for value in values:
        counts[min((value - low) // width, bins - 1)] += 1
    return [
        {"from": low + i * width, "to": low + (i + 1) * width, "customers": counts[i]}
        for i in range(bins)
    ]
