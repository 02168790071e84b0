"""Sign-in, tokens and sessions through a running container against real PostgreSQL."""

import base64
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import text

from services.users import tokens
from services.users import uow as uow_module
from services.users.tests.conftest import PASSWORD, unique_email, unique_ip, user_actor
from shared.errors import BadRequest, TooManyRequests, Unauthorized
from shared.events import utcnow


def _code(call, **kwargs):
    with pytest.raises(Unauthorized) as caught:
        call(**kwargs)
    assert caught.value.status == 401
    return caught.value.extra["code"]


def _event_types(users_engine, stream_id):
    with users_engine.connect() as conn:
        return [
            row[0]
            for row in conn.execute(
                text("SELECT event_type FROM events WHERE stream_id = :s ORDER BY stream_version"),
                {"s": stream_id},
            )
        ]


def _revocations(users_engine, user_id):
    with users_engine.connect() as conn:
        return [
            row[0]
            for row in conn.execute(
                text(
                    "SELECT payload FROM events WHERE stream_id = :s "
                    "AND event_type = 'user.session_revoked' ORDER BY stream_version"
                ),
                {"s": f"{user_id}:auth"},
            )
        ]


def test_login_issues_tokens_and_records_the_session(users, make_user, users_engine):
    user = make_user(role="manager")
    answer = users.login(
        email=user["email"].upper(), password=PASSWORD, client_ip="192.0.2.7", user_agent="pytest"
    )
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 900
    assert answer["user"]["id"] == user["id"] and answer["user"]["last_login_at"].endswith("Z")
    assert answer["user"]["version"] == 1  # signing in does not move the account's version
    identity = users.authenticate(access_token=answer["access_token"])
    assert identity == {
        "kind": "user",
        "user_id": user["id"],
        "role": "manager",
        "session_id": identity["session_id"],
        "mfa_setup_required": False,
        "language": "zh-CN",
    }
    assert _event_types(users_engine, f"{user['id']}:auth") == ["user.login_succeeded"]
    with users_engine.connect() as conn:
        stored = conn.execute(
            text(
                "SELECT token_hash FROM refresh_tokens r JOIN sessions s "
                "ON s.id = r.session_id WHERE s.user_id = :u"
            ),
            {"u": user["id"]},
        ).scalar_one()
        log = conn.execute(
            text("SELECT payload::text || metadata::text FROM events WHERE stream_id LIKE :s"),
            {"s": f"{user['id']}%"},
        ).all()
    assert stored == tokens.digest(answer["refresh_token"]) != answer["refresh_token"]
    everything = " ".join(row[0] for row in log)
    for secret in (PASSWORD, answer["refresh_token"], answer["access_token"], stored):
        assert secret not in everything


def test_unknown_email_and_wrong_password_look_the_same(users, make_user):
    user = make_user()

    def attempt(email):
        start = time.perf_counter()
        with pytest.raises(Unauthorized) as caught:
            users.login(email=email, password="Wrong-Password-123", client_ip=unique_ip())
        return time.perf_counter() - start, caught.value

    wrong_time, wrong = attempt(user["email"])
    unknown_time, unknown = attempt(unique_email("nobody"))
    assert (wrong.detail, wrong.extra) == (unknown.detail, unknown.extra)
    assert wrong.extra == {"code": "invalid_credentials"}
    assert unknown_time > wrong_time * 0.4


def test_refresh_rotates_and_a_reused_token_revokes_the_family(users, make_user, users_engine):
    user = make_user()
    first = users.login(email=user["email"], password=PASSWORD)
    second = users.refresh(refresh_token=first["refresh_token"])
    third = users.refresh(refresh_token=second["refresh_token"], client_ip="192.0.2.9")
    assert len({first["refresh_token"], second["refresh_token"], third["refresh_token"]}) == 3
    session = users.authenticate(access_token=third["access_token"])["session_id"]
    assert session == users.authenticate(access_token=first["access_token"])["session_id"]
    other = users.login(email=user["email"], password=PASSWORD)  # another device

    assert _code(users.refresh, refresh_token=first["refresh_token"]) == "refresh_reused"
    assert _code(users.refresh, refresh_token=third["refresh_token"]) == "invalid_refresh"
    assert _code(users.authenticate, access_token=third["access_token"]) == "session_revoked"
    assert users.authenticate(access_token=other["access_token"])["user_id"] == user["id"]
    assert users.refresh(refresh_token=other["refresh_token"])["user"]["id"] == user["id"]
    [revocation] = _revocations(users_engine, user["id"])
    assert revocation == {
        "user_id": user["id"],
        "session_ids": [session],
        "reason": "refresh_reused",
    }
    assert _code(users.refresh, refresh_token="never-issued") == "invalid_refresh"
    with pytest.raises(BadRequest):
        users.refresh(refresh_token="")


