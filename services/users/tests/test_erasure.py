"""Personal data in the log is sealed under the user's key; erasing the user destroys the key
(crypto-shredding, DESIGN §2) and leaves a read model that a rebuild reproduces."""

import uuid
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.users.domain import ERASED_NAME, erased_email
from services.users.events import registry, sealed_values
from services.users.personal import open_payload
from services.users.tests.conftest import (
    PASSWORD,
    system_actor,
    unique_email,
    unique_ip,
    user_actor,
)
from services.users.tests.test_rebuild import _rebuild, _snapshot
from shared.errors import BadRequest, NotFound, RuleViolation, Unauthorized
from shared.eventstore import EventStore
from shared.sealing import ERASED, Vault


def _phone():
    return f"+86139{uuid.uuid4().int % 10**8:08d}"


def _whole_log(engine):
    """Every payload and metadata of the users log, as PostgreSQL prints the jsonb."""
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT string_agg(payload::text || ' ' || metadata::text, ' ') FROM events")
        ).scalar()


def _streams(engine, user_id):
    with Session(engine) as session:
        store = EventStore(session)
        return store.load_stream(user_id) + store.load_stream(f"{user_id}:auth")


def _one(engine, query, **params):
    with engine.connect() as conn:
        return conn.execute(text(query), params).all()


def _enrol(users, user):
    actor = user_actor(user)
    begun = users.totp_begin(actor=actor, user_id=user["id"])
    users.totp_confirm(actor=actor, user_id=user["id"], code=pyotp.TOTP(begun["secret"]).now())
    return begun["secret"]


def test_personal_data_is_sealed_and_erasure_shreds_it(users, users_engine, admin):
    tag = uuid.uuid4().hex[:10]
    name, new_name = f"Ann Erasable {tag}", f"安娜 {tag}"
    email, new_email = unique_email("erasable"), unique_email("renamed")
    phone, new_phone = _phone(), _phone()
    good_ip, bad_ip = unique_ip(), unique_ip()
    user = users.create_user(
        actor=user_actor(admin), email=email, name=name, role="sales", password=PASSWORD,
        phone=phone,
    )  # fmt: skip
    user_id = user["id"]
    users.update_profile(
        actor=user_actor(user),
        user_id=user_id,
        changes={"name": new_name, "email": new_email, "phone": new_phone},
    )
    with pytest.raises(Unauthorized):
        users.login(email=new_email, password="Wrong-Password-77", client_ip=bad_ip)
    secret = _enrol(users, user)
    signed_in = users.login(
        email=new_email,
        password=PASSWORD,
        otp=pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30)),  # next step
        client_ip=good_ip,
        user_agent="pytest-erasure",
    )
    personal = (name, new_name, email, new_email, phone, new_phone, good_ip, bad_ip)

    # Sealed from the start: nothing personal in the log, yet the service reads it all back.
    log = _whole_log(users_engine)
    assert not [value for value in personal if value in log]
    events = _streams(users_engine, user_id)
    with Session(users_engine) as session:
        vault = Vault(session)
        opened = {event.type: open_payload(vault, event.payload) for event in events}
    assert (opened["user.registered"]["name"], opened["user.registered"]["email"]) == (name, email)
    assert opened["user.profile_updated"]["changes"] == {
        "name": new_name,
        "email": new_email,
        "phone": new_phone,
    }
    assert opened["user.login_failed"]["client_ip"] == bad_ip
    assert opened["user.login_succeeded"]["client_ip"] == good_ip
    for event in events:  # what a consumer receives matches the catalogue
        registry.validate_envelope(event.envelope("users"))
    assert sum(1 for event in events for _ in sealed_values(event.payload)) == 8

    erased = users.erase_user(actor=user_actor(admin), user_id=user_id)

    assert (erased["name"], erased["email"], erased["phone"]) == (
        ERASED_NAME,
        erased_email(user_id),
        None,
    )
    assert not erased["active"] and not erased["mfa_enabled"] and erased["erased_at"]
    assert erased["language"] == user["language"] and erased["role"] == "sales"
    assert users.get_user(user_id=user_id) == erased
    assert not users.list_users(q=tag)["items"]

    # Shredded: the key is gone, every sealed value of theirs opens as nothing.
    log = _whole_log(users_engine)
    assert not [value for value in personal if value in log]
    events = _streams(users_engine, user_id)
    with Session(users_engine) as session:
        vault = Vault(session)
        values = [vault.unseal({"$sealed": v}) for e in events for v in sealed_values(e.payload)]
        assert len(values) == 8 and all(value is ERASED for value in values)
        assert open_payload(vault, events[0].payload)["email"] is None
    [(key, destroyed_at)] = _one(
        users_engine, "SELECT key, destroyed_at FROM subject_keys WHERE subject_id = :s", s=user_id
    )
    assert key is None and destroyed_at is not None
    user_events = [(e.type, e.payload) for e in events if e.stream_id == user_id]
    assert [kind for kind, _ in user_events][-2:] == ["user.deactivated", "user.erased"]
    assert user_events[-1][1] == {"user_id": user_id}
    assert events[-1].type == "user.session_revoked"
    assert events[-1].payload["reason"] == "erased"

    # What the private tables held about the person is gone; their sessions are over.
    for table in ("user_credentials", "user_totp", "recovery_codes"):
        assert not _one(users_engine, f"SELECT 1 FROM {table} WHERE user_id = :u", u=user_id)
    assert _one(
        users_engine,
        "SELECT client_ip, user_agent, revoked_reason FROM sessions WHERE user_id = :u",
        u=user_id,
    ) == [(None, None, "erased")]
    with pytest.raises(Unauthorized):
        users.authenticate(access_token=signed_in["access_token"])
    with pytest.raises(Unauthorized):
        users.refresh(refresh_token=signed_in["refresh_token"])

    # Nobody signs in as them, and trying leaves no trace under their id.
    for address in (new_email, erased_email(user_id)):
        with pytest.raises(Unauthorized) as caught:
            users.login(email=address, password=PASSWORD, client_ip=unique_ip())
        assert caught.value.extra == {"code": "invalid_credentials"}
    assert len(_streams(users_engine, user_id)) == len(events)


