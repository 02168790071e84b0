"""Account RPCs through a running container against real PostgreSQL."""

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.users.tests.conftest import PASSWORD, system_actor, unique_email, user_actor
from shared.errors import BadRequest, ConcurrencyError, Conflict, Forbidden, NotFound
from shared.sealing import Vault

USER_KEYS = {
    "id",
    "email",
    "name",
    "phone",
    "language",
    "role",
    "active",
    "mfa_enabled",
    "mfa_setup_required",
    "created_at",
    "updated_at",
    "last_login_at",
    "version",
    "erased_at",
}


def _events(users_engine, stream_id):
    with users_engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT event_type, payload, metadata FROM events WHERE stream_id = :s "
                "ORDER BY stream_version"
            ),
            {"s": stream_id},
        ).all()


def test_create_user_returns_the_user_and_records_an_event(users, users_engine):
    email = unique_email("Ann").upper()
    actor = system_actor(request_id="req-create-1")
    user = users.create_user(
        actor=actor,
        email=f"  {email} ",
        name=" Ann Smith ",
        role="manager",
        password=PASSWORD,
        phone="+86 138-1234-5678",
        language="en",
    )
    assert set(user) == USER_KEYS
    assert user["email"] == email.lower() and user["name"] == "Ann Smith"
    assert user["phone"] == "+8613812345678" and user["language"] == "en"
    assert user["role"] == "manager" and user["active"] and not user["mfa_enabled"]
    assert user["version"] == 1 and user["last_login_at"] is None
    assert user["created_at"].endswith("Z") and user["created_at"] == user["updated_at"]
    assert users.get_user(user_id=user["id"]) == user
    [(kind, payload, metadata)] = _events(users_engine, user["id"])
    assert kind == "user.registered" and payload["source"] == "admin"
    assert metadata == {
        "actor_id": "system",
        "actor_kind": "system",
        "request_id": "req-create-1",
        "correlation_id": "req-create-1",
    }
    with users_engine.connect() as conn:
        stored = conn.execute(
            text("SELECT password_hash FROM user_credentials WHERE user_id = :u"), {"u": user["id"]}
        ).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_duplicate_email_is_a_conflict_case_insensitively(users, make_user):
    user = make_user()
    with pytest.raises(Conflict) as caught:
        make_user(email=user["email"].upper())
    assert caught.value.status == 409 and caught.value.extra["field"] == "email"


def test_invalid_arguments_are_reported_per_field(users):
    with pytest.raises(BadRequest) as caught:
        users.create_user(
            actor={"id": "x"},
            email="not-an-email",
            name="",
            role="boss",
            password="short",
            phone="12345",
            language="fr",
        )
    errors = caught.value.extra["errors"]
    assert set(errors) == {"actor", "email", "name", "role", "password", "phone", "language"}
    assert caught.value.status == 400


@pytest.mark.parametrize("password", ["short", "password1234", "Password2024!", "qwertyuiop123"])
def test_password_policy_on_create(users, password):
    with pytest.raises(BadRequest) as caught:
        users.create_user(
            actor=system_actor(), email=unique_email(), name="P", role="sales", password=password
        )
    assert list(caught.value.extra["errors"]) == ["password"]


def test_get_user_unknown_and_malformed(users):
    with pytest.raises(NotFound):
        users.get_user(user_id=str(uuid.uuid4()))
    with pytest.raises(BadRequest):
        users.get_user(user_id="nope")


