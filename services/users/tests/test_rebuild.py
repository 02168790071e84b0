"""The read models are a function of the event log: drop them, replay, get the same rows."""

from datetime import UTC, datetime

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.users import tables
from services.users.projections import rebuild
from services.users.tests.conftest import (
    PASSWORD,
    unique_email,
    unique_ip,
    user_actor,
)
from shared.db import create_service_engine
from shared.errors import Unauthorized


def _snapshot(engine):
    with engine.connect() as conn:
        return {
            table.name: sorted(
                (tuple(row) for row in conn.execute(select(table))), key=lambda r: str(r[0])
            )
            for table in tables.READ_MODELS
        }


def _rebuild(engine):
    with Session(engine) as session:
        replayed = rebuild(session)
        session.commit()
    return replayed


def _exercise(users):
    """Every kind of event the read models fold."""
    root = users.ensure_admin(email=unique_email("root"), password=PASSWORD)["user"]
    admin = user_actor(root)
    users.update_security_settings(actor=admin, changes={"mfa_required_roles": ["manager"]})
    ann = users.create_user(
        actor=admin,
        email=unique_email("ann"),
        name="Ann",
        role="sales",
        password=PASSWORD,
        phone="+8613812345678",
    )
    users.update_profile(actor=admin, user_id=ann["id"], changes={"name": "安娜", "language": "en"})
    users.change_role(actor=admin, user_id=ann["id"], role="manager")
    users.deactivate(actor=admin, user_id=ann["id"])
    users.reactivate(actor=admin, user_id=ann["id"])
    users.login(email=ann["email"], password=PASSWORD)
    begun = users.totp_begin(actor=user_actor(ann), user_id=ann["id"])
    users.totp_confirm(
        actor=user_actor(ann), user_id=ann["id"], code=pyotp.TOTP(begun["secret"]).now()
    )
    bob = users.create_user(
        actor=admin, email=unique_email("bob"), name="Bob", role="analyst", password=PASSWORD
    )
    for _ in range(5):
        with pytest.raises(Unauthorized):
            users.login(email=bob["email"], password="Wrong-Password-1", client_ip=unique_ip())
    users.reset_password(actor=admin, user_id=bob["id"], new_password="Amber-Falcon-Orchard-19")
    key = users.create_api_key(actor=admin, name="BI", role="analyst")
    users.create_api_key(actor=admin, name="ERP", role="sales")
    users.revoke_api_key(actor=admin, key_id=key["id"])
    cy = users.create_user(
        actor=admin,
        email=unique_email("cy"),
        name="Cy",
        role="admin",
        password=PASSWORD,
        phone="+8613900000000",
    )
    cy_email = unique_email("c")
    users.update_profile(
        actor=user_actor(cy), user_id=cy["id"], changes={"name": "赛", "email": cy_email}
    )
    with pytest.raises(Unauthorized):
        users.login(email=cy_email, password="Wrong-Password-1", client_ip=unique_ip())
    users.login(email=cy_email, password=PASSWORD, client_ip=unique_ip())
    users.erase_user(actor=admin, user_id=cy["id"])  # folded again: sealed values open as None
    return ann, bob, cy


def test_rebuild_equals_live_on_a_database_of_its_own(isolated_users, isolated_config):
    ann, bob, cy = _exercise(isolated_users)
    engine = create_service_engine(isolated_config["DB_URIS"]["users"], schema="users")
    try:
        live = _snapshot(engine)
        assert len(live["users"]) == 4 and len(live["api_keys"]) == 2
        assert live["security_settings"]
        by_id = {str(row[0]): row for row in live["users"]}
        assert by_id[bob["id"]][tables.users.c.keys().index("locked_until")] > datetime.now(UTC)
        assert by_id[ann["id"]][tables.users.c.keys().index("last_login_at")] is not None
        with engine.begin() as conn:
            for table in tables.READ_MODELS:
                conn.execute(table.delete())
        assert _rebuild(engine) > 15
        assert _snapshot(engine) == live
        assert isolated_users.get_user(user_id=ann["id"])["mfa_enabled"]
        assert isolated_users.get_user(user_id=cy["id"])["name"] == "(erased)"
    finally:
        engine.dispose()


def test_rebuild_equals_live_on_the_shared_database(users, users_engine, make_user):
    make_user()
    live = _snapshot(users_engine)
    _rebuild(users_engine)
    assert _snapshot(users_engine) == live
    assert users.list_users(limit=1)["items"]


def test_a_failed_rebuild_changes_nothing(users_engine, make_user, monkeypatch):
    make_user()
    live = _snapshot(users_engine)
    from services.users import projections

    def broken(conn, event):
        original(conn, event)
        raise RuntimeError("boom")

    original = projections.project
    monkeypatch.setattr(projections, "project", broken)
    with Session(users_engine) as session, pytest.raises(RuntimeError):
        rebuild(session)
    assert _snapshot(users_engine) == live
