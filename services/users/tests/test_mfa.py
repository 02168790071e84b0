"""TOTP enrolment, sign-in with a code or a recovery code, removal."""

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import text

from services.users import totp
from services.users.tests.conftest import PASSWORD, system_actor, user_actor
from shared.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    RuleViolation,
    ServiceUnavailable,
    Unauthorized,
)


def _code(call, **kwargs):
    with pytest.raises(Unauthorized) as caught:
        call(**kwargs)
    return caught.value.extra["code"]


def _enrol(users, user):
    actor = user_actor(user)
    begun = users.totp_begin(actor=actor, user_id=user["id"])
    secret = begun["secret"]
    assert begun["otpauth_uri"].startswith("otpauth://totp/")
    assert f"secret={secret}" in begun["otpauth_uri"]
    assert begun["qr_svg"].lstrip().startswith("<svg")
    with pytest.raises(BadRequest) as caught:
        users.totp_confirm(actor=actor, user_id=user["id"], code="000000")
    assert list(caught.value.extra["errors"]) == ["code"]
    confirmed = users.totp_confirm(actor=actor, user_id=user["id"], code=pyotp.TOTP(secret).now())
    return secret, confirmed["recovery_codes"]


def test_enrol_then_sign_in_with_a_code_and_with_a_recovery_code(users, make_user, users_engine):
    user = make_user()
    secret, recovery = _enrol(users, user)
    assert len(recovery) == 10 and len(set(recovery)) == 10
    assert users.get_user(user_id=user["id"])["mfa_enabled"]

    assert _code(users.login, email=user["email"], password=PASSWORD) == "mfa_required"
    assert _code(users.login, email=user["email"], password=PASSWORD, otp="123456") == (
        "invalid_otp"
    )
    # The step used to confirm is spent; the next one (allowed clock drift) works, once.
    next_code = pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30))
    answer = users.login(email=user["email"], password=PASSWORD, otp=next_code)
    assert answer["user"]["mfa_enabled"]
    assert _code(users.login, email=user["email"], password=PASSWORD, otp=next_code) == (
        "invalid_otp"
    )
    assert users.login(email=user["email"], password=PASSWORD, otp=recovery[3].upper())
    assert _code(users.login, email=user["email"], password=PASSWORD, otp=recovery[3]) == (
        "invalid_otp"
    )
    assert (
        _code(users.login, email=user["email"], password="Wrong-Password-9", otp=recovery[4])
        == "invalid_credentials"
    )
    with users_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT event_type, payload FROM events "
                "WHERE stream_id = :s ORDER BY stream_version"
            ),
            {"s": f"{user['id']}:auth"},
        ).all()
        stored = conn.execute(
            text("SELECT secret_encrypted FROM user_totp WHERE user_id = :u"), {"u": user["id"]}
        ).scalar_one()
        log = conn.execute(
            text("SELECT string_agg(payload::text, ' ') FROM events WHERE stream_id LIKE :s"),
            {"s": f"{user['id']}%"},
        ).scalar()
    assert [(t, p.get("method") or p.get("reason")) for t, p in rows] == [
        ("user.login_failed", "invalid_otp"),
        ("user.login_succeeded", "totp"),
        ("user.login_failed", "invalid_otp"),
        ("user.login_succeeded", "recovery_code"),
        ("user.login_failed", "invalid_otp"),
        ("user.login_failed", "invalid_password"),
    ]
    stored = bytes(stored)  # encrypted at rest: neither the secret nor its bytes
    assert secret.encode() not in stored and base64.b32decode(secret) not in stored
    assert totp.decrypt_secret(stored, user["id"]) == secret
    with pytest.raises(ServiceUnavailable, match=r"decrypt|format"):  # bound to its user
        totp.decrypt_secret(stored, str(uuid.uuid4()))
    assert secret not in log and not any(code in log for code in recovery)


def test_only_the_user_enrols_and_enrolment_must_be_begun(users, make_user, admin):
    user = make_user()
    with pytest.raises(Forbidden):
        users.totp_begin(actor=user_actor(admin), user_id=user["id"])
    with pytest.raises(Forbidden):
        users.totp_confirm(actor=system_actor(), user_id=user["id"], code="123456")
    with pytest.raises(RuleViolation) as caught:
        users.totp_confirm(actor=user_actor(user), user_id=user["id"], code="123456")
    assert caught.value.extra["code"] == "mfa_not_started"
    _enrol(users, user)
    with pytest.raises(Conflict):
        users.totp_begin(actor=user_actor(user), user_id=user["id"])


def test_disable_by_the_user_or_an_admin_with_their_own_password(users, make_user, admin):
    user = make_user()
    _enrol(users, user)
    with pytest.raises(BadRequest) as caught:
        users.totp_disable(actor=user_actor(user), user_id=user["id"], password="Wrong-12345678")
    assert list(caught.value.extra["errors"]) == ["password"]
    other = make_user()
    with pytest.raises(Forbidden):
        users.totp_disable(actor=user_actor(other), user_id=user["id"], password=PASSWORD)
    users.totp_disable(actor=user_actor(admin), user_id=user["id"], password=PASSWORD)
    assert not users.get_user(user_id=user["id"])["mfa_enabled"]
    assert users.login(email=user["email"], password=PASSWORD)
    _enrol(users, user)
    users.totp_disable(actor=user_actor(user), user_id=user["id"], password=PASSWORD)
    assert not users.get_user(user_id=user["id"])["mfa_enabled"]


def test_roles_that_require_mfa(isolated_users):
    root = isolated_users.ensure_admin(email="root@example.com", password=PASSWORD)["user"]
    assert not root["mfa_setup_required"]
    settings = isolated_users.update_security_settings(
        actor=user_actor(root), changes={"mfa_required_roles": ["admin", "manager", "admin"]}
    )
    assert settings["mfa_required_roles"] == ["admin", "manager"]
    assert isolated_users.get_user(user_id=root["id"])["mfa_setup_required"]
    answer = isolated_users.login(email="root@example.com", password=PASSWORD)
    assert answer["user"]["mfa_setup_required"]
    assert isolated_users.authenticate(access_token=answer["access_token"])["mfa_setup_required"]
    _enrol(isolated_users, root)
    assert not isolated_users.get_user(user_id=root["id"])["mfa_setup_required"]
