"""Analytics: revenue, payment rates, customer figures, RFM segments, cohorts, lifetime value,
freshness and rebuild. Read by analysts, managers and admins; rebuild by admins.

A segment's CSV export composes the analytics service's segment members with the customers
service's records, read as the caller (analysts get no contact details)."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from gateway import analytics_schemas as s
from gateway.csv_export import csv_download
from gateway.operations import Context, Reply, op
from shared.errors import NotFound

READERS = frozenset({"admin", "manager", "analyst"})
ADMIN = frozenset({"admin"})
ANALYTICS = {"tag": "analytics", "roles": READERS}
EXPORT_PAGE = 100
CLV_TIMEOUT = 120.0
CSV_COLUMNS = (
    "customer_id",
    "segment",
    "r",
    "f",
    "m",
    "recency_days",
    "frequency",
    "monetary",
    "currency",
    "name",
    "company",
    "email",
    "phone",
)


def _args(ctx: Context) -> dict[str, Any]:
    return {
        key: (value.isoformat() if hasattr(value, "isoformat") else value)
        for key, value in ctx.query.items()
    }


def _viewer(ctx: Context) -> dict[str, Any]:
    return {"id": ctx.principal.id, "role": ctx.principal.role, "kind": ctx.principal.kind}


def _figure(method: str, *, timeout: float | None = None):
    def handler(ctx: Context) -> Reply:
        if timeout is None:
            return Reply(ctx.call("analytics", method, **_args(ctx)))
        return Reply(ctx.rpc.call("analytics", method, timeout=timeout, **_args(ctx)))

    handler.__name__ = f"analytics_{method}"
    return handler


op(
    "GET",
    "/analytics/overview",
    operation_id="analyticsOverview",
    summary="Revenue, purchases, customers, average order value and repeat-purchase rate",
    query=s.RangeQuery,
    response=s.Overview,
    many=True,
    **ANALYTICS,
)(_figure("overview"))

op(
    "GET",
    "/analytics/revenue",
    operation_id="analyticsRevenue",
    summary="Revenue over time (day, week or month) per currency",
    query=s.RevenueQuery,
    response=s.RevenuePoint,
    many=True,
    **ANALYTICS,
)(_figure("revenue"))

op(
    "GET",
    "/analytics/revenue/methods",
    operation_id="analyticsRevenueByMethod",
    summary="Revenue by payment method",
    query=s.RangeQuery,
    response=s.MethodRevenue,
    many=True,
    **ANALYTICS,
)(_figure("revenue_by_method"))

op(
    "GET",
    "/analytics/sales/products",
    operation_id="analyticsSalesByProduct",
    summary="Sales by product",
    query=s.ProductQuery,
    response=s.ProductSales,
    many=True,
    **ANALYTICS,
)(_figure("sales_by_product"))

op(
    "GET",
    "/analytics/sales/categories",
    operation_id="analyticsSalesByCategory",
    summary="Sales by category",
    query=s.RangeQuery,
    response=s.CategorySales,
    many=True,
    **ANALYTICS,
)(_figure("sales_by_category"))

op(
    "GET",
    "/analytics/payments/rates",
    operation_id="analyticsPaymentRates",
    summary="Payment success and failure rates by method",
    query=s.RangeQuery,
    response=s.PaymentRate,
    many=True,
    **ANALYTICS,
)(_figure("payment_rates"))

op(
    "GET",
    "/analytics/cohorts",
    operation_id="analyticsCohorts",
    summary="Monthly cohort retention",
    query=s.CohortQuery,
    response=s.Cohorts,
    **ANALYTICS,
)(_figure("cohorts"))

op(
    "GET",
    "/analytics/customers",
    operation_id="analyticsCustomers",
    summary="Per-customer figures, by total spent",
    query=s.PageQuery,
    response=s.CustomerFiguresPage,
    **ANALYTICS,
)(_figure("customer_figures"))


@op(
    "GET",
    "/analytics/customers/<customer_id>",
    operation_id="analyticsCustomer",
    summary="One customer's figures and segment",
    response=s.CustomerAnalytics,
    errors=(404,),
    **ANALYTICS,
)
def customer(ctx: Context) -> Reply:
    return Reply(ctx.call("analytics", "customer_analytics", customer_id=ctx.path["customer_id"]))


op(
    "GET",
    "/analytics/segments",
    operation_id="analyticsSegments",
    summary="RFM segment sizes",
    query=s.CurrencyQuery,
    response=s.Segments,
    **ANALYTICS,
)(_figure("segments"))


def _segment(ctx: Context) -> str:
    segment = ctx.path["segment"]
    if segment not in s.SEGMENTS:
        raise NotFound(f"no segment {segment!r}", {"segments": list(s.SEGMENTS)})
    return segment


@op(
    "GET",
    "/analytics/segments/<segment>/customers",
    operation_id="analyticsSegmentCustomers",
    summary="The customers of a segment (keyset paged by id)",
    query=s.PageQuery,
    response=s.SegmentPage,
    errors=(404,),
    **ANALYTICS,
)
def segment_customers(ctx: Context) -> Reply:
    return Reply(ctx.call("analytics", "segment_customers", segment=_segment(ctx), **_args(ctx)))


def _first(entries: list[dict], key: str) -> str:
    chosen = next((e for e in entries if e.get("primary")), entries[0] if entries else None)
    return (chosen or {}).get(key) or ""


def _records(ctx: Context, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The customers service's records of ``ids`` as the caller may see them (in parallel)."""
    viewer = _viewer(ctx)
    replies = {
        customer_id: ctx.rpc.call_async(
            "customers", "get_customer", viewer=viewer, customer_id=customer_id
        )
        for customer_id in ids
    }
    records = {}
    for customer_id, reply in replies.items():
        try:
            records[customer_id] = ctx.rpc.wait(reply, "customers", "get_customer")
        except NotFound:
            records[customer_id] = {}
    return records


