"""Signing in, sessions and accounts through the gateway, as a client app meets them."""

import time
import uuid

import pyotp
import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from gateway.tests.conftest import PASSWORD


def _email(prefix="user"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


@pytest.fixture
def person(api, admin):
    """A fresh sales user: ``(email, user)``."""
    email = _email("sales")
    response = api.call(
        "POST",
        "/api/v1/users",
        token=admin[1],
        json={"email": email, "name": "Li Lei", "role": "sales", "password": PASSWORD},
    )
    assert response.status_code == 201, response.text
    return email, response.json()


def _problem(response, status, code=None):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    if code:
        assert body.get("code") == code, body
    return body


def test_the_request_id_reaches_the_events_a_request_causes(api, admin, nameko_config):
    request_id = f"e2e-{uuid.uuid4()}"
    email = _email()
    response = api.call(
        "POST",
        "/api/v1/users",
        token=admin[1],
        headers={"X-Request-ID": request_id},
        json={"email": email, "name": "Han Meimei", "role": "analyst", "password": PASSWORD},
    )
    assert response.status_code == 201
    assert response.headers["Location"] == f"/api/v1/users/{response.json()['id']}"
    with ClusterRpcProxy(nameko_config, timeout=15) as cluster:
        events = cluster.users.read_events(after_position=0, limit=1000, types=["user.registered"])
    mine = [e for e in events if e["stream_id"] == response.json()["id"]]
    assert mine and mine[0]["metadata"]["request_id"] == request_id
    assert "password" not in str(mine[0]["payload"]).lower()


def test_refresh_tokens_rotate_and_a_reused_one_ends_the_session(api, person):
    first = api.login(person[0])
    second = api.call(
        "POST", "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    ).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert api.call("GET", "/api/v1/me", token=second["access_token"]).status_code == 200
    reused = api.call(
        "POST", "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    _problem(reused, 401, "refresh_reused")
    _problem(
        api.call("POST", "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}),
        401,
    )
    _problem(api.call("GET", "/api/v1/me", token=second["access_token"]), 401, "session_revoked")


def test_five_failures_lock_the_account(api, person):
    client = api.client()
    for _ in range(5):
        response = client.call(
            "POST", "/api/v1/auth/login", json={"email": person[0], "password": "wrong-" * 3}
        )
        _problem(response, 401)
    locked = client.call(
        "POST", "/api/v1/auth/login", json={"email": person[0], "password": PASSWORD}
    )
    body = _problem(locked, 401, "account_locked")
    assert 0 < body["retry_after"] <= 900


def test_too_many_attempts_from_one_client_are_429(api):
    client = api.client()
    statuses = [
        client.call(
            "POST", "/api/v1/auth/login", json={"email": _email(), "password": "nope-nope-nope"}
        ).status_code
        for _ in range(21)
    ]
    assert statuses[:20] == [401] * 20
    assert statuses[20] == 429
    response = client.call(
        "POST", "/api/v1/auth/login", json={"email": _email(), "password": "nope-nope-nope"}
    )
    assert _problem(response, 429)["retry_after"] > 0
    other = api.client().call(
        "POST", "/api/v1/auth/login", json={"email": _email(), "password": "nope-nope-nope"}
    )
    assert other.status_code == 401


@pytest.mark.parametrize("password", ["short-pw", "password1234", "qwertyuiopasdf", "x" * 1025])
def test_weak_or_absurd_passwords_are_refused_naming_the_field(api, admin, password):
    response = api.call(
        "POST",
        "/api/v1/users",
        token=admin[1],
        json={"email": _email(), "name": "Weak", "role": "sales", "password": password},
    )
    assert "password" in _problem(response, 400)["errors"]


def test_profile_edits_need_the_current_etag(api, person):
    token = api.login(person[0])["access_token"]
    me = api.call("GET", "/api/v1/me", token=token)
    etag = me.headers["ETag"]
    _problem(api.call("PATCH", "/api/v1/me", token=token, json={"language": "en"}), 428)
    changed = api.call(
        "PATCH", "/api/v1/me", token=token, headers={"If-Match": etag}, json={"language": "en"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["language"] == "en" and changed.headers["ETag"] != etag
    stale = api.call(
        "PATCH", "/api/v1/me", token=token, headers={"If-Match": etag}, json={"name": "Stale"}
    )
    _problem(stale, 412)
    assert api.call("GET", "/api/v1/me", token=token).json()["name"] == "Li Lei"
    fresh = api.call("GET", "/api/v1/me", token=token).headers["ETag"]
    bad_phone = api.call(
        "PATCH", "/api/v1/me", token=token, headers={"If-Match": fresh}, json={"phone": "12"}
    )
    assert set(_problem(bad_phone, 400)["errors"]) == {"phone"}


def test_duplicate_email_is_a_conflict(api, admin, person):
    response = api.call(
        "POST",
        "/api/v1/users",
        token=admin[1],
        json={"email": person[0].upper(), "name": "Dup", "role": "sales", "password": PASSWORD},
    )
    _problem(response, 409)


def _audit_entries(api, token: str, query: str, wait: float = 10.0) -> list[dict]:
    """The audit entries a query finds, once there are any: the gateway answers a write
    before the users service has committed its entry (the request is already queued)."""
    deadline = time.monotonic() + wait
    while True:
        entries = api.call("GET", f"/api/v1/audit?{query}", token=token).json()["items"]
        if entries or time.monotonic() > deadline:
            return entries
        time.sleep(0.1)


def test_deactivation_ends_sessions_at_once_and_is_audited(api, admin, person):
    token = api.login(person[0])["access_token"]
    user_id = person[1]["id"]
    request_id = f"audit-{uuid.uuid4()}"
    response = api.call(
        "POST",
        f"/api/v1/users/{user_id}/deactivate",
        token=admin[1],
        headers={"X-Request-ID": request_id},
    )
    assert response.status_code == 200 and response.json()["active"] is False
    _problem(api.call("GET", "/api/v1/me", token=token), 401, "session_revoked")
    _problem(
        api.call("POST", "/api/v1/auth/login", json={"email": person[0], "password": PASSWORD}),
        401,
        "account_inactive",
    )
    entries = _audit_entries(api, admin[1], f"resource_id={user_id}&action=users.deactivate")
    assert len(entries) == 1
    entry = entries[0]
    assert entry["request_id"] == request_id and entry["ip"] == api.ip
    assert entry["method"] == "POST" and entry["status"] == 200
    assert entry["actor_role"] == "admin" and entry["resource_type"] == "user"


def test_an_admin_cannot_deactivate_themselves(api, admin):
    me = api.call("GET", "/api/v1/me", token=admin[1]).json()
    _problem(api.call("POST", f"/api/v1/users/{me['id']}/deactivate", token=admin[1]), 422)


def test_two_factor_sign_in_with_an_authenticator_and_a_recovery_code(api, admin, person):
    token = api.login(person[0])["access_token"]
    enrolment = api.call("POST", "/api/v1/me/mfa/totp", token=token).json()
    assert enrolment["otpauth_uri"].startswith("otpauth://totp/")
    assert enrolment["qr_svg"].lstrip().startswith("<")
    wrong = api.call("POST", "/api/v1/me/mfa/totp/confirm", token=token, json={"code": "000000"})
    assert "code" in _problem(wrong, 400)["errors"]
    code = pyotp.TOTP(enrolment["secret"]).now()
    codes = api.call(
        "POST", "/api/v1/me/mfa/totp/confirm", token=token, json={"code": code}
    ).json()["recovery_codes"]
    assert len(codes) == 10
    login = {"email": person[0], "password": PASSWORD}
    _problem(api.call("POST", "/api/v1/auth/login", json=login), 401, "mfa_required")
    assert api.login(person[0], otp=codes[0])["user"]["mfa_enabled"] is True
    _problem(api.call("POST", "/api/v1/auth/login", json={**login, "otp": codes[0]}), 401)
    # an admin who lost trust in the device removes the factor (confirming their own password)
    removed = api.call(
        "POST",
        f"/api/v1/users/{person[1]['id']}/mfa/disable",
        token=admin[1],
        json={"password": PASSWORD},
    )
    assert removed.status_code == 204, removed.text
    assert api.login(person[0])["user"]["mfa_enabled"] is False


def test_self_registration_follows_the_admin_setting(api, admin):
    body = {"email": _email("self"), "name": "Self", "password": PASSWORD}
    assert api.call("GET", "/api/v1/auth/config").json() == {"self_registration": False}
    _problem(api.call("POST", "/api/v1/auth/register", json=body), 403, "registration_disabled")
    on = api.call(
        "PATCH", "/api/v1/settings/security", token=admin[1], json={"self_registration": True}
    )
    assert on.status_code == 200 and on.json()["self_registration"] is True
    try:
        registered = api.call("POST", "/api/v1/auth/register", json=body)
        assert registered.status_code == 201, registered.text
        assert registered.json()["role"] == "sales"
        assert api.login(body["email"])["user"]["email"] == body["email"]
    finally:
        api.call(
            "PATCH",
            "/api/v1/settings/security",
            token=admin[1],
            json={"self_registration": False},
        )


def test_a_role_that_requires_two_factor_must_enrol_before_anything_else(api, admin):
    email = _email("analyst")
    api.call(
        "POST",
        "/api/v1/users",
        token=admin[1],
        json={"email": email, "name": "A", "role": "analyst", "password": PASSWORD},
    )
    api.call(
        "PATCH",
        "/api/v1/settings/security",
        token=admin[1],
        json={"mfa_required_roles": ["analyst"]},
    )
    try:
        signed_in = api.login(email)
        assert signed_in["user"]["mfa_setup_required"] is True
        token = signed_in["access_token"]
        assert api.call("GET", "/api/v1/me", token=token).status_code == 200
        enrolment = api.call("POST", "/api/v1/me/mfa/totp", token=token).json()
        code = pyotp.TOTP(enrolment["secret"]).now()
        confirmed = api.call(
            "POST", "/api/v1/me/mfa/totp/confirm", token=token, json={"code": code}
        )
        assert confirmed.status_code == 200
    finally:
        api.call(
            "PATCH", "/api/v1/settings/security", token=admin[1], json={"mfa_required_roles": []}
        )


def test_erasing_a_user_leaves_no_personal_data_in_their_events(api, admin, person, nameko_config):
    user_id = person[1]["id"]
    erased = api.call(
        "POST", f"/api/v1/users/{user_id}/erase", token=admin[1], json={"confirm": True}
    )
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert body["erased_at"] and body["active"] is False and person[0] not in str(body)
    with ClusterRpcProxy(nameko_config, timeout=15) as cluster:
        events = cluster.users.read_events(after_position=0, limit=1000)
    mine = [e for e in events if e["stream_id"].startswith(user_id)]
    assert mine and person[0] not in str(mine) and "Li Lei" not in str(mine)
    _problem(
        api.call("POST", "/api/v1/auth/login", json={"email": person[0], "password": PASSWORD}),
        401,
        "invalid_credentials",
    )


def test_a_write_is_answered_before_its_audit_entry_is_committed(api, admin, monkeypatch):
    """The audit entry is published (confirmed, persistent) before the answer; the users
    service's commit of it is not waited for (one round trip less for every write)."""
    from services.users.admin import AuditLog

    record_all, release, calls = AuditLog.record_all, [], []

    def held(self, entries):
        deactivations = [e for e in entries if e["action"] == "users.deactivate"]
        calls.extend(str(e["entry_id"]) for e in deactivations)
        deadline = time.monotonic() + 10
        while deactivations and not release:
            assert time.monotonic() < deadline, "the test never released the entry"
            time.sleep(0.05)
        return record_all(self, entries)

    monkeypatch.setattr(AuditLog, "record_all", held)
    created = api.call(
        "POST",
        "/api/v1/users",
        token=admin[1],
        json={
            "email": f"held-{uuid.uuid4().hex[:8]}@example.com",
            "name": "Held",
            "role": "sales",
            "password": PASSWORD,
        },
    ).json()
    query = f"resource_id={created['id']}&action=users.deactivate"
    response = api.call("POST", f"/api/v1/users/{created['id']}/deactivate", token=admin[1])
    assert response.status_code == 200
    assert _audit_entries(api, admin[1], query, wait=0) == []
    release.append(True)
    entries = _audit_entries(api, admin[1], query)
    assert len(entries) == 1 and entries[0]["status"] == 200
    time.sleep(2)  # a gateway that had waited for the entry would have timed out and retried
    assert len(calls) == 1


def test_an_audit_entry_the_users_service_misses_is_recorded_later_once(api, admin, monkeypatch):
    """A users outage while a write is answered: the entry stays in the users service's
    queue and is recorded when it is redelivered (with its entry_id, so never twice)."""
    from services.users.admin import AuditLog
    from shared.errors import ServiceUnavailable

    record_all, refused = AuditLog.record_all, []

    def flaky(self, entries):
        if any(e["action"] == "users.deactivate" for e in entries) and not refused:
            refused.append(True)
            raise ServiceUnavailable("the users service cannot use its database right now")
        return record_all(self, entries)

    monkeypatch.setattr(AuditLog, "record_all", flaky)
    email = f"flaky-{uuid.uuid4().hex[:8]}@example.com"
    created = api.call(
        "POST",
        "/api/v1/users",
        token=admin[1],
        json={"email": email, "name": "Flaky", "role": "sales", "password": PASSWORD},
    ).json()
    response = api.call("POST", f"/api/v1/users/{created['id']}/deactivate", token=admin[1])
    assert response.status_code == 200
    query = f"resource_id={created['id']}&action=users.deactivate"
    entries = _audit_entries(api, admin[1], query, wait=15)
    assert refused, "the first attempt reached the users service"
    assert len(entries) == 1 and entries[0]["status"] == 200
    time.sleep(2)  # a later attempt, had there been one, would not add a second entry
    assert len(_audit_entries(api, admin[1], query, wait=0)) == 1
