"""Idempotent event consumers (DESIGN §3).

A consumer records ``(consumer, event_id)`` in ``processed_events`` in the same transaction as
its effect, so an event delivered twice (RabbitMQ redelivery, a relay republishing a batch,
catch-up overlapping live delivery) changes the consumer's state once.

Catch-up reads a source service's ``read_events`` from the consumer's own cursor in
``consumer_positions``, which only moves over a contiguous, fully applied prefix of the
source's log: live deliveries may arrive out of order or not at all (a queue not yet bound),
and catch-up is what guarantees nothing is missed.

A consumer's transaction commits without waiting for its WAL flush (:data:`NO_FLUSH_WAIT`,
in the same round trip as its first statement): what it writes is derived from the source's
log, and a commit a database crash loses (at most three ``wal_writer_delay``, 0.6 s by default)
takes its claim and its cursor with it, so the next catch-up applies the event again.
Commits stay in order, and a later flushed commit flushes every earlier one. A transaction
that appends to an event log is the exception: ``EventStore.append`` sets the flush wait back
on for it (an event once published must never vanish from its log).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

Envelope = Mapping[str, Any]
Apply = Callable[[Session, Envelope], None]
#: Applies a page's new events (in position order) at once, in the caller's transaction.
ApplyPage = Callable[[Session, Sequence[Envelope]], None]
Fetch = Callable[[int, int], Sequence[Envelope]]

#: ``(database, consumer, source) -> position`` that this process saw committed as the
#: consumer's cursor: a live event at or below it is already applied (the cursor covers a
#: contiguous prefix), so ``apply_once`` skips it without a query. Cursors only grow, so a
#: value here is never ahead of the database's.
_applied_through: dict[tuple[str, str, str], int] = {}


#: Prefixed to a consumer transaction's first statement: commit without waiting for the WAL
#: flush (see the module's docstring; ``EventStore.append`` turns the wait back on).
NO_FLUSH_WAIT = "SET LOCAL synchronous_commit TO OFF; "


def _key(session: Session, consumer: str, source: str) -> tuple[str, str, str]:
    return (str(session.get_bind().url), consumer, source)


def remember_cursor(session: Session, consumer: str, source: str, position: int) -> None:
    """Note a cursor this process has just committed (consumers that move their own)."""
    key = _key(session, consumer, source)
    if position > _applied_through.get(key, 0):
        _applied_through[key] = position


def _ahead_of_cursor(session: Session, consumer: str, envelope: Envelope) -> int | None:
    """How many positions the event lies past the cursor this process knows for
    ``consumer`` (0 or less: already applied); None for an envelope without a position or
    source."""
    return ahead_of_known_cursor(str(session.get_bind().url), consumer, envelope)


def ahead_of_known_cursor(database: str, consumer: str, envelope: Envelope) -> int | None:
    """:func:`_ahead_of_cursor` for a caller without a session (an entrypoint deciding
    whether a delivery needs a worker at all): ``database`` is ``str(engine.url)`` of the
    consumer's engine."""
    position, source = envelope.get("position"), envelope.get("source")
    if not position or not source:  # positions start at 1
        return None
    return int(position) - _applied_through.get((database, consumer, source), 0)


def already_applied(session: Session, consumer: str, envelope: Envelope) -> bool:
    """Whether this process knows ``consumer``'s cursor to be at or past the event."""
    ahead = _ahead_of_cursor(session, consumer, envelope)
    return ahead is not None and ahead <= 0


def claim(session: Session, consumer: str, envelope: Envelope) -> bool:
    """Record that ``consumer`` handles this event; False when it already did."""
    inserted = session.execute(
        text(
            NO_FLUSH_WAIT + "INSERT INTO processed_events (consumer, event_id, source, position) "
            "VALUES (:consumer, :event_id, :source, :position) "
            "ON CONFLICT (consumer, event_id) DO NOTHING RETURNING 1"
        ),
        {
            "consumer": consumer,
            "event_id": uuid.UUID(str(envelope["event_id"])),
            "source": envelope.get("source", ""),
            "position": envelope.get("position"),
        },
    ).scalar()
    return inserted is not None


def claim_page(session: Session, consumer: str, source: str, page: Sequence[Envelope]) -> set[str]:
    """:func:`claim` for a whole page of ``source`` in one statement: the ids of the events
    not claimed before."""
    return _claim_all(session, consumer, page, [source] * len(page))