def test_list_users_filters_and_keyset_pagination(users, make_user):
    tag = uuid.uuid4().hex[:8]
    made = [make_user(role="analyst", name=f"Paging {tag} {i}") for i in range(5)]
    other = make_user(role="sales", name=f"Paging {tag} other")
    seen, cursor = [], None
    while True:
        page = users.list_users(q=tag.upper(), role="analyst", limit=2, cursor=cursor)
        assert len(page["items"]) <= 2
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [u["id"] for u in seen] == [u["id"] for u in made]
    everyone = users.list_users(q=tag, limit=200)
    assert {u["id"] for u in everyone["items"]} == {u["id"] for u in made} | {other["id"]}
    assert users.list_users(q=made[0]["email"][:10], limit=200)["items"]
    users.deactivate(actor=system_actor(), user_id=made[1]["id"])
    inactive = users.list_users(q=tag, active=False, limit=200)["items"]
    assert [u["id"] for u in inactive] == [made[1]["id"]]
    assert len(users.list_users(q=tag, active=True, limit=200)["items"]) == 5
    with pytest.raises(BadRequest) as caught:
        users.list_users(limit=500, cursor="!!!")
    assert set(caught.value.extra["errors"]) == {"limit"}
    with pytest.raises(BadRequest) as caught:
        users.list_users(cursor="bm90IGEgY3Vyc29y")
    assert set(caught.value.extra["errors"]) == {"cursor"}


def test_like_wildcards_in_q_are_literal(users, make_user):
    tag = uuid.uuid4().hex[:8]
    make_user(name=f"Percent {tag}")
    assert users.list_users(q=f"%{tag}", limit=5)["items"] == []
    assert len(users.list_users(q=f"t {tag}", limit=5)["items"]) == 1


def test_update_profile_changed_fields_only_and_optimistic_concurrency(
    users, make_user, users_engine
):
    user = make_user()
    actor = user_actor(user)
    updated = users.update_profile(
        actor=actor,
        user_id=user["id"],
        changes={"name": "New Name", "language": user["language"], "phone": "+4930123456"},
        expected_version=1,
    )
    assert updated["name"] == "New Name" and updated["phone"] == "+4930123456"
    assert updated["version"] == 2 and updated["updated_at"] > user["updated_at"]
    kind, payload, _ = _events(users_engine, user["id"])[-1]
    assert kind == "user.profile_updated"
    assert set(payload["changes"]) == {"name", "phone"}  # only what changed, sealed
    assert "New Name" not in str(payload) and "+4930123456" not in str(payload)
    with Session(users_engine) as session:
        opened = Vault(session).unseal_fields(payload["changes"])
    assert opened == {"name": "New Name", "phone": "+4930123456"}
    with pytest.raises(ConcurrencyError) as caught:
        users.update_profile(
            actor=actor, user_id=user["id"], changes={"name": "Stale"}, expected_version=1
        )
    assert caught.value.extra["actual_version"] == 2 and caught.value.status == 409
    same = users.update_profile(actor=actor, user_id=user["id"], changes={"name": "New Name"})
    assert same["version"] == 2
    cleared = users.update_profile(actor=actor, user_id=user["id"], changes={"phone": None})
    assert cleared["phone"] is None and cleared["version"] == 3


def test_a_profile_phone_is_read_as_the_customer_form_reads_one(users, make_user):
    """National numbers of the default region (CN), as the customers service takes them."""
    user = make_user()
    actor = user_actor(user)
    for typed, stored in (
        ("13812345678", "+8613812345678"),
        ("138 0013 8000", "+8613800138000"),
        ("0086 138 1234 5678", "+8613812345678"),
        ("+49 30 123456", "+4930123456"),
    ):
        changes = {"phone": typed}
        updated = users.update_profile(actor=actor, user_id=user["id"], changes=changes)
        assert updated["phone"] == stored, typed
    for wrong in ("12345", "+1555123", "phone"):
        with pytest.raises(BadRequest) as caught:
            users.update_profile(actor=actor, user_id=user["id"], changes={"phone": wrong})
        assert list(caught.value.extra["errors"]["changes"]) == ["phone"]


