"""Reverting a bulk import: everything it did is undone with new events (the log keeps the
import and its reversal), through the command layer, with ``reverts_import_id`` in their
metadata.

What the import did is read from the log: the events with its ``import_id`` in their metadata
(``events_import_id_idx``). For each customer they touched, the customer's stream is folded to
three states: *before* the import's first event, *after* its last, and *now*.

- A customer the import created is archived, with ``reason: "import_reverted"`` and the
  import's id in the ``customer.archived`` event: it leaves the default (active) lists and
  searches, its contacts are free again for new customers, and anything done to it since is
  kept (restoring it is an ordinary ``restore_customer``). An archived one stays as it is;
  an erased one is gone already. One merged into another customer since cannot be archived:
  it counts as a conflict.
- A customer the import updated gets back, field by field, the value it had before the import,
  where the field still has the value the import left. A field changed again since by someone
  else keeps its newer value and counts as a conflict (``revert_conflicts``); a field that is
  back at its old value already needs nothing. Fields are the profile fields (name, kind,
  company, e-mail addresses, phone numbers and addresses as whole lists, preferred channel,
  language, source, external id), each preference, each tag and each attribute value. An
  erased customer is left alone; a merged one cannot change, and each field the import
  changed counts as a conflict. A change the command layer refuses (an external id taken by
  another customer since, an attribute value no longer allowed) counts as a conflict for each
  field of that customer.

Reverting works through the touched customers in batches, one transaction each (locking their
rows, then the event table; run again when it had to let go of a lock, as an import's batches
are: ``imports.hold_event_table``), and marks the import ``reverted`` at the end (and deletes
its rejected rows). Every step is idempotent: a revert that stopped halfway is simply run
again, and finds the customers it already did at their old values (which count as nothing to
do, not as conflicts). A running import cannot be reverted, nor one reverted already (both
``RuleViolation``, 422).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from services.customers import access, tables
from services.customers.commands import CustomerCommands
from services.customers.domain import PREFERENCE_FIELDS, PROFILE_FIELDS, Customer
from services.customers.imports import (
    hold_event_table,
    import_json,
    not_found_import,
    retried,
    sees_import,
)
from services.customers.personal import open_event
from services.customers.projections import load_streams, subjects_of
from services.customers.uow import UnitOfWork, event_metadata
from shared.errors import CmsError, RuleViolation
from shared.events import utcnow

log = logging.getLogger(__name__)

#: Customers reverted per transaction.
REVERT_BATCH = 100

_TOUCHED = text(
    "SELECT stream_id, bool_or(event_type = 'customer.registered') AS created FROM events "
    "WHERE metadata ? 'import_id' AND metadata ->> 'import_id' = :import_id "
    "AND stream_type = 'customer' AND stream_id > :after "
    "GROUP BY stream_id ORDER BY stream_id LIMIT :limit"
)


def _three_way(before: Any, after: Any, now: Any) -> str:
    """``restore``, ``keep`` (nothing to do) or ``conflict`` for one field."""
    if before == after or now == before:
        return "keep"
    return "restore" if now == after else "conflict"


def _snapshot(customer: Customer) -> dict[str, Any]:
    return copy.deepcopy(customer.record())


class ImportRevert:
    def __init__(self, session: Session, context: Any = None):
        self.session = session
        self.context = context

    def revert(self, actor: Mapping[str, Any], import_id: str) -> dict[str, Any]:
        access.require_writer(actor)
        try:
            self._check(actor, import_id, self._row(import_id))
        finally:
            self.session.rollback()
        metadata = event_metadata(self.context, dict(actor), reverts_import_id=import_id)
        conflicts, after = 0, ""
        while True:
            touched = self.session.execute(
                _TOUCHED, {"import_id": import_id, "after": after, "limit": REVERT_BATCH}
            ).all()
            self.session.rollback()
            if touched:
                conflicts += retried(
                    self.session,
                    lambda touched=touched: self._batch(actor, metadata, import_id, touched),
                )
            if len(touched) < REVERT_BATCH:
                break
            after = touched[-1].stream_id
        try:
            row = self._row(import_id, lock=True)
            self._check(actor, import_id, row)
            now = utcnow()
            self.session.execute(
                update(tables.imports)
                .where(tables.imports.c.id == import_id)
                .values(
                    status="reverted",
                    reverted_at=now,
                    reverted_by=actor.get("id"),
                    revert_conflicts=conflicts,
                    updated_at=now,
                )
            )
            self.session.execute(
                delete(tables.import_rejections).where(
                    tables.import_rejections.c.import_id == import_id
                )
            )
            answer = import_json(self._row(import_id))
            self.session.commit()
        except BaseException:
            self.session.rollback()
            raise
        log.info("import %s reverted (%d conflicts)", import_id, conflicts)
        return answer

    # -- helpers -------------------------------------------------------------------------------

    def _row(self, import_id: str, lock: bool = False):
        query = select(tables.imports).where(tables.imports.c.id == import_id)
        if lock:
            query = query.with_for_update()
        return self.session.execute(query).first()

    @staticmethod
    def _check(actor: Mapping[str, Any], import_id: str, row) -> None:
        if row is None or not sees_import(actor, row):
            raise not_found_import(import_id)
        if row.status == "running":
            raise RuleViolation(
                "the import is still running; revert it once it has finished",
                {"code": "import_running"},
            )
        if row.status == "reverted":
            raise RuleViolation("the import was reverted already", {"code": "import_reverted"})

    def _batch(
        self, actor: Mapping[str, Any], metadata: dict[str, Any], import_id: str, touched: list
    ) -> int:
        """Revert what the import did to a batch of customers (their rows locked at once, in
        id order, as every command locks them); returns the conflicts."""
        uow = UnitOfWork(self.session, metadata)
        commands = CustomerCommands(uow)
        rows = uow.lock_rows([row.stream_id for row in touched])
        hold_event_table(uow.conn)  # rows first, as commands lock them
        uow.vault.preload(rows)  # their keys, in one query
        conflicts = 0
        for customer_id, created in touched:
            row = rows.get(customer_id)
            if row is None or row.status == "erased":
                continue
            if created:
                conflicts += self._archive(commands, actor, import_id, row)
            else:
                conflicts += self._customer(uow, commands, actor, import_id, customer_id)
        return conflicts

    def _customer(
        self,
        uow: UnitOfWork,
        commands: CustomerCommands,
        actor: Mapping[str, Any],
        import_id: str,
        customer_id: str,
    ) -> int:
        """Revert what the import changed in one customer it did not create."""
        events = load_streams(uow.conn, [customer_id])
        uow.vault.preload(subjects_of(events))
        mine = [
            index
            for index, event in enumerate(events)
            if (event.metadata or {}).get("import_id") == import_id
        ]
        if not mine:
            return 0
        customer = Customer(customer_id)
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for index, event in enumerate(events):
            if index == mine[0]:
                before = _snapshot(customer)
            opened = open_event(uow.vault, event)
            customer.apply(opened.type, opened.payload, opened.occurred_at)
            if index == mine[-1]:
                after = _snapshot(customer)
        return self._restore(commands, actor, customer_id, before, after, _snapshot(customer))

    def _archive(
        self, commands: CustomerCommands, actor: Mapping[str, Any], import_id: str, row
    ) -> int:
        """Archive a customer the import created (its read-model row, locked); 1 when it
        cannot be: merged into another since, or no longer the actor's to change."""
        if row.status == "archived":
            return 0
        if row.status == "merged" or not access.sees(actor, row.owner_id):
            return 1
        try:  # refused (if at all) before anything is written: no savepoint needed
            commands.archive(actor, str(row.id), None, "import_reverted", import_id)
        except CmsError as exc:
            log.info("import %s: customer %s not archived: %s", import_id, row.id, exc)
            return 1
        return 0

    def _restore(
        self,
        commands: CustomerCommands,
        actor: Mapping[str, Any],
        customer_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
        now: dict[str, Any],
    ) -> int:
        conflicts = 0
        profile: dict[str, Any] = {}
        preferences: dict[str, Any] = {}
        add, remove = [], []
        attributes: dict[str, Any] = {}

        def decide(old: Any, new: Any, current: Any) -> bool:
            nonlocal conflicts
            verdict = _three_way(old, new, current)
            conflicts += verdict == "conflict"
            return verdict == "restore"

        for name in PROFILE_FIELDS:
            if decide(before[name], after[name], now[name]):
                profile[name] = before[name]
        for name in PREFERENCE_FIELDS:
            old = before["preferences"].get(name)
            if decide(old, after["preferences"].get(name), now["preferences"].get(name)):
                preferences[name] = old
        for tag in sorted(set(before["tags"]) ^ set(after["tags"])):
            if decide(tag in before["tags"], tag in after["tags"], tag in now["tags"]):
                (add if tag in before["tags"] else remove).append(tag)
        for key in sorted(set(before["attributes"]) | set(after["attributes"])):
            old = before["attributes"].get(key)
            if decide(old, after["attributes"].get(key), now["attributes"].get(key)):
                attributes[key] = old
        if preferences:
            profile["preferences"] = preferences
        restoring = len(profile) - bool(preferences) + len(preferences)
        restoring += len(add) + len(remove) + len(attributes)
        if not restoring:
            return conflicts
        if now["status"] == "merged":
            return conflicts + restoring
        try:
            with self.session.begin_nested():
                if profile:
                    commands.update(actor, customer_id, profile, None)
                if add or remove:
                    commands.set_tags(actor, customer_id, add, remove, None)
                if attributes:
                    commands.set_attributes(actor, customer_id, attributes, None)
        except CmsError as exc:
            log.info("customer %s not restored: %s", customer_id, exc)
            return conflicts + restoring
        return conflicts