def claim_all(session: Session, consumer: str, envelopes: Sequence[Envelope]) -> set[str]:
    """:func:`claim` for live deliveries (each with its own ``source``) in one statement."""
    return _claim_all(
        session, consumer, envelopes, [str(envelope.get("source", "")) for envelope in envelopes]
    )


def _claim_all(
    session: Session, consumer: str, envelopes: Sequence[Envelope], sources: Sequence[str]
) -> set[str]:
    rows = session.execute(
        text(
            NO_FLUSH_WAIT  # noqa: S608 - constants only
            + "INSERT INTO processed_events (consumer, event_id, source, position) "
            "SELECT :consumer, e.id, e.source, e.position FROM unnest("
            "CAST(:ids AS uuid[]), CAST(:sources AS text[]), CAST(:positions AS bigint[])"
            ") AS e(id, source, position) "
            "ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id"
        ),
        {
            "consumer": consumer,
            "ids": [str(envelope["event_id"]) for envelope in envelopes],
            "sources": list(sources),
            "positions": [envelope.get("position") for envelope in envelopes],
        },
    )
    return {str(row[0]) for row in rows}


def apply_once(session: Session, consumer: str, envelope: Envelope, apply: Apply) -> bool:
    """Apply ``envelope`` with ``apply`` unless ``consumer`` already has, and commit.

    Returns True when the effect was applied now. On error nothing is recorded (the
    transaction rolls back) and the exception propagates, so the message can be requeued.
    """
    if already_applied(session, consumer, envelope):
        log.debug("%s skips %s (behind its cursor)", consumer, envelope["event_id"])
        return False
    try:
        if not claim(session, consumer, envelope):
            session.rollback()
            log.debug("%s skips %s (already processed)", consumer, envelope["event_id"])
            return False
        apply(session, envelope)
        session.commit()
        return True
    except Exception:
        session.rollback()
        raise


def apply_all_once(
    session: Session,
    consumer: str,
    envelopes: Sequence[Envelope],
    apply: Apply | None = None,
    apply_page: ApplyPage | None = None,
) -> list[Envelope]:
    """:func:`apply_once` for a batch of live deliveries (``shared.subscriptions``,
    ``batched=True``), in one transaction: one claim for all of them, then ``apply`` for each
    new one in delivery order (or ``apply_page`` for all of them at once), and one commit.
    Returns the envelopes applied now. On error the whole batch rolls back and the exception
    propagates, so every delivery of the batch is requeued."""
    fresh: dict[str, Envelope] = {}
    for envelope in envelopes:
        if not already_applied(session, consumer, envelope):
            fresh.setdefault(str(envelope["event_id"]), envelope)  # a redelivery beside it
    if not fresh:
        log.debug("%s skips a batch of %d (behind its cursor)", consumer, len(envelopes))
        session.rollback()  # whatever the caller began for it (a lock) ends here
        return []
    try:
        new = claim_all(session, consumer, list(fresh.values()))
        applied = [envelope for event_id, envelope in fresh.items() if event_id in new]
        if apply_page is not None:
            if applied:
                apply_page(session, applied)
        elif apply is not None:
            for envelope in applied:
                apply(session, envelope)
        session.commit()
    except Exception:
        session.rollback()
        raise
    return applied


def apply_next(
    session: Session, consumer: str, source: str, envelope: Envelope, apply: Apply
) -> bool:
    """Apply a live ``envelope`` if it is the very next event of ``source`` after the
    consumer's cursor, moving the cursor onto it in the same transaction, and commit.

    For consumers of *every* event of a source (whose positions then follow one another):
    a live event applied this way needs no ``read_events`` round trip. Returns False, with
    nothing done, when the event is not the next one (a gap, an event already passed, no
    cursor yet): the caller catches up instead."""
    return apply_run(session, consumer, source, [envelope], apply)


def apply_run(
    session: Session, consumer: str, source: str, run: Sequence[Envelope], apply: Apply
) -> bool:
    """:func:`apply_next` for a run of live events of ``source`` whose positions follow one
    another, the first right after the cursor: one transaction moves the cursor onto the
    last, claims them all and applies each new one. False, with nothing done, when the first
    is not the next event."""
    first, last = int(run[0]["position"]), int(run[-1]["position"])
    if last - first != len(run) - 1:
        raise ValueError(f"positions {first}..{last} are not a run of {len(run)}")
    try:
        moved = session.execute(
            text(
                NO_FLUSH_WAIT  # noqa: S608 - constants only
                + "UPDATE consumer_positions SET position = :position, "
                "updated_at = now() "
                "WHERE consumer = :consumer AND source = :source AND position = :previous"
            ),
            {"consumer": consumer, "source": source, "position": last, "previous": first - 1},
        ).rowcount
        if not moved:
            session.rollback()
            return False
        new = claim_all(session, consumer, run)
        for envelope in run:
            if str(envelope["event_id"]) in new:
                apply(session, envelope)
        session.commit()
    except Exception:
        session.rollback()
        raise
    remember_cursor(session, consumer, source, last)
    return True


