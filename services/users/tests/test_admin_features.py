"""API keys, security settings and the audit log."""

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.users import tokens
from services.users.tests.conftest import PASSWORD, system_actor, unique_ip, user_actor
from shared.errors import BadRequest, NotFound, Unauthorized

# -- API keys -----------------------------------------------------------------------------------


def test_api_key_issue_authenticate_and_revoke(users, admin, users_engine):
    actor = user_actor(admin)
    issued = users.create_api_key(actor=actor, name="ERP sync", role="analyst")
    key = issued.pop("key")
    assert key.startswith("cms_") and issued["prefix"] == key[:12]
    assert issued["created_by"] == admin["id"] and issued["created_at"].endswith("Z")
    assert issued["last_used_at"] is None and issued["revoked_at"] is None
    listed = {item["id"]: item for item in users.list_api_keys()}
    assert listed[issued["id"]] == issued and "key" not in listed[issued["id"]]

    identity = users.authenticate_api_key(key=key)
    assert identity == {
        "kind": "api_key",
        "api_key_id": issued["id"],
        "name": "ERP sync",
        "role": "analyst",
        "user_id": None,
    }
    first_use = {i["id"]: i for i in users.list_api_keys()}[issued["id"]]["last_used_at"]
    assert first_use is not None
    users.authenticate_api_key(key=key)  # within a minute: no new write
    assert {i["id"]: i for i in users.list_api_keys()}[issued["id"]]["last_used_at"] == first_use

    with users_engine.connect() as conn:
        stored = conn.execute(
            text("SELECT key_hash FROM api_key_secrets WHERE api_key_id = :i"), {"i": issued["id"]}
        ).scalar_one()
        log = conn.execute(
            text("SELECT string_agg(payload::text, ' ') FROM events WHERE stream_id = :i"),
            {"i": issued["id"]},
        ).scalar()
    assert stored == tokens.digest(key) and key not in log and stored not in log

    revoked = users.revoke_api_key(actor=actor, key_id=issued["id"])
    assert revoked["revoked_at"] is not None
    assert users.revoke_api_key(actor=actor, key_id=issued["id"]) == revoked
    with pytest.raises(Unauthorized) as caught:
        users.authenticate_api_key(key=key)
    assert caught.value.extra["code"] == "api_key_revoked"
    for bad in ("cms_" + "x" * 43, "not-a-key", None, ""):
        with pytest.raises(Unauthorized) as caught:
            users.authenticate_api_key(key=bad)
        assert caught.value.extra["code"] == "api_key_invalid"
    with pytest.raises(NotFound):
        users.revoke_api_key(actor=actor, key_id=str(uuid.uuid4()))
    with pytest.raises(BadRequest) as caught:
        users.create_api_key(actor=actor, name="", role="root")
    assert set(caught.value.extra["errors"]) == {"name", "role"}


# -- security settings --------------------------------------------------------------------------


def test_security_settings_defaults_changes_and_effect(isolated_users, users_engine):
    defaults = isolated_users.get_security_settings()
    assert defaults == {
        "self_registration": False,
        "mfa_required_roles": [],
        "lockout_threshold": 5,
        "lockout_window_seconds": 900,
        "lockout_duration_seconds": 900,
    }
    with pytest.raises(BadRequest) as caught:
        isolated_users.update_security_settings(
            actor=system_actor(), changes={"lockout_threshold": 0, "mfa_required_roles": ["x"]}
        )
    assert set(caught.value.extra["errors"]["changes"]) == {
        "lockout_threshold",
        "mfa_required_roles",
    }
    updated = isolated_users.update_security_settings(
        actor=system_actor(),
        changes={
            "lockout_threshold": 2,
            "self_registration": False,
            "lockout_duration_seconds": 120,
        },
    )
    assert updated == {**defaults, "lockout_threshold": 2, "lockout_duration_seconds": 120}
    assert isolated_users.get_security_settings() == updated

    root = isolated_users.ensure_admin(email="root@example.com", password=PASSWORD)["user"]
    ip = unique_ip()
    codes = []
    for _ in range(2):
        with pytest.raises(Unauthorized) as caught:
            isolated_users.login(email=root["email"], password="Wrong-Password-1", client_ip=ip)
        codes.append(caught.value.extra)
    assert codes[0] == {"code": "invalid_credentials"}
    assert codes[1]["code"] == "account_locked" and 110 <= codes[1]["retry_after"] <= 120


