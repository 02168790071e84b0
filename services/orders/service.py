"""nameko entrypoints of the orders service (thin: validate arguments, hand over to the
command layer or the views, answer JSON).

``actor`` is who acts (into event metadata), ``viewer`` whose rights apply
(``services.orders.access``); for the gateway both are the signed-in principal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from nameko.rpc import rpc
from nameko.timer import timer

from services.orders import access, commands, replica, schemas, views
from services.orders.imports import OrderImports
from services.orders.schemas import load
from services.orders.store import Store
from shared.consumer import apply_once, catch_up, catch_up_first, catching_up
from shared.errors import CmsError, ConcurrencyError, ServiceUnavailable
from shared.idempotency import purge_expired, run_idempotent
from shared.rpc import Rpc
from shared.service import EventSourcedService
from shared.subscriptions import consumer_event_handler, durable_event_handler

log = logging.getLogger(__name__)

api = rpc(expected_exceptions=(CmsError,))

#: Seconds a request waits for the customers service when it catches up on a customer it does
#: not know yet (the periodic catch-up uses the normal RPC timeout).
REQUEST_CATCH_UP_TIMEOUT = 2.0
REQUEST_CATCH_UP_BUDGET = 5.0

#: Seconds between catch-ups on the customers' and payments' logs.
CATCH_UP_INTERVAL = 30
HOUSEKEEPING_INTERVAL = 3600
PAYMENTS_CONSUMER = "orders.payments"
#: A payment event that meets a concurrent command on its order is applied again this often.
PAYMENT_ATTEMPTS = 5


def _metadata(context: Any, actor: dict[str, Any] | None) -> dict[str, Any]:
    meta = dict(context.event_metadata(actor)) if context else {}
    if actor:
        meta.setdefault("actor_id", actor.get("id"))
        meta.setdefault("actor_kind", actor.get("kind"))
        if actor.get("request_id"):
            meta.setdefault("request_id", actor["request_id"])
            meta.setdefault("correlation_id", actor["request_id"])
    return meta


def _replicates(event_type: str):
    """A customers event for the replica: deliveries it applied already need no worker."""
    return consumer_event_handler("customers", event_type, replica.CONSUMER)


def _consumes(source: str, event_type: str):
    return durable_event_handler(source, event_type)


class OrdersService(EventSourcedService):
    """Product catalogue, orders and their workflow, the customer replica, historical import."""

    name = "orders"
    rpc = Rpc()

    # -- helpers -----------------------------------------------------------------------------

    def _store(self, actor: dict[str, Any] | None = None) -> Store:
        return Store(self.db, _metadata(self.context, actor))

    def _write(self, work: Callable[[Store], Any], actor: dict[str, Any]) -> Any:
        store = self._store(actor)
        try:
            result = work(store)
            self.db.commit()
            return result
        except BaseException:
            self.db.rollback()
            raise

    def _read(self, read: Callable[[], Any]) -> Any:
        try:
            return read()
        finally:
            self.db.rollback()

    def _fetch(self, source: str, types: tuple[str, ...] | None, timeout: float | None = None):
        def fetch(after: int, limit: int) -> list[dict[str, Any]]:
            return self.rpc.read_events(source, after, limit, types, timeout=timeout)

        return fetch

    def _catch_up_customers(self) -> int:
        return replica.catch_up_customers(self.db, self._fetch(replica.SOURCE, replica.EVENT_TYPES))

    def _catch_up_customers_now(self) -> int:
        """The catch-up a request makes for a customer it does not know yet: each read waits
        at most ``REQUEST_CATCH_UP_TIMEOUT`` and no new page is read after
        ``REQUEST_CATCH_UP_BUDGET`` seconds (a long backlog is the periodic catch-up's work),
        so a request is delayed by that much at most."""
        deadline = time.monotonic() + REQUEST_CATCH_UP_BUDGET
        read = self._fetch(replica.SOURCE, replica.EVENT_TYPES, REQUEST_CATCH_UP_TIMEOUT)

        def fetch(after: int, limit: int) -> list[dict[str, Any]]:
            if time.monotonic() > deadline:
                raise ServiceUnavailable(
                    "the customer replica is far behind; the periodic catch-up continues",
                    {"service": replica.SOURCE},
                )
            return read(after, limit)

        return replica.catch_up_customers(self.db, fetch)

    def _payments_balance(self, order_id: str) -> dict[str, Any]:
        """The order's balance as the payments service holds it (asked before a command's
        transaction): this service learns of a capture from its event a moment after the
        payments service answered the payer, and of a payment under way not at all."""
        if not commands.is_order_id(order_id):
            return {}  # the command answers not found
        return self.rpc.call("payments", "order_balance", order_id) or {}

    def _paid_per_payments(self, viewer: dict[str, Any], order_id: str, action: str) -> int:
        """What was paid on the order, asked only where the answer decides: a sales user's
        cancel or return, which is a refund when money was paid (a sales user could cancel,
        and so refund, an order paid a second before)."""
        if access.role(viewer) != "sales" or action not in access.REFUNDING_ACTIONS:
            return 0
        return int(self._payments_balance(order_id).get("paid_amount") or 0)

    def _order(self, viewer: dict[str, Any] | None, order_id: str):
        store = self._store()
        if viewer is None:
            return store, store.load_order(order_id)
        return store, commands.visible_order(store, viewer, order_id)

    # -- catalogue ---------------------------------------------------------------------------

    @api
    def create_product(self, actor, data) -> dict[str, Any]:
        access.require_manager(actor, "manage the catalogue")
        data = load(schemas.ProductData, data)
        product_id = self._write(lambda store: commands.create_product(store, data), actor)
        return self._read(lambda: views.get_product(self.db, product_id))

    @api
    def update_product(self, actor, product_id, changes, expected_version=None) -> dict[str, Any]:
        access.require_manager(actor, "manage the catalogue")
        changes = load(schemas.ProductChanges, changes)
        self._write(
            lambda store: commands.update_product(store, product_id, changes, expected_version),
            actor,
        )
        return self._read(lambda: views.get_product(self.db, product_id))

    @api
    def get_product(self, product_id) -> dict[str, Any]:
        return self._read(lambda: views.get_product(self.db, str(product_id)))

    @api
    def list_products(self, **query) -> dict[str, Any]:
        args = load(schemas.ProductQuery, query)
        return self._read(lambda: views.list_products(self.db, **args))

    # -- orders ------------------------------------------------------------------------------

    @api
    def place_order(self, actor, viewer, data, idempotency=None) -> dict[str, Any]:
        """With ``idempotency`` (``{"key", "hash"}`` from the gateway): a retry with the same
        key and request gets the order its first try placed, never a second order."""
        data = load(schemas.OrderData, data)
        data["customer_id"] = str(data["customer_id"])

        def place(store: Store, may_catch_up: bool) -> dict[str, Any]:
            placed: list[Any] = []

            def run() -> dict[str, str]:
                placed.append(commands.place_order(store, viewer, data, may_catch_up))
                return {"id": placed[0].id}

            result = run_idempotent(store.session, actor, idempotency, "place_order", run)
            # The answer comes from the order just saved, in the same transaction; a retry's
            # order (placed by the first attempt) is loaded.
            order = placed[0] if placed else self._order(viewer, result["id"])[1]
            return views.get_order(store, viewer, order)

        try:
            return self._write(lambda store: place(store, True), actor)
        except commands.CustomerNotKnownYet:
            pass  # rolled back, key and all: catch up outside the command, then once more
        try:
            self._read(self._catch_up_customers_now)
        except Exception:
            log.warning("customer replica catch-up failed", exc_info=True)
        return self._write(lambda store: place(store, False), actor)

    @api
    def get_order(self, order_id, viewer=None) -> dict[str, Any]:
        """One order. Without ``viewer`` (another service asking): no personal data."""

        def read():
            store, order = self._order(viewer, str(order_id))
            return views.get_order(store, viewer, order)

        return self._read(read)

    @api
    def list_orders(self, viewer, **query) -> dict[str, Any]:
        args = load(schemas.OrderQuery, query)
        for name in ("customer_id", "product_id"):
            if args.get(name):
                args[name] = str(args[name])
        if args.get("id"):
            args["id"] = [str(order_id) for order_id in args["id"]]
        return self._read(lambda: views.list_orders(self.db, viewer, **args))

    @api
    def order_history(self, viewer, order_id) -> list[dict[str, Any]]:
        def read():
            store, order = self._order(viewer, str(order_id))
            return views.history(store, order.id)

        return self._read(read)

    @api
    def change_order_lines(self, actor, viewer, order_id, changes, expected_version=None) -> dict:
        changes = load(schemas.LinesChange, changes)
        balance = self._payments_balance(str(order_id))
        self._write(
            lambda store: commands.change_lines(
                store, viewer, str(order_id), changes, expected_version, balance
            ),
            actor,
        )
        return self.get_order(order_id=order_id, viewer=viewer)

    @api
    def change_order_address(
        self, actor, viewer, order_id, delivery_address, expected_version=None
    ) -> dict:
        args = load(schemas.AddressChange, {"delivery_address": delivery_address})
        self._write(
            lambda store: commands.change_address(
                store, viewer, str(order_id), args["delivery_address"], expected_version
            ),
            actor,
        )
        return self.get_order(order_id=order_id, viewer=viewer)

    @api
    def order_action(
        self, actor, viewer, order_id, action, reason=None, expected_version=None
    ) -> dict[str, Any]:
        """fulfil, complete, cancel or return; 422 naming the state when not allowed."""
        args = load(
            schemas.ActionArgs,
            {"action": action, "reason": reason, "expected_version": expected_version},
        )
        paid_elsewhere = self._paid_per_payments(viewer, str(order_id), args["action"])
        self._write(
            lambda store: commands.act(
                store,
                viewer,
                str(order_id),
                args["action"],
                args["reason"],
                args["expected_version"],
                paid_elsewhere,
            ),
            actor,
        )
        return self.get_order(order_id=order_id, viewer=viewer)

    @api
    def order_changes(self, viewer, **query) -> dict[str, Any]:
        """The changes feed: order events after a position, waiting up to ``wait`` (≤ 4) s."""
        args = load(schemas.ChangesQuery, query)
        if args.get("order_id"):
            args["order_id"] = str(args["order_id"])
        return self._read(lambda: views.changes(self.db, viewer, **args))

    # -- historical import (shared.importer) ------------------------------------------------

    def _imports(self, actor: dict[str, Any]) -> OrderImports:
        access.require_manager(actor, "import orders")
        return OrderImports(self.db, _metadata(self.context, actor), self._catch_up_customers_now)

    @api
    def begin_import(
        self, actor, import_id, filename, columns, total_rows, mode=None, match_on=None
    ) -> dict[str, Any]:
        return self._imports(actor).begin(actor, str(import_id), filename, columns, total_rows)

    @api
    def import_rows(self, actor, import_id, rows) -> dict[str, Any]:
        return self._imports(actor).rows(str(import_id), rows)

    @api
    def finish_import(self, actor, import_id, status, error=None) -> dict[str, Any]:
        return self._imports(actor).finish(str(import_id), status, error)

    @api
    def get_import(self, actor, import_id) -> dict[str, Any]:
        return self._imports(actor).get(str(import_id))

    @api
    def list_imports(self, actor, limit=50) -> list[dict[str, Any]]:
        return self._imports(actor).list(min(int(limit), 200))

    # -- customers' events: the replica --------------------------------------------------------

    @api
    def sync_customers(self) -> dict[str, int]:
        """Apply now the customers events this replica has not seen yet. The gateway calls it
        after it archives, merges or erases a customer, so that an order placed right after
        that answer is refused, not accepted in the moment before the live event arrives."""
        return {"applied": self._read(self._catch_up_customers_now)}

    def _customer_event(self, envelope: dict[str, Any]) -> None:
        catch_up_first(self.db, replica.CONSUMER, envelope, self._catch_up_customers)
        replica.consume(self.db, envelope)

    @_replicates("customer.registered")
    def on_customer_registered(self, envelope):
        self._customer_event(envelope)

    @_replicates("customer.assigned")
    def on_customer_assigned(self, envelope):
        self._customer_event(envelope)

    @_replicates("customer.archived")
    def on_customer_archived(self, envelope):
        self._customer_event(envelope)

    @_replicates("customer.restored")
    def on_customer_restored(self, envelope):
        self._customer_event(envelope)

    @_replicates("customer.merged")
    def on_customer_merged(self, envelope):
        self._customer_event(envelope)

    @_replicates("customer.merge_undone")
    def on_customer_merge_undone(self, envelope):
        self._customer_event(envelope)

    @_replicates("customer.erased")
    def on_customer_erased(self, envelope):
        self._customer_event(envelope)

    # -- payments' events ----------------------------------------------------------------------

    def apply_payment(self, envelope: dict[str, Any]) -> bool:
        """Apply a payment.captured / payment.refunded envelope once (retried when it meets a
        concurrent command on the same order)."""
        for attempt in range(PAYMENT_ATTEMPTS):
            try:
                return apply_once(
                    self.db,
                    PAYMENTS_CONSUMER,
                    envelope,
                    lambda session, env: commands.apply_payment_event(
                        Store(session, {"causation_id": env["event_id"]}), env
                    ),
                )
            except ConcurrencyError:
                if attempt == PAYMENT_ATTEMPTS - 1:
                    raise
        return False

    @_consumes("payments", "payment.captured")
    def on_payment_captured(self, envelope):
        self.apply_payment(envelope)

    @_consumes("payments", "payment.refunded")
    def on_payment_refunded(self, envelope):
        self.apply_payment(envelope)

    # -- catch-up ------------------------------------------------------------------------------

    @timer(interval=HOUSEKEEPING_INTERVAL)
    def housekeeping(self) -> None:
        """Idempotency keys older than 24 hours go."""
        purge_expired(self.db)

    @timer(interval=CATCH_UP_INTERVAL, eager=True)
    def catch_up(self) -> None:
        """At start and every 30 s: the customers and payments events live delivery missed.
        Each source on its own: one that is down or failing does not hold up the other."""
        with catching_up(replica.CONSUMER):
            self._catch_up_source("customer replica", self._catch_up_customers)
        self._catch_up_source(
            "payments",
            lambda: catch_up(
                self.db,
                PAYMENTS_CONSUMER,
                "payments",
                self._fetch("payments", commands.PAYMENT_EVENTS),
                lambda session, env: commands.apply_payment_event(
                    Store(session, {"causation_id": env["event_id"]}), env
                ),
            ),
        )

    def _catch_up_source(self, what: str, run: Callable[[], int]) -> None:
        try:
            applied = run()
        except ServiceUnavailable as exc:
            self.db.rollback()
            log.info("%s catch-up postponed: %s", what, exc)
            return
        except Exception:
            self.db.rollback()
            log.exception("%s catch-up failed (tried again in %d s)", what, CATCH_UP_INTERVAL)
            return
        if applied:
            log.info("%s: %d events caught up", what, applied)