def test_expired_refresh_token(users, make_user, users_engine):
    user = make_user()
    answer = users.login(email=user["email"], password=PASSWORD)
    with users_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE refresh_tokens SET expires_at = now() - interval '1 second' "
                "WHERE token_hash = :h"
            ),
            {"h": tokens.digest(answer["refresh_token"])},
        )
    assert _code(users.refresh, refresh_token=answer["refresh_token"]) == "invalid_refresh"


def test_logout_ends_the_session(users, make_user, users_engine):
    user = make_user()
    answer = users.login(email=user["email"], password=PASSWORD)
    assert users.logout(refresh_token=answer["refresh_token"]) is None
    assert _code(users.authenticate, access_token=answer["access_token"]) == "session_revoked"
    assert _code(users.refresh, refresh_token=answer["refresh_token"]) == "invalid_refresh"
    assert users.logout(refresh_token=answer["refresh_token"]) is None
    assert users.logout(refresh_token="unknown") is None
    assert [r["reason"] for r in _revocations(users_engine, user["id"])] == ["logout"]


def test_authenticate_refuses_expired_tampered_and_alg_none(users, make_user):
    user = make_user()
    answer = users.login(email=user["email"], password=PASSWORD)
    identity = users.authenticate(access_token=answer["access_token"])
    expired = tokens.issue_access_token(
        user["id"], identity["session_id"], "sales", datetime.now(UTC) - timedelta(hours=1), 60
    )
    assert _code(users.authenticate, access_token=expired) == "token_expired"
    head, body, signature = answer["access_token"].split(".")
    tampered = f"{head}.{body[:-2]}{'A' if body[-2] != 'A' else 'B'}{body[-1]}.{signature}"
    assert _code(users.authenticate, access_token=tampered) == "token_invalid"
    none_head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    assert _code(users.authenticate, access_token=f"{none_head}.{body}.") == "token_invalid"
    assert _code(users.authenticate, access_token="garbage") == "token_invalid"
    assert _code(users.authenticate, access_token=None) == "token_invalid"
    forged = tokens.issue_access_token(
        user["id"], str(uuid.uuid4()), "admin", datetime.now(UTC), 60
    )
    assert _code(users.authenticate, access_token=forged) == "session_revoked"


def test_deactivation_ends_every_session_at_once(users, make_user, admin, users_engine):
    user = make_user()
    sessions = [users.login(email=user["email"], password=PASSWORD) for _ in range(3)]
    users.deactivate(actor=user_actor(admin), user_id=user["id"])
    for answer in sessions:
        assert _code(users.authenticate, access_token=answer["access_token"]) == "session_revoked"
        assert _code(users.refresh, refresh_token=answer["refresh_token"]) == "invalid_refresh"
    [revocation] = _revocations(users_engine, user["id"])
    assert revocation["reason"] == "deactivated" and len(revocation["session_ids"]) == 3
    assert _code(users.login, email=user["email"], password=PASSWORD) == "account_inactive"
    assert _code(users.login, email=user["email"], password="Wrong-Password-1") == (
        "invalid_credentials"
    )
    users.reactivate(actor=user_actor(admin), user_id=user["id"])
    assert users.login(email=user["email"], password=PASSWORD)["user"]["active"]


def test_role_changes_apply_to_live_tokens(users, make_user, admin):
    user = make_user(role="analyst")
    answer = users.login(email=user["email"], password=PASSWORD)
    users.change_role(actor=user_actor(admin), user_id=user["id"], role="manager")
    assert users.authenticate(access_token=answer["access_token"])["role"] == "manager"


