"""The command layer: each command runs inside a given :class:`UnitOfWork` and never commits.

An RPC runs one command in one transaction (:class:`Customers`); a bulk import (next) will
run one row's create / update / upsert per transaction (or savepoint) with ``import_id`` in
the unit of work's metadata, reusing these commands and :meth:`CustomerCommands.find_match`.

Every command on existing customers locks their read-model rows first (in id order), then
loads the aggregates from their events, decides, and records: commands on one customer
serialise, and the append's expected version catches anything that slipped past.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from psycopg2 import errors as pg_errors
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.customers import access, domain, tables, views
from services.customers.domain import Customer
from services.customers.search import contact_keys
from services.customers.uow import UnitOfWork, not_found
from services.customers.validation import attribute_values, normalise_phones
from shared.errors import BadRequest, ConcurrencyError, Conflict, Forbidden, NotFound

EXTERNAL_ID_INDEX = "customers_external_id_key"


def _duplicate(field: str, existing_id: str | None) -> Conflict:
    extra: dict[str, Any] = {
        "code": "duplicate",
        "field": field,
        "existing_id": existing_id,
        "errors": {field if field == "external_id" else f"{field}s": ["Already in use."]},
    }
    return Conflict(f"a customer with this {field.replace('_', ' ')} already exists", extra)


def _is_external_id_clash(exc: IntegrityError) -> bool:
    orig = exc.orig
    return isinstance(orig, pg_errors.UniqueViolation) and (
        getattr(getattr(orig, "diag", None), "constraint_name", None) == EXTERNAL_ID_INDEX
    )


def _check_version(customer: Customer, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != customer.version:
        raise ConcurrencyError.for_stream(customer.id, expected_version, customer.version)


class CustomerCommands:
    def __init__(self, uow: UnitOfWork):
        self.uow = uow

    # -- loading -----------------------------------------------------------------------------

    def _lock_and_load(self, viewer: Mapping[str, Any], *customer_ids: str) -> list[Customer]:
        """Lock the customers' rows and load them; not found unless ``viewer`` sees them all."""
        rows = self.uow.lock_rows(customer_ids)
        loaded = []
        for customer_id in customer_ids:
            row = rows.get(customer_id)
            if row is None or not access.sees(viewer, row.owner_id):
                raise not_found(customer_id)
            loaded.append(self.uow.load_customer(customer_id))
        return loaded

    def _record(self, customer: Customer, changes: list) -> None:
        try:
            self.uow.record_customer(customer, changes)
        except IntegrityError as exc:
            if _is_external_id_clash(exc):
                raise _duplicate("external_id", None) from exc
            raise

    def _attributes(self, values: Mapping[str, Any], allow_unset: bool) -> tuple[dict, dict]:
        if not values:
            return {}, {}
        return attribute_values(views.attribute_definitions(self.uow.conn), values, allow_unset)

    # -- matching ----------------------------------------------------------------------------

    def find_match(
        self,
        emails: list[dict] | None = None,
        phones: list[dict] | None = None,
        external_id: str | None = None,
        active_only: bool = True,
    ) -> tuple[str, Any] | None:
        """The customer these contacts or this external id already belong to, as ``(field,
        row)``: ``external_id`` (any customer not erased), else ``email`` / ``phone`` (an
        active customer, the oldest first). Lock with :meth:`lock_natural_keys` first."""
        conn, table, c = self.uow.conn, tables.customers, tables.customers.c
        if external_id:
            row = conn.execute(select(table).where(c.external_id == external_id)).first()
            if row is not None:
                return "external_id", row
        keys = contact_keys(emails or [], phones or [])
        if not keys:
            return None
        query = select(table).where(c.contact_keys.overlap(keys))
        if active_only:
            query = query.where(c.status == "active")
        row = conn.execute(query.order_by(c.created_at, c.id).limit(1)).first()
        if row is None:
            return None
        shared = set(row.contact_keys) & set(keys)
        return ("email" if any(k.startswith("email:") for k in shared) else "phone"), row

    def lock_natural_keys(
        self, emails: list[dict], phones: list[dict], external_id: str | None
    ) -> None:
        keys = contact_keys(emails, phones)
        if external_id:
            keys.append(f"external_id:{external_id}")
        self.uow.lock_keys(keys)

    # -- commands ----------------------------------------------------------------------------

    def create(self, viewer: Mapping[str, Any], data: dict[str, Any], force: bool) -> str:
        """A new customer. A sales user's customers are their own; admins and managers may
        give an owner. An e-mail address or phone number of an active customer is a duplicate
        unless ``force``; an external id in use is always one."""
        access.require_writer(viewer)
        data = dict(data)
        if access.role(viewer) == "sales":
            if data.get("owner_id") not in (None, viewer["id"]):
                raise Forbidden(
                    "only admins and managers assign customers to others",
                    {"code": "owner_not_allowed"},
                )
            data["owner_id"] = viewer["id"]
        attributes, errors = self._attributes(data.get("attributes") or {}, allow_unset=False)
        if errors:
            raise BadRequest.for_fields({"attributes": errors})
        data["attributes"] = attributes
        self.lock_natural_keys(data["emails"], data["phones"], data.get("external_id"))
        match = self.find_match(
            [] if force else data["emails"],
            [] if force else data["phones"],
            data.get("external_id"),
        )
        if match is not None:
            field, row = match
            visible = access.sees(viewer, row.owner_id)
            raise _duplicate(field, str(row.id) if visible else None)
        customer = Customer(str(uuid.uuid4()))
        self._record(customer, Customer.register(customer.id, data, self._actor_id()))
        return customer.id

    def update(
        self,
        viewer: Mapping[str, Any],
        customer_id: str,
        changes: dict[str, Any],
        expected_version: int | None,
    ) -> str:
        access.require_writer(viewer)
        [customer] = self._lock_and_load(viewer, customer_id)
        _check_version(customer, expected_version)
        changes = dict(changes)
        if "phones" in changes:
            region = domain.default_region(changes.get("addresses", customer.addresses))
            changes["phones"], errors = normalise_phones(changes["phones"], region)
            if errors:
                raise BadRequest.for_fields({"phones": errors})
        if changes.get("external_id") and changes["external_id"] != customer.external_id:
            self.uow.lock_keys([f"external_id:{changes['external_id']}"])
            match = self.find_match(external_id=changes["external_id"])
            if match is not None:
                raise _duplicate("external_id", str(match[1].id))
        self._record(customer, customer.update(changes))
        return customer.id

    def set_tags(
        self,
        viewer: Mapping[str, Any],
        customer_id: str,
        add: list[str],
        remove: list[str],
        expected_version: int | None,
    ) -> str:
        access.require_writer(viewer)
        [customer] = self._lock_and_load(viewer, customer_id)
        _check_version(customer, expected_version)
        self._record(customer, customer.set_tags(add, remove))
        return customer.id

    def assign_owner(
        self,
        viewer: Mapping[str, Any],
        customer_id: str,
        owner_id: str | None,
        expected_version: int | None,
    ) -> str:
        access.require_writer(viewer)
        [customer] = self._lock_and_load(viewer, customer_id)
        access.require_manager(viewer, "assign customers")
        _check_version(customer, expected_version)
        self._record(customer, customer.assign(owner_id))
        return customer.id

    def record_consent(
        self, viewer: Mapping[str, Any], customer_id: str, consent: Mapping[str, Any]
    ) -> str:
        access.require_writer(viewer)
        [customer] = self._lock_and_load(viewer, customer_id)
        self._record(customer, customer.record_consent(consent, self._actor_id()))
        return customer.id

    def set_attributes(
        self,
        viewer: Mapping[str, Any],
        customer_id: str,
        values: Mapping[str, Any],
        expected_version: int | None,
    ) -> str:
        """Errors are keyed by attribute key (the fields of ``values``)."""
        access.require_writer(viewer)
        [customer] = self._lock_and_load(viewer, customer_id)
        _check_version(customer, expected_version)
        checked, errors = self._attributes(values, allow_unset=True)
        if errors:
            raise BadRequest.for_fields(errors)
        self._record(customer, customer.set_attributes(checked))
        return customer.id

    def _status(
        self,
        viewer: Mapping[str, Any],
        customer_id: str,
        expected_version: int | None,
        decide: Callable[[Customer], list],
    ) -> str:
        access.require_writer(viewer)
        [customer] = self._lock_and_load(viewer, customer_id)
        _check_version(customer, expected_version)
        self._record(customer, decide(customer))
        return customer.id

    def archive(
        self,
        viewer,
        customer_id,
        expected_version,
        reason: str | None = None,
        import_id: str | None = None,
    ) -> str:
        return self._status(
            viewer, customer_id, expected_version, lambda c: c.archive(reason, import_id)
        )

    def restore(self, viewer, customer_id, expected_version) -> str:
        return self._status(viewer, customer_id, expected_version, Customer.restore)

    def merge(self, actor: Mapping[str, Any], target_id: str, source_id: str) -> str:
        """Merge ``source`` into ``target``; returns the merge id."""
        access.require_writer(actor)
        target, source = self._lock_and_load(actor, target_id, source_id)
        merge_id = str(uuid.uuid4())
        target_changes, source_changes = domain.merge(target, source, merge_id)
        self._record(source, source_changes)
        self._record(target, target_changes)
        return merge_id

    def undo_merge(self, actor: Mapping[str, Any], merge_id: str) -> tuple[str, str]:
        access.require_writer(actor)
        merge = self.uow.conn.execute(
            select(tables.merges).where(tables.merges.c.merge_id == merge_id)
        ).first()
        if merge is None:
            raise not_found_merge(merge_id)
        target_id, source_id = str(merge.target_id), str(merge.source_id)
        try:
            target, source = self._lock_and_load(actor, target_id, source_id)
        except NotFound as exc:  # a merge of customers the actor may not see is none of theirs
            raise not_found_merge(merge_id) from exc
        target_changes, source_changes = domain.undo_merge(target, source, merge_id)
        self._record(target, target_changes)
        self._record(source, source_changes)
        return target_id, source_id

    def erase(self, actor: Mapping[str, Any], customer_id: str) -> str:
        """Erase a customer (crypto-shredding): the id stands for the customer it was merged
        into, and the customers merged into that one are the same person, erased with it.
        Each gets ``customer.erased`` (placeholders in the read model) and loses its key."""
        access.require_manager(actor, "erase customers")
        row, _ = views.resolve(self.uow.conn, customer_id)
        ids = [str(row.id), *views.merged_in(self.uow.conn, str(row.id))]
        for customer in self._lock_and_load(actor, *ids):
            self._record(customer, customer.erase())
            self.uow.vault.destroy(customer.id)
        return str(row.id)

    def define_attribute(
        self,
        actor: Mapping[str, Any],
        key: str,
        type_: str,
        label: str,
        options: list[str] | None,
    ) -> str:
        access.require_admin(actor, "define attributes")
        self.uow.lock_definition(key)
        definition = self.uow.load_definition(key)
        self.uow.record_definition(definition, definition.define(type_, label, options))
        return key

    def _actor_id(self) -> str | None:
        return self.uow.metadata.get("actor_id")


def not_found_merge(merge_id: str) -> NotFound:
    return NotFound("merge not found", {"resource_type": "merge", "resource_id": merge_id})


class Customers:
    """The RPCs' side of the command layer: one command, one transaction; answers with the
    customer as the viewer sees it after the command."""

    def __init__(self, session: Session, metadata: dict[str, Any]):
        self.session = session
        self.metadata = metadata

    def run(
        self, command: Callable[[CustomerCommands], Any], answer: Callable[[UnitOfWork, Any], Any]
    ):
        uow = UnitOfWork(self.session, self.metadata)
        try:
            outcome = command(CustomerCommands(uow))
            result = answer(uow, outcome)
            uow.commit()
        except BaseException:
            uow.rollback()
            raise
        return result

    def customer(self, viewer: Mapping[str, Any]) -> Callable[[UnitOfWork, str], dict]:
        """Answer with the changed customer as ``viewer`` sees it (placeholders when erased)."""

        def answer(uow: UnitOfWork, customer_id: str) -> dict[str, Any]:
            row = views.customer_row(uow.conn, customer_id)
            return views.row_json(row, viewer)

        return answer