# -- audit log ----------------------------------------------------------------------------------


def _entry(**overrides):
    entry = {
        "actor_id": str(uuid.uuid4()),
        "actor_kind": "user",
        "actor_role": "admin",
        "action": "users.create",
        "method": "POST",
        "path": "/api/v1/users",
        "resource_type": "user",
        "resource_id": str(uuid.uuid4()),
        "status": 201,
        "ip": "192.0.2.1",
        "request_id": uuid.uuid4().hex,
        "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    entry.update(overrides)
    return entry


def test_audit_log_records_lists_newest_first_and_pages(users):
    actor_id = str(uuid.uuid4())
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    for minute in range(5):
        at = (start + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")
        users.record_audit(entry=_entry(actor_id=actor_id, at=at, action=f"users.step{minute}"))
    users.record_audit(
        entry=_entry(
            actor_id=actor_id, at=None, action="users.login", status=None, resource_id=None
        )
    )
    page = users.list_audit(actor_id=actor_id, limit=4)
    assert [item["action"] for item in page["items"]] == [
        "users.login",
        "users.step4",
        "users.step3",
        "users.step2",
    ]
    rest = users.list_audit(actor_id=actor_id, limit=4, cursor=page["next_cursor"])
    assert [item["action"] for item in rest["items"]] == ["users.step1", "users.step0"]
    assert rest["next_cursor"] is None
    item = rest["items"][0]
    assert item["at"].endswith("Z") and item["status"] == 201 and item["method"] == "POST"
    window = users.list_audit(
        actor_id=actor_id, since=page["items"][3]["at"], until=page["items"][1]["at"]
    )
    assert [i["action"] for i in window["items"]] == ["users.step3", "users.step2"]
    assert users.list_audit(action="users.step2", actor_id=actor_id)["items"][0]["action"] == (
        "users.step2"
    )
    with pytest.raises(BadRequest) as caught:
        users.record_audit(entry={"status": "teapot"})
    assert set(caught.value.extra["errors"]["entry"]) == {"action", "status"}
    with pytest.raises(BadRequest):
        users.list_audit(since="yesterday")


def test_audit_log_is_append_only(users, users_engine):
    users.record_audit(entry=_entry(action="users.immutable"))
    for statement in (
        "UPDATE audit_log SET status = 200 WHERE action = 'users.immutable'",
        "DELETE FROM audit_log WHERE action = 'users.immutable'",
        "TRUNCATE audit_log",
    ):
        with pytest.raises(DBAPIError, match="append-only"), users_engine.begin() as conn:
            conn.execute(text(statement))
    assert users.list_audit(action="users.immutable")["items"]


def test_an_audit_entry_sent_twice_is_recorded_once(users):
    """The gateway retries an entry it could not confirm, with the same ``entry_id``."""
    entry = _entry(action="users.retried", entry_id=str(uuid.uuid4()))
    users.record_audit(entry=entry)
    users.record_audit(entry=entry)
    assert len(users.list_audit(action="users.retried")["items"]) == 1
    users.record_audit(entry=_entry(action="users.retried", entry_id=str(uuid.uuid4())))
    users.record_audit(entry=_entry(action="users.retried"))  # no key: always recorded
    assert len(users.list_audit(action="users.retried")["items"]) == 3


def test_an_audit_entry_from_the_bus_that_breaks_the_contract_is_dropped_not_retried(
    users, nameko_config, caplog
):
    """The gateway's entries come on the bus (``audit.entry``): one that breaks the contract is
    logged and dropped, and the good entries around it are recorded all the same."""
    from nameko.standalone.events import event_dispatcher

    dispatch = event_dispatcher(nameko_config)
    bad_id = str(uuid.uuid4())
    before = _entry(action="users.bus_before", entry_id=str(uuid.uuid4()))
    after = _entry(action="users.bus_after", entry_id=str(uuid.uuid4()))
    with caplog.at_level("ERROR", logger="services.users.service"):
        dispatch("gateway", "audit.entry", before)
        dispatch("gateway", "audit.entry", {"entry_id": bad_id, "status": "teapot"})
        dispatch("gateway", "audit.entry", after)
        deadline = time.monotonic() + 15
        while not users.list_audit(action="users.bus_after")["items"]:
            assert time.monotonic() < deadline, "the entry after the bad one was not recorded"
            time.sleep(0.1)
    assert len(users.list_audit(action="users.bus_before")["items"]) == 1
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 1 and bad_id in refused[0]