def test_lockout_after_five_failures(users, make_user, users_engine, monkeypatch):
    user = make_user()
    ip = unique_ip()
    codes = [
        _code(users.login, email=user["email"], password=f"Wrong-Password-{i}", client_ip=ip)
        for i in range(5)
    ]
    assert codes == ["invalid_credentials"] * 4 + ["account_locked"]
    with pytest.raises(Unauthorized) as caught:
        users.login(email=user["email"], password=PASSWORD, client_ip=unique_ip())
    assert caught.value.extra["code"] == "account_locked"
    assert 890 <= caught.value.extra["retry_after"] <= 900
    types = _event_types(users_engine, f"{user['id']}:auth")
    assert types == ["user.login_failed"] * 5 + ["user.locked"]
    # The lock ends by itself: move the service's clock 15 minutes on.
    monkeypatch.setattr(uow_module, "utcnow", lambda: utcnow() + timedelta(minutes=15, seconds=1))
    answer = users.login(email=user["email"], password=PASSWORD)
    assert answer["user"]["id"] == user["id"]


def test_too_many_attempts_from_one_client(users, make_user):
    user = make_user()
    ip = unique_ip()
    for i in range(20):
        with pytest.raises(Unauthorized):
            users.login(email=user["email"], password=f"Wrong-Password-{i}", client_ip=ip)
    with pytest.raises(TooManyRequests) as caught:
        users.login(email=unique_email(), password=PASSWORD, client_ip=ip)
    assert caught.value.status == 429 and 1 <= caught.value.extra["retry_after"] <= 300
    other = make_user()
    assert users.login(email=other["email"], password=PASSWORD, client_ip=unique_ip())


def test_change_password_keeps_only_the_current_session(users, make_user, users_engine):
    user = make_user()
    current = users.login(email=user["email"], password=PASSWORD)
    elsewhere = users.login(email=user["email"], password=PASSWORD)
    session_id = users.authenticate(access_token=current["access_token"])["session_id"]
    actor = user_actor(user, session_id=session_id)
    with pytest.raises(BadRequest) as caught:
        users.change_password(
            actor=actor,
            user_id=user["id"],
            current_password="Not-It-12345",
            new_password="password1234",
        )
    assert set(caught.value.extra["errors"]) == {"current_password", "new_password"}
    with pytest.raises(BadRequest) as caught:
        users.change_password(
            actor=actor, user_id=user["id"], current_password=PASSWORD, new_password=PASSWORD
        )
    assert set(caught.value.extra["errors"]) == {"new_password"}
    new_password = "Quiet-Meadow-Compass-77"
    users.change_password(
        actor=actor, user_id=user["id"], current_password=PASSWORD, new_password=new_password
    )
    assert users.authenticate(access_token=current["access_token"])["user_id"] == user["id"]
    assert _code(users.authenticate, access_token=elsewhere["access_token"]) == "session_revoked"
    assert _code(users.login, email=user["email"], password=PASSWORD) == "invalid_credentials"
    assert users.login(email=user["email"], password=new_password)
    assert "user.password_changed" in _event_types(users_engine, user["id"])


def test_reset_password_ends_every_session(users, make_user, admin):
    user = make_user()
    answer = users.login(email=user["email"], password=PASSWORD)
    with pytest.raises(BadRequest):
        users.reset_password(
            actor=user_actor(admin), user_id=user["id"], new_password="qwerty123456"
        )
    users.reset_password(
        actor=user_actor(admin), user_id=user["id"], new_password="Amber-Falcon-Orchard-19"
    )
    assert _code(users.authenticate, access_token=answer["access_token"]) == "session_revoked"
    assert users.login(email=user["email"], password="Amber-Falcon-Orchard-19")


def test_errors_cross_rpc_as_themselves(users_container, nameko_config, make_user):
    """Over real AMQP (what the gateway does), a service error arrives as its own class."""
    user = make_user()
    with ServiceRpcProxy("users", nameko_config, timeout=10) as proxy:
        with pytest.raises(Unauthorized) as caught:
            proxy.login(email=user["email"], password="Wrong-Password-1")
        assert caught.value.extra == {"code": "invalid_credentials"}
        answer = proxy.login(email=user["email"], password=PASSWORD)
        assert proxy.authenticate(access_token=answer["access_token"])["user_id"] == user["id"]
        with pytest.raises(BadRequest) as caught:
            proxy.get_user(user_id="nope")
        assert caught.value.extra["errors"] == {"user_id": ["Not a valid UUID."]}
