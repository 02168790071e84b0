"""Bulk import of customers, driven by ``shared.importer`` (the gateway's upload operation and
``cms import-customers``): ``begin_import``, batches of rows to ``import_rows``, then
``finish_import``; progress and the report through ``get_import``, ``list_imports`` and
``import_rejections``. Reverting an import is :mod:`services.customers.import_revert`.

- The file was checked whole before the import begins (a broken file never gets here). The
  columns are checked when it begins (:func:`import_columns.map_columns`): an unknown column
  refuses the import before any row is read.
- Each row runs through the command layer (the same validation, duplicate rules, sealing,
  read model and events as ``create_customer`` / ``update_customer`` / ``set_tags`` /
  ``set_attributes``) in a savepoint of its own, with ``import_id`` and ``import_row`` in its
  events' metadata. A row that fails is rolled back to its savepoint and recorded in
  ``import_rejections`` with its reasons and cells; the import goes on.
- A batch is applied 50 rows to a transaction (:data:`CHUNK_ROWS`), each committing together
  with the import's counters: ``get_import`` shows the progress while the import runs, the
  counters always match what was applied, and rows sent twice (``last_row``) are not applied
  twice. A transaction holds the event table for its rows (every other writer of the service
  waits, so it stays short) and gives way to commands rather than deadlock with them
  (:func:`hold_event_table`, :func:`retried`).
- Modes: ``create`` (a row whose e-mail address, phone number or external id is in use is
  rejected as a duplicate), ``update`` (a row matching no customer on ``match_on`` is
  rejected) and ``upsert`` (update the match, else create). Rows are applied in file order,
  so a later row of the same file finds the customer an earlier row created (two rows with one
  e-mail address in upsert: the second updates the first's customer; in create mode it is a
  duplicate). ``match_on`` e-mail or phone finds an active customer (the oldest, as duplicate
  checks do); an external id finds any customer that has it (a merged one: its target).
- An update sets the fields whose cells are not empty: name, kind, company, source, language,
  preferred channel, external id and notes are replaced; e-mail addresses, phone numbers and
  tags are added to the customer's (never removed); the address cells are written over the
  customer's primary address (a new one when it has none); attribute values are set.
  Phone numbers without a country code are read in the country of the row's address, else
  (an update) of the customer's, else China.
- Who: admins, managers and sales users import (the gateway lets only admins and managers);
  customers created by a sales user's import are theirs, by anyone else's nobody's; a sales
  user's rows only update their own customers. Admins and managers see every import, others
  only their own.
- Rejected rows keep the cells as the file had them: personal data outside the sealed event
  log, which erasing a customer does not find. They are deleted when the import is reverted,
  and :meth:`Imports.housekeeping` (a timer of the service) deletes them 30 days after they
  were written (:data:`REJECTIONS_KEPT`). Housekeeping also ends an import that has had no
  batch for an hour (its driver died) as ``failed``, so that it can be reverted.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import eventlet
from psycopg2 import errors as pg_errors
from sqlalchemy import delete, literal, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from services.customers import access, tables, views
from services.customers.commands import CustomerCommands
from services.customers.domain import LIST_KEYS, default_region
from services.customers.import_columns import (
    ColumnMap,
    ParsedRow,
    error_reasons,
    map_columns,
    parse_row,
    reasons,
)
from services.customers.projections import TAKE_WRITERS_LOCK
from services.customers.uow import UnitOfWork, event_metadata
from services.customers.validation import normalise_phones
from shared.cursors import decode_cursor, encode_cursor
from shared.errors import CmsError, Conflict, NotFound, RuleViolation
from shared.events import isoformat, utcnow

log = logging.getLogger(__name__)

imports = tables.imports
rejections = tables.import_rejections

#: How long rejected rows (personal data in plain text) are kept.
REJECTIONS_KEPT = timedelta(days=30)
#: Longest cell text kept with a rejected row.
MAX_KEPT_CELL = 10_000
#: A running import with no batch for this long is ended as failed by housekeeping.
ABANDONED_AFTER = timedelta(hours=1)
#: Rows applied per transaction: a transaction holds the event table (every other writer
#: of this service waits for it), so it stays short.
CHUNK_ROWS = 50
#: How long a bulk transaction waits for a row or key lock before it lets go and retries.
LOCK_TIMEOUT_MS = 100
#: A bulk transaction that let go of its locks or deadlocked runs this many times in all.
BATCH_ATTEMPTS = 5
#: Seconds to wait before running it again (times the attempt).
RETRY_PAUSE = 0.2
OUTCOMES = ("created", "updated", "unchanged", "rejected")


def _iso(moment: datetime | None) -> str | None:
    return isoformat(moment) if moment is not None else None


def import_json(row: Row) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "filename": row.filename,
        "mode": row.mode,
        "match_on": row.match_on,
        "status": row.status,
        "total_rows": row.total_rows,
        "processed_rows": row.processed_rows,
        "created": row.created,
        "updated": row.updated,
        "unchanged": row.unchanged,
        "rejected": row.rejected,
        "revert_conflicts": row.revert_conflicts,
        "actor_id": row.actor_id,
        "error": row.error,
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "reverted_at": _iso(row.reverted_at),
    }


def not_found_import(import_id: str) -> NotFound:
    return NotFound("import not found", {"resource_type": "import", "resource_id": import_id})


def sees_import(viewer: Mapping[str, Any], row: Row) -> bool:
    return access.role(viewer) in access.MANAGERS or row.actor_id == viewer.get("id")


class RowRejected(Exception):
    def __init__(self, reasons: dict[str, list[str]]):
        super().__init__(reasons)
        self.reasons = reasons


def _retryable(exc: DBAPIError) -> bool:
    return isinstance(
        exc.orig,
        pg_errors.DeadlockDetected | pg_errors.SerializationFailure | pg_errors.LockNotAvailable,
    )


def hold_event_table(conn: Connection) -> None:
    """Take the event table's lock (waiting as long as it takes), then wait at most
    :data:`LOCK_TIMEOUT` for any other lock. A bulk transaction holds the event table for
    many rows; a command holds a customer's row, then waits for the event table. Were the
    bulk transaction to wait for that row, the two would deadlock and PostgreSQL would end one
    of them, perhaps the user's command. Instead the bulk transaction gives up first, its
    locks go, the command goes through, and :func:`retried` runs the bulk work again."""
    conn.execute(TAKE_WRITERS_LOCK)
    conn.execute(text("LOCK TABLE events IN EXCLUSIVE MODE"))
    conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'"))


def retried(session: Session, work: Callable[[], Any]) -> Any:
    """``work()`` in a transaction of its own, committed; run again (after a pause) when it
    gave up a lock (:func:`hold_event_table`) or deadlocked, :data:`BATCH_ATTEMPTS` times in
    all."""
    for attempt in range(1, BATCH_ATTEMPTS + 1):
        try:
            result = work()
            session.commit()
            return result
        except DBAPIError as exc:
            session.rollback()
            if not _retryable(exc) or attempt == BATCH_ATTEMPTS:
                raise
            log.info("bulk transaction run again after: %s", str(exc.orig).strip())
            eventlet.sleep(RETRY_PAUSE * attempt)
        except BaseException:
            session.rollback()
            raise
    raise AssertionError("unreachable")


class Imports:
    """The import RPCs' side: each method is one or more transactions on ``session``."""

    def __init__(self, session: Session, context: Any = None):
        self.session = session
        self.context = context

    # -- the process ---------------------------------------------------------------------------

    def begin(
        self,
        actor: Mapping[str, Any],
        import_id: str,
        filename: str,
        mode: str,
        match_on: str,
        columns: list[str],
        total_rows: int,
    ) -> dict[str, Any]:
        access.require_writer(actor)
        try:
            conn = self.session.connection()
            mapping = map_columns(columns, mode, match_on, views.attribute_definitions(conn))
            now = utcnow()
            inserted = conn.execute(
                pg_insert(imports)
                .values(
                    id=import_id,
                    filename=filename,
                    mode=mode,
                    match_on=match_on,
                    columns=list(columns),
                    mapping=mapping.columns,
                    status="running",
                    total_rows=total_rows,
                    processed_rows=0,
                    last_row=0,
                    created=0,
                    updated=0,
                    unchanged=0,
                    rejected=0,
                    actor_id=actor["id"],
                    actor_role=access.role(actor),
                    started_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(imports.c.id)
            ).first()
            if inserted is None:
                raise Conflict(
                    "an import with this id exists already",
                    {"code": "import_exists", "import_id": import_id},
                )
            answer = import_json(self._row(import_id))
            self.session.commit()
        except BaseException:
            self.session.rollback()
            raise
        return answer

    def rows(
        self, actor: Mapping[str, Any], import_id: str, rows: list[dict[str, Any]]
    ) -> dict[str, int]:
        """Apply one batch, :data:`CHUNK_ROWS` rows per transaction (each with the import's
        counters); answers the batch's counts."""
        ordered = sorted(rows, key=lambda item: item["row"])
        chunks = [ordered[i : i + CHUNK_ROWS] for i in range(0, len(ordered), CHUNK_ROWS)]
        total: Counter[str] = Counter()
        for chunk in chunks or [[]]:
            total.update(
                retried(self.session, lambda chunk=chunk: self._batch(actor, import_id, chunk))
            )
        return {outcome: total[outcome] for outcome in OUTCOMES}

    def finish(
        self, actor: Mapping[str, Any], import_id: str, status: str, error: str | None
    ) -> dict[str, Any]:
        try:
            row = self._own(actor, import_id, lock=True)
            if row.status != "running":
                if row.status == status:  # told twice: the same answer
                    return import_json(row)
                raise RuleViolation(
                    f"the import is {row.status} already", {"code": "import_finished"}
                )
            now = utcnow()
            self.session.execute(
                update(imports)
                .where(imports.c.id == import_id)
                .values(status=status, error=error, finished_at=now, updated_at=now)
            )
            answer = import_json(self._row(import_id))
            self.session.commit()
        except BaseException:
            self.session.rollback()
            raise
        return answer

    # -- reads ---------------------------------------------------------------------------------

    def get_import(self, viewer: Mapping[str, Any], import_id: str) -> dict[str, Any]:
        try:
            return import_json(self._visible(viewer, import_id))
        finally:
            self.session.rollback()

    def list_imports(
        self, viewer: Mapping[str, Any], limit: int = 50, cursor: str | None = None
    ) -> dict[str, Any]:
        """Newest first (keyset on ``started_at``, ``id``)."""
        try:
            query = select(imports)
            if access.role(viewer) not in access.MANAGERS:
                query = query.where(imports.c.actor_id == viewer["id"])
            if cursor:
                started, after_id = decode_cursor(cursor, (_moment, str))
                bound = tuple_(
                    literal(started, imports.c.started_at.type),
                    literal(after_id, imports.c.id.type),
                )
                query = query.where(tuple_(imports.c.started_at, imports.c.id) < bound)
            query = query.order_by(imports.c.started_at.desc(), imports.c.id.desc())
            found = self.session.execute(query.limit(limit + 1)).all()
        finally:
            self.session.rollback()
        page = found[:limit]
        next_cursor = None
        if len(found) > limit:
            next_cursor = encode_cursor(isoformat(page[-1].started_at), str(page[-1].id))
        return {"items": [import_json(row) for row in page], "next_cursor": next_cursor}

    def rejected_rows(
        self,
        viewer: Mapping[str, Any],
        import_id: str,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """The rejected rows in row order: ``{"row", "reasons", "values"}``."""
        try:
            self._visible(viewer, import_id)
            query = select(rejections).where(rejections.c.import_id == import_id)
            if cursor:
                query = query.where(rejections.c.row_number > decode_cursor(cursor, (int,))[0])
            found = self.session.execute(
                query.order_by(rejections.c.row_number).limit(limit + 1)
            ).all()
        finally:
            self.session.rollback()
        page = found[:limit]
        next_cursor = encode_cursor(page[-1].row_number) if len(found) > limit else None
        items = [
            {"row": row.row_number, "reasons": row.reasons, "values": row.row_values}
            for row in page
        ]
        return {"items": items, "next_cursor": next_cursor}

    # -- housekeeping --------------------------------------------------------------------------

    def housekeeping(self, now: datetime | None = None) -> tuple[int, int]:
        """Delete rejected rows older than :data:`REJECTIONS_KEPT`; end imports abandoned for
        :data:`ABANDONED_AFTER` as failed. Returns (rows deleted, imports ended)."""
        now = now or utcnow()
        try:
            purged = self.session.execute(
                delete(rejections).where(rejections.c.rejected_at < now - REJECTIONS_KEPT)
            ).rowcount
            abandoned = self.session.execute(
                update(imports)
                .where(imports.c.status == "running")
                .where(imports.c.updated_at < now - ABANDONED_AFTER)
                .values(
                    status="failed",
                    error="abandoned: no rows arrived for an hour",
                    finished_at=now,
                    updated_at=now,
                )
            ).rowcount
            self.session.commit()
        except BaseException:
            self.session.rollback()
            raise
        return purged, abandoned

    # -- helpers -------------------------------------------------------------------------------

    def _row(self, import_id: str, lock: bool = False) -> Row | None:
        query = select(imports).where(imports.c.id == import_id)
        if lock:
            query = query.with_for_update()
        return self.session.execute(query).first()

    def _own(self, actor: Mapping[str, Any], import_id: str, lock: bool = False) -> Row:
        """The import, when ``actor`` began it (only its driver feeds and ends it)."""
        row = self._row(import_id, lock)
        if row is None or row.actor_id != actor.get("id"):
            raise not_found_import(import_id)
        return row

    def _visible(self, viewer: Mapping[str, Any], import_id: str) -> Row:
        row = self._row(import_id)
        if row is None or not sees_import(viewer, row):
            raise not_found_import(import_id)
        return row

    def _batch(
        self, actor: Mapping[str, Any], import_id: str, rows: list[dict[str, Any]]
    ) -> dict[str, int]:
        record = self._own(actor, import_id, lock=True)
        if record.status != "running":
            raise RuleViolation(
                f"the import is {record.status}: it takes no more rows", {"code": "import_finished"}
            )
        conn = self.session.connection()
        hold_event_table(conn)  # before any row's savepoint: held for the chunk
        definitions = views.attribute_definitions(conn)
        columns = ColumnMap(dict(record.mapping))
        counts: Counter[str] = Counter({outcome: 0 for outcome in OUTCOMES})
        rejected: list[dict[str, Any]] = []
        last = record.last_row
        now = utcnow()
        for item in rows:
            number = item["row"]
            if number <= last:  # sent before (a batch tried again): applied already
                continue
            last = number
            outcome, reasons = self._apply_row(actor, record, columns, definitions, item)
            counts[outcome] += 1
            if reasons:
                rejected.append(
                    {
                        "import_id": import_id,
                        "row_number": number,
                        "reasons": reasons,
                        "row_values": {
                            column: (text or "")[:MAX_KEPT_CELL]
                            for column, text in item["values"].items()
                        },
                        "rejected_at": now,
                    }
                )
        if rejected:
            conn.execute(
                pg_insert(rejections).on_conflict_do_nothing(
                    index_elements=["import_id", "row_number"]
                ),
                rejected,
            )
        conn.execute(
            update(imports)
            .where(imports.c.id == import_id)
            .values(
                processed_rows=imports.c.processed_rows + sum(counts.values()),
                created=imports.c.created + counts["created"],
                updated=imports.c.updated + counts["updated"],
                unchanged=imports.c.unchanged + counts["unchanged"],
                rejected=imports.c.rejected + counts["rejected"],
                last_row=last,
                updated_at=utcnow(),
            )
        )
        return dict(counts)

    def _apply_row(
        self,
        actor: Mapping[str, Any],
        record: Row,
        columns: ColumnMap,
        definitions: Mapping[str, Any],
        item: Mapping[str, Any],
    ) -> tuple[str, dict[str, list[str]] | None]:
        parsed = parse_row(item["values"], columns, definitions)
        if parsed.errors:
            return "rejected", parsed.errors
        metadata = event_metadata(
            self.context, dict(actor), import_id=str(record.id), import_row=item["row"]
        )
        uow = UnitOfWork(self.session, metadata, writing=True)
        try:
            with self.session.begin_nested():
                return self._apply(uow, actor, record, columns, parsed), None
        except RowRejected as exc:
            return "rejected", exc.reasons
        except CmsError as exc:
            return "rejected", error_reasons(exc, parsed, columns, record.match_on)

    def _apply(
        self,
        uow: UnitOfWork,
        actor: Mapping[str, Any],
        record: Row,
        columns: ColumnMap,
        parsed: ParsedRow,
    ) -> str:
        commands = CustomerCommands(uow)
        data = parsed.data
        if record.mode == "create":
            return self._create(commands, actor, columns, parsed)
        match_column = columns.column_of(record.match_on)
        emails, phones = data.get("emails") or [], data.get("phones") or []
        external_id = data.get("external_id")
        commands.lock_natural_keys(emails, phones, external_id)
        if record.match_on == "email":
            match = commands.find_match(emails=emails) if emails else None
        elif record.match_on == "phone":
            match = commands.find_match(phones=phones) if phones else None
        else:
            match = commands.find_match(external_id=external_id) if external_id else None
        if match is None:
            if record.mode == "update":
                given = {"email": emails, "phone": phones, "external_id": external_id}
                message = "No customer matches." if given[record.match_on] else "Empty."
                raise RowRejected({match_column: [message]})
            return self._create(commands, actor, columns, parsed)
        row, _ = views.resolve(uow.conn, str(match[1].id))  # a merged customer: its target
        if not access.sees(actor, row.owner_id):
            raise RowRejected({match_column: ["Matches a customer you may not change."]})
        return self._update(commands, uow, actor, row, columns, parsed)

    def _create(
        self,
        commands: CustomerCommands,
        actor: Mapping[str, Any],
        columns: ColumnMap,
        parsed: ParsedRow,
    ) -> str:
        if not parsed.data.get("name"):
            raise RowRejected({columns.column_of("name"): ["Required to create a customer."]})
        data = {**parsed.data, "attributes": parsed.attributes, "owner_id": None}
        commands.create(actor, data, force=False)
        return "created"

    def _update(
        self,
        commands: CustomerCommands,
        uow: UnitOfWork,
        actor: Mapping[str, Any],
        row: Row,
        columns: ColumnMap,
        parsed: ParsedRow,
    ) -> str:
        customer_id = str(row.id)
        current = uow.lock_rows([customer_id])[customer_id]
        data, given = parsed.data, parsed.given
        changes: dict[str, Any] = {
            name: data[name]
            for name in (
                "name",
                "kind",
                "company",
                "source",
                "external_id",
                "language",
                "preferred_channel",
            )
            if name in given
        }
        if "addresses" in given:
            changes["addresses"] = _address(
                list(current.addresses), data["addresses"][0], parsed.address_parts
            )
        if "emails" in given:
            added = _added("emails", list(current.emails), data["emails"])
            if added is not None:
                changes["emails"] = added
        if "phones" in given:
            # national numbers are read in the customer's country (the row's, when it has one)
            region = default_region(changes.get("addresses", current.addresses))
            typed = [
                {**entry, "number": text}
                for entry, (_, text) in zip(data["phones"], parsed.sources["phones"], strict=True)
            ]
            phones, errors = normalise_phones(typed, region)
            if errors:
                raise RowRejected(reasons({"phones": errors}, parsed, columns))
            added = _added("phones", list(current.phones), phones)
            if added is not None:
                changes["phones"] = added
        if "preferences" in given:
            changes["preferences"] = {"notes": data["preferences"]["notes"]}
        if changes:
            commands.update(actor, customer_id, changes, None)
        if data.get("tags"):
            commands.set_tags(actor, customer_id, data["tags"], [], None)
        if parsed.attributes:
            commands.set_attributes(actor, customer_id, parsed.attributes, None)
        after = views.customer_row(uow.conn, customer_id)
        return "unchanged" if after.version == current.version else "updated"


def _added(name: str, existing: list[dict], given: list[dict]) -> list[dict] | None:
    """The customer's entries with those of the file it lacks after them (None: none lacked);
    the customer's primary entry stays primary."""
    key = LIST_KEYS[name]
    have = {key(entry) for entry in existing}
    new = []
    for entry in given:
        if key(entry) not in have:
            have.add(key(entry))
            new.append({**entry, "primary": False})
    if not new:
        return None
    if not existing:
        new[0]["primary"] = True
    return [*existing, *new]


def _address(existing: list[dict], given: dict, parts: set[str]) -> list[dict]:
    """The file's address parts written over the customer's primary address (or the first);
    the file's address as the primary one when the customer has none."""
    if not existing:
        return [given]
    index = next((i for i, entry in enumerate(existing) if entry.get("primary")), 0)
    merged = {**existing[index], **{part: given[part] for part in parts}}
    return [*existing[:index], merged, *existing[index + 1 :]]


def _moment(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
