"""The aggregates, pure: commands decide events, apply folds them, rules raise."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from services.users.domain import ERASED_NAME, LockoutPolicy, LoginActivity, User, erased_email
from shared.errors import RuleViolation

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
POLICY = LockoutPolicy(threshold=5, window=timedelta(minutes=15), duration=timedelta(minutes=15))


def _recorded(changes, start=T0, step=timedelta(seconds=1)):
    return [
        SimpleNamespace(type=kind, payload=payload, occurred_at=start + index * step)
        for index, (kind, payload) in enumerate(changes)
    ]


def _user(role="sales", **profile):
    changes = User.register("u1", "a@example.com", "Ann", role, "en", None, "admin")
    user = User.from_events("u1", _recorded(changes))
    for key, value in profile.items():
        setattr(user, key, value)
    return user


def test_register_then_fold():
    user = _user(role="manager")
    assert user.exists and user.version == 1 and user.active
    assert (user.email, user.name, user.role, user.language) == (
        "a@example.com",
        "Ann",
        "manager",
        "en",
    )
    assert user.created_at == T0


def test_profile_update_carries_only_changed_fields():
    user = _user()
    assert user.update_profile({"name": "Ann", "language": "en"}) == []
    [(kind, payload)] = user.update_profile({"name": "Anna", "language": "en", "phone": None})
    assert kind == "user.profile_updated"
    assert payload["changes"] == {"name": "Anna"}
    user.apply(kind, payload, T0)
    assert user.name == "Anna" and user.version == 2


def test_role_change_and_last_admin_rule():
    user = _user(role="admin")
    with pytest.raises(RuleViolation) as caught:
        user.change_role("sales", other_active_admins=0)
    assert caught.value.extra["code"] == "last_admin" and caught.value.status == 422
    [(_, payload)] = user.change_role("sales", other_active_admins=1)
    assert payload == {"user_id": "u1", "role": "sales", "previous_role": "admin"}
    assert user.change_role("admin", other_active_admins=0) == []


def test_deactivate_rules():
    admin = _user(role="admin")
    with pytest.raises(RuleViolation) as caught:
        admin.deactivate(actor_id="u1", other_active_admins=3)
    assert caught.value.extra["code"] == "cannot_deactivate_self"
    with pytest.raises(RuleViolation) as caught:
        admin.deactivate(actor_id="boss", other_active_admins=0)
    assert caught.value.extra["code"] == "last_admin"
    [(kind, _)] = admin.deactivate(actor_id="boss", other_active_admins=1)
    admin.apply(kind, {"user_id": "u1"}, T0)
    assert not admin.active
    assert admin.deactivate(actor_id="boss", other_active_admins=0) == []
    [(kind, _)] = admin.reactivate()
    assert kind == "user.reactivated"


def test_an_inactive_admin_may_change_role_even_when_no_other_admin_is_active():
    user = _user(role="admin", active=False)
    assert user.change_role("sales", other_active_admins=0)


def test_five_failures_in_the_window_lock_the_account():
    activity = LoginActivity("u1")
    now = T0
    for attempt in range(1, 5):
        changes = activity.fail(now, "invalid_password", "1.2.3.4", POLICY)
        assert [kind for kind, _ in changes] == ["user.login_failed"]
        assert changes[0][1]["failures"] == attempt
        for kind, payload in changes:
            activity.apply(kind, payload, now)
        now += timedelta(minutes=1)
    changes = activity.fail(now, "invalid_otp", None, POLICY)
    assert [kind for kind, _ in changes] == ["user.login_failed", "user.locked"]
    for kind, payload in changes:
        activity.apply(kind, payload, now)
    assert activity.locked(now) and activity.locked(now + timedelta(minutes=14))
    assert activity.retry_after(now) == 15 * 60
    assert not activity.locked(now + timedelta(minutes=15))
    assert activity.failures == []


def test_failures_outside_the_window_do_not_count():
    activity = LoginActivity("u1")
    for minute in range(4):
        for kind, payload in activity.fail(T0, "invalid_password", None, POLICY):
            activity.apply(kind, payload, T0 + timedelta(minutes=minute))
    later = T0 + timedelta(minutes=20)
    changes = activity.fail(later, "invalid_password", None, POLICY)
    assert [kind for kind, _ in changes] == ["user.login_failed"]
    assert changes[0][1]["failures"] == 1


def test_success_resets_failures():
    activity = LoginActivity("u1")
    for kind, payload in activity.fail(T0, "invalid_password", None, POLICY):
        activity.apply(kind, payload, T0)
    for kind, payload in activity.succeed("s1", "password", None):
        activity.apply(kind, payload, T0)
    assert activity.failures == [] and activity.last_login_at == T0 and activity.version == 2


def test_session_revocation_needs_sessions():
    assert LoginActivity.revoke_sessions("u1", [], "logout") == []
    [(kind, payload)] = LoginActivity.revoke_sessions("u1", ["s1"], "logout")
    assert kind == "user.session_revoked" and payload["session_ids"] == ["s1"]


def test_erase_rules():
    admin = _user(role="admin")
    with pytest.raises(RuleViolation) as caught:
        admin.erase(actor_id="u1", other_active_admins=3)
    assert caught.value.extra["code"] == "cannot_erase_self"
    with pytest.raises(RuleViolation) as caught:
        admin.erase(actor_id="boss", other_active_admins=0)
    assert caught.value.extra["code"] == "last_admin"
    assert [kind for kind, _ in admin.erase(actor_id="boss", other_active_admins=1)] == [
        "user.deactivated",
        "user.erased",
    ]
    inactive_admin = _user(role="admin", active=False)  # erasing it leaves the admins as they are
    assert inactive_admin.erase(actor_id="boss", other_active_admins=0) == [
        ("user.erased", {"user_id": "u1"})
    ]


def test_an_erased_user_holds_placeholders_and_changes_no_more():
    changes = User.register("u1", "a@example.com", "Ann", "sales", "en", "+8613812345678", "admin")
    user = User.from_events("u1", _recorded(changes))
    user.mfa_enabled = True
    for kind, payload in user.erase(actor_id="boss", other_active_admins=0):
        user.apply(kind, payload, T0)
    assert (user.email, user.name, user.phone) == (erased_email("u1"), ERASED_NAME, None)
    assert user.erased and not user.active and not user.mfa_enabled and user.version == 3
    assert user.erase(actor_id="boss", other_active_admins=0) == []
    assert user.deactivate(actor_id="boss", other_active_admins=0) == []
    for command in (
        lambda: user.update_profile({"language": "zh-CN"}),
        lambda: user.reactivate(),
        lambda: user.change_role("manager", other_active_admins=1),
        lambda: user.change_password(),
        lambda: user.reset_password(),
        lambda: user.enable_mfa(),
    ):
        with pytest.raises(RuleViolation) as caught:
            command()
        assert caught.value.extra["code"] == "user_erased"


def test_events_of_an_erased_user_fold_to_placeholders():
    """After erasure, sealed values open as None: folding the log again gives placeholders."""
    opened = [
        (
            "user.registered",
            {
                "user_id": "u1",
                "email": None,
                "name": None,
                "phone": None,
                "language": "en",
                "role": "sales",
                "source": "admin",
            },
        ),
        ("user.profile_updated", {"user_id": "u1", "changes": {"name": None, "email": None}}),
        ("user.deactivated", {"user_id": "u1"}),
        ("user.erased", {"user_id": "u1"}),
    ]
    user = User.from_events("u1", _recorded(opened))
    assert (user.email, user.name, user.phone) == (erased_email("u1"), ERASED_NAME, None)
    assert user.erased and user.version == 4
