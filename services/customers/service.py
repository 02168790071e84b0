"""nameko entrypoints of the customers service (thin: validate arguments, hand over to the
command layer or the views, answer JSON).

Every argument is a keyword argument with a JSON value; every answer is JSON. ``actor`` is who
acts (``{"id", "kind", "role", "ip", "request_id", "session_id"}``, into event metadata) and
``viewer`` whose rights apply (``{"id", "role", "kind"}``); for the gateway both are the
signed-in principal. Errors are the classes of ``shared.errors``, with a machine-readable
``extra["code"]`` where a client must tell cases apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from nameko.rpc import rpc
from nameko.timer import timer

from services.customers import activity, schemas, segments, views
from services.customers.commands import CustomerCommands, Customers
from services.customers.import_revert import ImportRevert
from services.customers.imports import Imports
from services.customers.personal import CustomerVault
from services.customers.schemas import load_args
from services.customers.uow import UnitOfWork, event_metadata
from shared.errors import CmsError, ServiceUnavailable
from shared.rpc import Rpc
from shared.service import EventSourcedService
from shared.subscriptions import subscribe

log = logging.getLogger(__name__)

#: How often housekeeping runs (seconds).
HOUSEKEEPING_INTERVAL = 3600

#: How often the customers service reads the orders and payments services' events it may have
#: missed (seconds); it also does at start.
ACTIVITY_CATCH_UP_INTERVAL = 30

#: Errors meant for the caller (``CmsError``) are expected: nameko logs them as warnings.
api = rpc(expected_exceptions=(CmsError,))


@subscribe(activity.SUBSCRIPTIONS, "record_activity", batched=True)
@subscribe(segments.SUBSCRIPTIONS, "record_segment", batched=True)
class CustomersService(EventSourcedService):
    """Customer records (people and companies), their search, history, consents, merges and
    erasure; and what the orders and payments services' events say about each customer."""

    name = "customers"
    rpc = Rpc()

    def _customers(self, actor: dict[str, Any]) -> Customers:
        return Customers(self.db, event_metadata(self.context, actor))

    def _read(self, read: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return read(self.db.connection(), *args, **kwargs)
        finally:
            self.db.rollback()

    def _read_sealed(self, read: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A read that opens sealed values (a vault on the same connection)."""
        try:
            return read(self.db.connection(), CustomerVault(self.db), *args, **kwargs)
        finally:
            self.db.rollback()

    def _command(self, args: dict[str, Any], command: Callable[[CustomerCommands], str]):
        customers = self._customers(args["actor"])
        viewer = args.get("viewer", args["actor"])
        return customers.run(command, customers.customer(viewer))

    # -- records -----------------------------------------------------------------------------

    @api
    def create_customer(self, actor, viewer, data, force=False) -> dict[str, Any]:
        args = load_args(
            schemas.CreateArgs,
            {"actor": actor, "viewer": viewer, "force": force},
            ("data", schemas.CustomerData, data),
        )
        return self._command(
            args, lambda commands: commands.create(args["viewer"], args["data"], args["force"])
        )

    @api
    def get_customer(self, viewer, customer_id, as_of=None) -> dict[str, Any]:
        args = load_args(
            schemas.GetArgs, {"viewer": viewer, "customer_id": customer_id, "as_of": as_of}
        )
        return self._read_sealed(views.get_customer, **args)

    @api
    def update_customer(
        self, actor, viewer, customer_id, changes, expected_version=None
    ) -> dict[str, Any]:
        args = load_args(
            schemas.UpdateArgs,
            {
                "actor": actor,
                "viewer": viewer,
                "customer_id": customer_id,
                "expected_version": expected_version,
            },
            ("changes", schemas.CustomerChanges, changes),
        )
        return self._command(
            args,
            lambda commands: commands.update(
                args["viewer"], args["customer_id"], args["changes"], args["expected_version"]
            ),
        )

    @api
    def set_tags(
        self, actor, viewer, customer_id, add=None, remove=None, expected_version=None
    ) -> dict[str, Any]:
        args = load_args(
            schemas.SetTagsArgs,
            {
                "actor": actor,
                "viewer": viewer,
                "customer_id": customer_id,
                "add": add or [],
                "remove": remove or [],
                "expected_version": expected_version,
            },
        )
        return self._command(
            args,
            lambda commands: commands.set_tags(
                args["viewer"],
                args["customer_id"],
                args["add"],
                args["remove"],
                args["expected_version"],
            ),
        )

    @api
    def assign_owner(
        self, actor, viewer, customer_id, owner_id, expected_version=None
    ) -> dict[str, Any]:
        args = load_args(
            schemas.AssignArgs,
            {
                "actor": actor,
                "viewer": viewer,
                "customer_id": customer_id,
                "owner_id": owner_id,
                "expected_version": expected_version,
            },
        )
        return self._command(
            args,
            lambda commands: commands.assign_owner(
                args["viewer"], args["customer_id"], args["owner_id"], args["expected_version"]
            ),
        )

    @api
    def record_consent(
        self, actor, viewer, customer_id, channel, granted, method, note=None
    ) -> dict[str, Any]:
        args = load_args(
            schemas.ConsentArgs,
            {
                "actor": actor,
                "viewer": viewer,
                "customer_id": customer_id,
                "channel": channel,
                "granted": granted,
                "method": method,
                "note": note,
            },
        )
        consent = {key: args[key] for key in ("channel", "granted", "method", "note")}
        return self._command(
            args,
            lambda commands: commands.record_consent(args["viewer"], args["customer_id"], consent),
        )

    @api
    def set_attributes(
        self, actor, viewer, customer_id, values, expected_version=None
    ) -> dict[str, Any]:
        args = load_args(
            schemas.SetAttributesArgs,
            {
                "actor": actor,
                "viewer": viewer,
                "customer_id": customer_id,
                "expected_version": expected_version,
            },
            ("values", schemas.AttributeValues, values),
        )
        return self._command(
            args,
            lambda commands: commands.set_attributes(
                args["viewer"], args["customer_id"], args["values"], args["expected_version"]
            ),
        )

    @api
    def archive_customer(self, actor, viewer, customer_id, expected_version=None) -> dict:
        args = self._status_args(actor, viewer, customer_id, expected_version)
        return self._command(
            args,
            lambda commands: commands.archive(
                args["viewer"], args["customer_id"], args["expected_version"]
            ),
        )

    @api
    def restore_customer(self, actor, viewer, customer_id, expected_version=None) -> dict:
        args = self._status_args(actor, viewer, customer_id, expected_version)
        return self._command(
            args,
            lambda commands: commands.restore(
                args["viewer"], args["customer_id"], args["expected_version"]
            ),
        )

    @staticmethod
    def _status_args(actor, viewer, customer_id, expected_version) -> dict[str, Any]:
        return load_args(
            schemas.StatusArgs,
            {
                "actor": actor,
                "viewer": viewer,
                "customer_id": customer_id,
                "expected_version": expected_version,
            },
        )

    # -- merging and erasure -----------------------------------------------------------------

    @api
    def merge_customers(self, actor, target_id, source_id) -> dict[str, Any]:
        """Merge ``source_id`` into ``target_id`` (the actor's rights apply, as viewer)."""
        args = load_args(
            schemas.MergeArgs, {"actor": actor, "target_id": target_id, "source_id": source_id}
        )
        customers = self._customers(args["actor"])
        answer = customers.customer(args["actor"])
        return customers.run(
            lambda commands: commands.merge(args["actor"], args["target_id"], args["source_id"]),
            lambda uow, merge_id: {
                "merge_id": merge_id,
                "customer": answer(uow, args["target_id"]),
            },
        )

    @api
    def undo_merge(self, actor, merge_id) -> dict[str, Any]:
        args = load_args(schemas.UndoMergeArgs, {"actor": actor, "merge_id": merge_id})
        customers = self._customers(args["actor"])
        answer = customers.customer(args["actor"])

        def both(uow: UnitOfWork, ids: tuple[str, str]) -> dict[str, Any]:
            return {"target": answer(uow, ids[0]), "source": answer(uow, ids[1])}

        return customers.run(
            lambda commands: commands.undo_merge(args["actor"], args["merge_id"]), both
        )

    @api
    def erase_customer(self, actor, customer_id) -> dict[str, Any]:
        """Erase a customer's personal data for good (admins and managers): answers the record
        as it now is, placeholders and all."""
        args = load_args(schemas.EraseArgs, {"actor": actor, "customer_id": customer_id})
        return self._command(
            args, lambda commands: commands.erase(args["actor"], args["customer_id"])
        )

    # -- queries -----------------------------------------------------------------------------

    @api
    def search_customers(
        self,
        viewer,
        q=None,
        tag=None,
        owner_id=None,
        status="active",
        created_from=None,
        created_to=None,
        consent=None,
        has_orders=None,
        segment=None,
        sort="-created_at",
        limit=50,
        cursor=None,
    ) -> dict[str, Any]:
        args = load_args(
            schemas.SearchArgs,
            {
                "viewer": viewer,
                "q": q,
                "tag": tag,
                "owner_id": owner_id,
                "status": status,
                "created_from": created_from,
                "created_to": created_to,
                "consent": consent,
                "has_orders": has_orders,
                "segment": segment,
                "sort": sort,
                "limit": limit,
                "cursor": cursor,
            },
        )
        return self._read(views.search, **args)

    @api
    def timeline(self, viewer, customer_id, limit=50, cursor=None) -> dict[str, Any]:
        args = load_args(
            schemas.TimelineArgs,
            {"viewer": viewer, "customer_id": customer_id, "limit": limit, "cursor": cursor},
        )
        return self._read_sealed(views.timeline, **args)

    @api
    def consent_history(self, viewer, customer_id) -> list[dict[str, Any]]:
        args = load_args(schemas.ViewerCustomerArgs, {"viewer": viewer, "customer_id": customer_id})
        return self._read_sealed(views.consent_history, **args)

    @api
    def export_customer_data(self, viewer, customer_id) -> dict[str, Any]:
        args = load_args(schemas.ViewerCustomerArgs, {"viewer": viewer, "customer_id": customer_id})
        return self._read_sealed(views.export_customer, **args)

    # -- attribute definitions ---------------------------------------------------------------

    @api
    def define_attribute(self, actor, key, type, label, options=None) -> dict[str, Any]:
        args = load_args(
            schemas.DefineAttributeArgs,
            {"actor": actor, "key": key, "type": type, "label": label, "options": options},
        )
        customers = self._customers(args["actor"])
        return customers.run(
            lambda commands: commands.define_attribute(
                args["actor"], args["key"], args["type"], args["label"], args["options"]
            ),
            lambda uow, defined: next(
                d for d in views.list_attributes(uow.conn) if d["key"] == defined
            ),
        )

    @api
    def list_attributes(self) -> list[dict[str, Any]]:
        return self._read(views.list_attributes)

    # -- bulk imports (services.customers.imports, driven by shared.importer) -----------------

    def _imports(self) -> Imports:
        return Imports(self.db, self.context)

    @api
    def begin_import(
        self, actor, import_id, filename, mode, match_on, columns, total_rows
    ) -> dict[str, Any]:
        """An import begins: its columns are mapped (an unknown one refuses the import)."""
        args = load_args(
            schemas.BeginImportArgs,
            {
                "actor": actor,
                "import_id": import_id,
                "filename": filename,
                "mode": mode,
                "match_on": match_on,
                "columns": columns,
                "total_rows": total_rows,
            },
        )
        return self._imports().begin(**args)

    @api
    def import_rows(self, actor, import_id, rows) -> dict[str, int]:
        """A batch of rows ``[{"row": n, "values": {column: text}}]``; answers the batch's
        counts (``created``, ``updated``, ``unchanged``, ``rejected``)."""
        args = load_args(
            schemas.ImportRowsArgs, {"actor": actor, "import_id": import_id, "rows": rows}
        )
        return self._imports().rows(**args)

    @api
    def finish_import(self, actor, import_id, status, error=None) -> dict[str, Any]:
        args = load_args(
            schemas.FinishImportArgs,
            {"actor": actor, "import_id": import_id, "status": status, "error": error},
        )
        return self._imports().finish(**args)

    @api
    def get_import(self, viewer, import_id) -> dict[str, Any]:
        args = load_args(schemas.ImportArgs, {"viewer": viewer, "import_id": import_id})
        return self._imports().get_import(**args)

    @api
    def list_imports(self, viewer, limit=50, cursor=None) -> dict[str, Any]:
        args = load_args(
            schemas.ImportPageArgs, {"viewer": viewer, "limit": limit, "cursor": cursor}
        )
        return self._imports().list_imports(**args)

    @api
    def import_rejections(self, viewer, import_id, limit=50, cursor=None) -> dict[str, Any]:
        args = load_args(
            schemas.RejectionPageArgs,
            {"viewer": viewer, "import_id": import_id, "limit": limit, "cursor": cursor},
        )
        return self._imports().rejected_rows(**args)

    @api
    def revert_import(self, actor, import_id) -> dict[str, Any]:
        """Undo a finished import with new events (``services.customers.import_revert``)."""
        args = load_args(schemas.RevertImportArgs, {"actor": actor, "import_id": import_id})
        return ImportRevert(self.db, self.context).revert(**args)

    # -- housekeeping --------------------------------------------------------------------------

    @timer(interval=HOUSEKEEPING_INTERVAL)
    def housekeeping(self) -> None:
        """Delete rejected import rows older than 30 days; end abandoned imports as failed."""
        purged, abandoned = self._imports().housekeeping()
        if purged or abandoned:
            log.info("purged %d rejected rows, ended %d abandoned imports", purged, abandoned)

    # -- orders and payments of a customer (services.customers.activity) ------------------------

    def record_activity(self, envelopes: list[dict[str, Any]]) -> None:
        """Order or payment events, delivered by RabbitMQ (see ``@subscribe``: a batch)."""
        activity.handle_all(self.db, envelopes)

    def record_segment(self, envelopes: list[dict[str, Any]]) -> None:
        """The analytics service's segment events, delivered by RabbitMQ."""
        segments.handle_all(self.db, envelopes)

    @timer(interval=ACTIVITY_CATCH_UP_INTERVAL, eager=True)
    def catch_up_activity(self) -> None:
        """Apply the order, payment and segment events the live deliveries missed."""

        def fetch(source: str, after: int, limit: int, types) -> list[dict[str, Any]]:
            return self.rpc.read_events(source, after, limit, types)

        for projection in (activity, segments):
            try:
                applied = projection.catch_up_all(self.db, fetch)
            except ServiceUnavailable as exc:
                log.info("%s catch-up postponed: %s", projection.CONSUMER, exc)
                continue
            if applied:
                log.info("%s caught up on %d events", projection.CONSUMER, applied)