def cursor(session: Session, consumer: str, source: str) -> int:
    """The position up to which ``consumer`` has caught up on ``source``."""
    return (
        session.execute(
            text(
                "SELECT position FROM consumer_positions "
                "WHERE consumer = :consumer AND source = :source"
            ),
            {"consumer": consumer, "source": source},
        ).scalar()
        or 0
    )


def advance_cursor(session: Session, consumer: str, source: str, position: int) -> None:
    """Move ``consumer``'s cursor on ``source`` forward (never back), in the caller's
    transaction."""
    session.execute(
        text(
            "INSERT INTO consumer_positions (consumer, source, position) "
            "VALUES (:consumer, :source, :position) "
            "ON CONFLICT (consumer, source) DO UPDATE SET "
            "position = GREATEST(consumer_positions.position, EXCLUDED.position), "
            "updated_at = now()"
        ),
        {"consumer": consumer, "source": source, "position": position},
    )


def catch_up(
    session: Session,
    consumer: str,
    source: str,
    fetch: Fetch,
    apply: Apply,
    batch_size: int = 500,
    apply_page: ApplyPage | None = None,
) -> int:
    """Read ``source``'s events after the consumer's cursor with ``fetch(after, limit)`` (the
    source's ``read_events`` RPC) and apply each one not yet applied (``apply_page``, when
    given, takes a page's new events at once instead). Returns how many were applied now.

    Each page is one transaction: the cursor moves first (so that a live ``apply_next``,
    which also moves it first, queues behind the page instead of deadlocking with it), then
    the page's events are claimed and applied. A failure rolls the whole page back and
    propagates; the next catch-up starts from the same place."""
    applied = 0
    position = cursor(session, consumer, source)
    session.rollback()
    while True:
        page = fetch(position, batch_size)
        if page:
            last = int(page[-1]["position"])
            try:
                advance_cursor(session, consumer, source, last)
                new = claim_page(session, consumer, source, page)
                fresh = [envelope for envelope in page if str(envelope["event_id"]) in new]
                if apply_page is not None:
                    apply_page(session, fresh)
                else:
                    for envelope in fresh:
                        apply(session, envelope)
                applied += len(fresh)
                session.commit()
            except Exception:
                session.rollback()
                raise
            position = last
            remember_cursor(session, consumer, source, position)
        if len(page) < batch_size:
            return applied


#: How far (in positions) a live event may be ahead of the cursor this process knows before
#: :func:`catch_up_first` reads the backlog in pages instead of one delivery at a time.
FAR_BEHIND = 1000
_catching_up: dict[str, threading.Lock] = {}


def catching_up(consumer: str) -> threading.Lock:
    """The lock a consumer's whole catch-up holds in this process: its periodic catch-up
    takes it (``with catching_up(name): ...``) and :func:`catch_up_first` tries it, so that
    a start with a backlog reads the backlog once, not once for each."""
    return _catching_up.setdefault(consumer, threading.Lock())


def catch_up_first(
    session: Session, consumer: str, envelope: Envelope, run: Callable[[], int]
) -> None:
    """Before a live event is applied: when it is more than :data:`FAR_BEHIND` positions
    past the consumer's known cursor (or none is known yet, as after a start), run the
    consumer's catch-up ``run`` (pages of ``read_events``, one transaction each) unless
    one already runs in this process (:func:`catching_up`). A backlog (a bulk import, the
    consumer down for a while) is then applied in pages, and its queued deliveries are
    skipped as already applied. A failing catch-up is logged; the live event is applied
    all the same."""
    ahead = _ahead_of_cursor(session, consumer, envelope)
    if ahead is None or ahead <= FAR_BEHIND:
        return
    lock = catching_up(consumer)
    if not lock.acquire(blocking=False):
        return
    try:
        run()
    except Exception as exc:  # noqa: BLE001 - the periodic catch-up will try again
        session.rollback()
        log.warning("%s could not catch up on %s now: %s", consumer, envelope["source"], exc)
    finally:
        lock.release()
