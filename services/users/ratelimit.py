"""Per-client attempt limits (login, self-registration), shared by every process of the
service through the ``client_attempts`` table.

A sliding window: a client may make ``limit`` attempts in any ``window`` seconds; the next one
is refused with ``TooManyRequests`` and ``retry_after`` (when the oldest attempt in the window
leaves it). Refused attempts are not counted, so a client that waits does get through. An
advisory lock per (bucket, client) makes check-and-count atomic across processes.
"""

from __future__ import annotations

import math
import zlib
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from services.users import tables
from shared.errors import TooManyRequests

MAX_CLIENT_LENGTH = 100


def hit(
    session: Session,
    bucket: str,
    client: str | None,
    limit: int,
    window_seconds: int,
    now: datetime,
) -> None:
    """Count one attempt of ``client`` in ``bucket``, or refuse it. Commits on its own, so the
    count stands whatever the attempt's outcome. No client (not known): no limit."""
    if not client:
        return
    client = client.strip()[:MAX_CLIENT_LENGTH]
    attempts = tables.client_attempts
    window_start = now - timedelta(seconds=window_seconds)
    try:
        conn = session.connection()
        key = zlib.crc32(f"{bucket}\x00{client}".encode())
        conn.execute(text("SELECT pg_advisory_xact_lock(1, :key)"), {"key": _int4(key)})
        conn.execute(
            delete(attempts).where(
                attempts.c.bucket == bucket,
                attempts.c.client == client,
                attempts.c.attempted_at <= window_start,
            )
        )
        count, oldest = conn.execute(
            select(func.count(), func.min(attempts.c.attempted_at)).where(
                attempts.c.bucket == bucket, attempts.c.client == client
            )
        ).one()
        if count >= limit:
            session.commit()
            retry_after = max(1, math.ceil((oldest - window_start).total_seconds()))
            raise TooManyRequests(
                "too many attempts from this client; try again later",
                {"code": "rate_limited", "retry_after": retry_after},
            )
        conn.execute(insert(attempts).values(bucket=bucket, client=client, attempted_at=now))
        session.commit()
    except BaseException:
        session.rollback()
        raise


def forget(session: Session, bucket: str, client: str | None, attempted_at: datetime) -> None:
    """Take back one counted attempt (a sign-in that succeeded: only failures should use up a
    client's allowance, or a few scripts behind one address lock each other out). Commits."""
    if not client:
        return
    session.execute(
        text(
            "DELETE FROM client_attempts WHERE ctid = (SELECT ctid FROM client_attempts "
            "WHERE bucket = :bucket AND client = :client AND attempted_at = :at LIMIT 1)"
        ),
        {"bucket": bucket, "client": client.strip()[:MAX_CLIENT_LENGTH], "at": attempted_at},
    )
    session.commit()


def purge(session: Session, older_than: datetime) -> int:
    """Forget attempts no window can still see (housekeeping)."""
    result = session.execute(
        delete(tables.client_attempts).where(tables.client_attempts.c.attempted_at < older_than)
    )
    session.commit()
    return result.rowcount or 0


def _int4(value: int) -> int:
    """crc32 is unsigned 32-bit; PostgreSQL's two-key advisory lock wants signed int4."""
    return value - (1 << 32) if value >= (1 << 31) else value
