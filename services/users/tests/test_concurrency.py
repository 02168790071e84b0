"""Races, run for real: concurrent green threads, each with its own database session, against
the application layer (the code behind the RPCs)."""

import eventlet
import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.users.accounts import Accounts
from services.users.auth import Auth
from services.users.service import UsersService
from services.users.tests.conftest import PASSWORD, unique_email, unique_ip
from shared.db import create_service_engine
from shared.errors import Unauthorized


def _race(engine, count, work):
    """Run ``work(session)`` in ``count`` green threads at once; outcomes (value or error)."""
    start = eventlet.event.Event()

    def run():
        with Session(engine) as session:
            start.wait()
            try:
                return work(session)
            except Exception as exc:  # noqa: BLE001 - the outcome is what we look at
                return exc

    threads = [eventlet.spawn(run) for _ in range(count)]
    eventlet.sleep(0)
    start.send()
    return [thread.wait() for thread in threads]


def test_concurrent_failures_lock_exactly_once(users_engine, make_user):
    user = make_user()
    outcomes = _race(
        users_engine,
        9,
        lambda session: Auth(session).login(
            user["email"], "Wrong-Password-1", unique_ip(), None, None
        ),
    )
    codes = sorted(outcome.extra["code"] for outcome in outcomes)
    assert codes == ["account_locked"] * 5 + ["invalid_credentials"] * 4
    with users_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT event_type, payload->>'failures' FROM events WHERE stream_id = :s "
                "ORDER BY stream_version"
            ),
            {"s": f"{user['id']}:auth"},
        ).all()
    assert rows == [("user.login_failed", str(n)) for n in range(1, 6)] + [("user.locked", "5")]


def test_a_refresh_token_presented_twice_at_once_revokes_the_session(users_engine, make_user):
    user = make_user()
    with Session(users_engine) as session:
        first = Auth(session).login(user["email"], PASSWORD, None, None, None)
    outcomes = _race(users_engine, 2, lambda s: Auth(s).refresh(first["refresh_token"], None))
    winners = [o for o in outcomes if isinstance(o, dict)]
    losers = [o for o in outcomes if isinstance(o, Unauthorized)]
    assert len(winners) == 1 and [o.extra["code"] for o in losers] == ["refresh_reused"]
    with Session(users_engine) as session, pytest.raises(Unauthorized) as caught:
        Auth(session).refresh(winners[0]["refresh_token"], None)
    assert caught.value.extra["code"] == "invalid_refresh"


def test_concurrent_ensure_admin_creates_one(isolated_config):
    engine = create_service_engine(isolated_config["DB_URIS"]["users"], schema="users")
    try:
        outcomes = _race(
            engine,
            4,
            lambda s: Accounts(s).ensure_admin(unique_email("root"), PASSWORD, "Root"),
        )
        assert sorted(o["created"] for o in outcomes) == [False, False, False, True]
        assert len({o["user"]["id"] for o in outcomes}) == 1
    finally:
        engine.dispose()


def test_housekeeping_forgets_expired_tokens_and_attempts(users_engine, make_user):
    """The timer entrypoint, run in a nameko worker made by ``worker_factory``."""
    user = make_user()
    with Session(users_engine) as session:
        answer = Auth(session).login(user["email"], PASSWORD, unique_ip(), None, None)
    with users_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE refresh_tokens SET expires_at = now() - interval '1 minute' "
                "WHERE session_id IN (SELECT id FROM sessions WHERE user_id = :u)"
            ),
            {"u": user["id"]},
        )
        conn.execute(
            text(
                "INSERT INTO client_attempts (bucket, client, attempted_at) "
                "VALUES ('login', 'old', now() - interval '1 day')"
            )
        )
    with Session(users_engine) as session:
        worker_factory(UsersService, db=session).housekeeping()
    with users_engine.connect() as conn:
        mine = conn.execute(
            text(
                "SELECT count(*) FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id "
                "WHERE s.user_id = :u"
            ),
            {"u": user["id"]},
        )
        assert mine.scalar() == 0
        assert (
            conn.execute(text("SELECT count(*) FROM client_attempts WHERE client = 'old'")).scalar()
            == 0
        )
    with Session(users_engine) as session, pytest.raises(Unauthorized):
        Auth(session).refresh(answer["refresh_token"], None)