def _segment_row(item: dict[str, Any]) -> tuple[Any, ...]:
    record = item["record"]
    return (
        item["customer_id"],
        item["segment"],
        item["r"],
        item["f"],
        item["m"],
        item["recency_days"],
        item["frequency"],
        item["monetary"],
        item["currency"],
        record.get("name"),
        record.get("company"),
        _first(record.get("emails") or [], "address"),
        _first(record.get("phones") or [], "number"),
    )


@op(
    "GET",
    "/analytics/segments/<segment>/export.csv",
    operation_id="exportSegment",
    summary="A segment's customers as CSV for a campaign (contacts as the caller may see them)",
    query=s.CurrencyQuery,
    errors=(404,),
    **ANALYTICS,
)
def export_segment(ctx: Context) -> Reply:
    segment = _segment(ctx)
    currency = ctx.query.get("currency")

    def page(cursor: str | None, _limit: int) -> dict[str, Any]:
        """A page of the segment, each customer with its record as the caller may see it
        (``EXPORT_PAGE`` at a time: the records are read in parallel, one request each)."""
        answer = ctx.call(
            "analytics",
            "segment_customers",
            segment=segment,
            currency=currency,
            limit=EXPORT_PAGE,
            cursor=cursor,
        )
        records = _records(ctx, [item["customer_id"] for item in answer["items"]])
        items = [
            {
                **item,
                "segment": segment,
                "currency": answer["currency"],
                "record": records.get(item["customer_id"]) or {},
            }
            for item in answer["items"]
        ]
        return {"items": items, "next_cursor": answer.get("next_cursor")}

    return Reply(csv_download(f"segment-{segment}.csv", CSV_COLUMNS, page, _segment_row))


op(
    "GET",
    "/analytics/clv",
    operation_id="analyticsClv",
    summary="Lifetime value: BG/NBD and Gamma-Gamma fit, value distribution, top customers",
    query=s.ClvQuery,
    response=s.Clv,
    errors=(422,),
    **ANALYTICS,
)(_figure("clv", timeout=CLV_TIMEOUT))

op(
    "GET",
    "/analytics/clv/predictions",
    operation_id="analyticsClvPredictions",
    summary="Each customer's predicted purchases, P(alive) and value over the horizon",
    query=s.ClvQuery,
    response=s.PredictionPage,
    errors=(422,),
    **ANALYTICS,
)(_figure("clv_predictions", timeout=CLV_TIMEOUT))

op(
    "GET",
    "/analytics/freshness",
    operation_id="analyticsFreshness",
    summary="Lag from an event's commit to the projections (p50, p99, last)",
    query=s.FreshnessQuery,
    response=s.Freshness,
    **ANALYTICS,
)(_figure("freshness"))


@op(
    "GET",
    "/analytics/metrics",
    operation_id="analyticsMetrics",
    summary="Analytics freshness as Prometheus metrics (text exposition format)",
    **ANALYTICS,
)
def metrics(ctx: Context) -> Reply:
    text = ctx.call("analytics", "metrics")
    return Reply(Response(text, mimetype="text/plain", content_type="text/plain; version=0.0.4"))


@op(
    "POST",
    "/analytics/rebuild",
    operation_id="rebuildAnalytics",
    summary="Rebuild every analytics projection from the events (while the system runs)",
    tag="analytics",
    roles=ADMIN,
    body=s.RebuildRequest,
    response=s.Rebuild,
    status=202,
    audit="analytics.rebuild",
    errors=(400, 422),
    resource="rebuild",
)
def start_rebuild(ctx: Context) -> Reply:
    started = ctx.call("analytics", "start_rebuild", actor=ctx.actor)
    return Reply(
        started,
        status=202,
        resource_id=started["id"],
        headers={"Location": f"/api/v1/analytics/rebuilds/{started['id']}"},
    )


@op(
    "GET",
    "/analytics/rebuilds/<rebuild_id>",
    operation_id="getAnalyticsRebuild",
    summary="A rebuild's progress",
    tag="analytics",
    roles=ADMIN,
    response=s.Rebuild,
    errors=(404,),
)
def get_rebuild(ctx: Context) -> Reply:
    return Reply(ctx.call("analytics", "get_rebuild", rebuild_id=ctx.path["rebuild_id"]))