def test_erasure_rules(users, make_user, admin):
    with pytest.raises(RuleViolation) as caught:
        users.erase_user(actor=user_actor(admin), user_id=admin["id"])
    assert caught.value.extra["code"] == "cannot_erase_self" and caught.value.status == 422

    user = make_user(name="Short Lived")
    erased = users.erase_user(actor=user_actor(admin), user_id=user["id"])
    assert users.erase_user(actor=user_actor(admin), user_id=user["id"]) == erased  # no-op
    attempts = (
        lambda: users.update_profile(
            actor=user_actor(admin), user_id=user["id"], changes={"language": "en"}
        ),
        lambda: users.reactivate(actor=user_actor(admin), user_id=user["id"]),
        lambda: users.change_role(actor=user_actor(admin), user_id=user["id"], role="manager"),
        lambda: users.reset_password(
            actor=user_actor(admin), user_id=user["id"], new_password="Amber-Falcon-Orchard-19"
        ),
    )
    for attempt in attempts:
        with pytest.raises(RuleViolation) as caught:
            attempt()
        assert caught.value.extra["code"] == "user_erased"
    assert users.deactivate(actor=user_actor(admin), user_id=user["id"]) == erased

    # A deactivated user is erased without a second deactivation.
    idle = make_user()
    users.deactivate(actor=user_actor(admin), user_id=idle["id"])
    assert users.erase_user(actor=user_actor(admin), user_id=idle["id"])["version"] == 3

    with pytest.raises(NotFound):
        users.erase_user(actor=user_actor(admin), user_id=str(uuid.uuid4()))
    with pytest.raises(BadRequest):
        users.erase_user(actor=user_actor(admin), user_id="not-a-uuid")
    # The e-mail address of an erased user is free again.
    again = make_user(email=unique_email("reuse"))
    users.erase_user(actor=user_actor(admin), user_id=again["id"])
    assert make_user(email=again["email"])["email"] == again["email"]


def test_the_last_active_admin_cannot_be_erased(isolated_users):
    root = isolated_users.ensure_admin(email="root@example.com", password=PASSWORD)["user"]
    with pytest.raises(RuleViolation) as caught:
        isolated_users.erase_user(actor=system_actor(), user_id=root["id"])
    assert caught.value.extra["code"] == "last_admin"
    other = isolated_users.create_user(
        actor=user_actor(root),
        email="other-admin@example.com",
        name="Other Admin",
        role="admin",
        password=PASSWORD,
    )
    erased = isolated_users.erase_user(actor=user_actor(other), user_id=root["id"])
    assert erased["erased_at"] and not erased["active"]
    with pytest.raises(RuleViolation) as caught:  # now `other` is the last one
        isolated_users.erase_user(actor=system_actor(), user_id=other["id"])
    assert caught.value.extra["code"] == "last_admin"


def test_rebuild_after_erasure_equals_live(users, users_engine, admin, make_user):
    user = make_user(name="To Be Rebuilt", phone=_phone())
    users.update_profile(actor=user_actor(user), user_id=user["id"], changes={"name": "Renamed"})
    users.login(email=user["email"], password=PASSWORD, client_ip=unique_ip())
    users.erase_user(actor=user_actor(admin), user_id=user["id"])
    live = _snapshot(users_engine)
    _rebuild(users_engine)
    assert _snapshot(users_engine) == live
    assert users.get_user(user_id=user["id"])["name"] == ERASED_NAME