def test_update_profile_email_conflict_and_validation(users, make_user):
    first, second = make_user(), make_user()
    with pytest.raises(Conflict):
        users.update_profile(
            actor=user_actor(second),
            user_id=second["id"],
            changes={"email": first["email"].upper()},
        )
    with pytest.raises(BadRequest) as caught:
        users.update_profile(
            actor=user_actor(second), user_id=second["id"], changes={"phone": "+1", "role": "admin"}
        )
    assert set(caught.value.extra["errors"]["changes"]) == {"phone", "role"}
    moved = users.update_profile(
        actor=user_actor(second),
        user_id=second["id"],
        changes={"email": unique_email("moved").upper()},
    )
    assert moved["email"] == moved["email"].lower()


def test_change_role_and_reactivation(users, make_user, admin):
    user = make_user(role="sales")
    changed = users.change_role(actor=user_actor(admin), user_id=user["id"], role="manager")
    assert changed["role"] == "manager" and changed["version"] == 2
    deactivated = users.deactivate(actor=user_actor(admin), user_id=user["id"])
    assert not deactivated["active"]
    assert users.deactivate(actor=user_actor(admin), user_id=user["id"])["version"] == 3
    assert users.reactivate(actor=user_actor(admin), user_id=user["id"])["active"]


def test_nobody_deactivates_themselves(users, admin):
    from shared.errors import RuleViolation

    with pytest.raises(RuleViolation) as caught:
        users.deactivate(actor=user_actor(admin), user_id=admin["id"])
    assert caught.value.extra["code"] == "cannot_deactivate_self"


def test_ensure_admin_only_when_there_is_no_admin(isolated_users):
    with pytest.raises(BadRequest):
        isolated_users.ensure_admin(email="root@example.com", password="admin")
    first = isolated_users.ensure_admin(email="Root@Example.com", password=PASSWORD)
    assert first["created"] and first["user"]["role"] == "admin"
    assert first["user"]["email"] == "root@example.com" and first["user"]["name"] == "Administrator"
    again = isolated_users.ensure_admin(email="other@example.com", password=PASSWORD, name="X")
    assert not again["created"] and again["user"]["id"] == first["user"]["id"]


def test_last_active_admin_cannot_be_demoted_or_deactivated(isolated_users):
    from shared.errors import RuleViolation

    root = isolated_users.ensure_admin(email="root@example.com", password=PASSWORD)["user"]
    other = isolated_users.create_user(
        actor=user_actor(root),
        email="second@example.com",
        name="Second",
        role="admin",
        password=PASSWORD,
    )
    isolated_users.deactivate(actor=user_actor(root), user_id=other["id"])
    with pytest.raises(RuleViolation) as caught:
        isolated_users.change_role(actor=user_actor(other), user_id=root["id"], role="sales")
    assert caught.value.extra["code"] == "last_admin" and caught.value.status == 422
    with pytest.raises(RuleViolation):
        isolated_users.deactivate(actor=user_actor(other), user_id=root["id"])
    isolated_users.reactivate(actor=user_actor(root), user_id=other["id"])
    demoted = isolated_users.change_role(actor=user_actor(other), user_id=root["id"], role="sales")
    assert demoted["role"] == "sales"
    with pytest.raises(RuleViolation):
        isolated_users.change_role(actor=user_actor(root), user_id=other["id"], role="analyst")


def test_self_registration_is_off_by_default_and_switchable(isolated_users):
    with pytest.raises(Forbidden) as caught:
        isolated_users.register(email=unique_email(), name="Self", password=PASSWORD)
    assert caught.value.extra["code"] == "registration_disabled"
    settings = isolated_users.update_security_settings(
        actor=system_actor(), changes={"self_registration": True}
    )
    assert settings["self_registration"] is True
    user = isolated_users.register(
        email=unique_email(), name="Self", password=PASSWORD, client_ip="192.0.2.1"
    )
    assert user["role"] == "sales" and user["active"]
    with pytest.raises(BadRequest) as caught:
        isolated_users.register(email=unique_email(), name="Self", password="letmein12345")
    assert list(caught.value.extra["errors"]) == ["password"]
