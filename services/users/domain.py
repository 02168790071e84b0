"""The users domain: two aggregates, pure (no I/O, no clock: callers pass ``now``).

``User`` is the account (stream ``user`` / ``<id>``); its commands check the rules and return
the events that record the decision, as ``(event type, payload)`` pairs. ``LoginActivity`` is
the sign-in history of one account (stream ``user_auth`` / ``<id>:auth``): failed attempts in
the current window and the lock they may have caused.

Rules that need other aggregates (how many active admins there are, whether an e-mail is
taken) are passed in by the caller, which reads them under a lock.

Both fold *opened* events (``services.users.personal.open_event``): personal fields in plain,
or None once the user was erased and their key destroyed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.errors import RuleViolation

Change = tuple[str, dict[str, Any]]

PROFILE_FIELDS = ("email", "name", "phone", "language")

#: What an erased user's name reads as (their e-mail address: :func:`erased_email`).
ERASED_NAME = "(erased)"


def erased_email(user_id: str) -> str:
    """Unique per user (the read model's e-mail index is unique), and undeliverable (RFC 2606)."""
    return f"erased-{user_id}@invalid"


def erased_profile(user_id: str) -> dict[str, Any]:
    """The neutral values that stand for an erased user's personal data."""
    return {"email": erased_email(user_id), "name": ERASED_NAME, "phone": None}


def readable_profile(user_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` (profile fields of an opened event) with the e-mail address and name that
    opened as None, because the user was erased, replaced by their placeholders. (A phone
    number may be None anyway: that is also its placeholder.)"""
    placeholders = erased_profile(user_id)
    return {
        key: placeholders[key] if value is None and key in ("email", "name") else value
        for key, value in values.items()
    }


def _rule(detail: str, code: str) -> RuleViolation:
    return RuleViolation(detail, {"code": code})


def _erased() -> RuleViolation:
    return _rule("this user was erased; the account cannot change any more", "user_erased")


@dataclass
class User:
    id: str
    version: int = 0
    email: str = ""
    name: str = ""
    phone: str | None = None
    language: str = "zh-CN"
    role: str = "sales"
    active: bool = False
    mfa_enabled: bool = False
    erased: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def exists(self) -> bool:
        return self.version > 0

    def _require_not_erased(self) -> None:
        if self.erased:
            raise _erased()

    # -- folding -----------------------------------------------------------------------------

    @classmethod
    def from_events(cls, user_id: str, events: Iterable[Any]) -> User:
        """Fold recorded events (anything with ``type``, ``payload``, ``occurred_at``)."""
        user = cls(user_id)
        for event in events:
            user.apply(event.type, event.payload, event.occurred_at)
        return user

    def apply(self, event_type: str, payload: Mapping[str, Any], occurred_at: datetime) -> None:
        self.version += 1
        self.updated_at = occurred_at
        if event_type == "user.registered":
            profile = readable_profile(self.id, payload)
            self.email = profile["email"]
            self.name = profile["name"]
            self.phone = profile["phone"]
            self.language = payload["language"]
            self.role = payload["role"]
            self.active = True
            self.created_at = occurred_at
        elif event_type == "user.profile_updated":
            for key, value in readable_profile(self.id, payload["changes"]).items():
                setattr(self, key, value)
        elif event_type == "user.role_changed":
            self.role = payload["role"]
        elif event_type == "user.deactivated":
            self.active = False
        elif event_type == "user.reactivated":
            self.active = True
        elif event_type == "user.mfa_enabled":
            self.mfa_enabled = True
        elif event_type == "user.mfa_disabled":
            self.mfa_enabled = False
        elif event_type == "user.erased":
            for key, value in erased_profile(self.id).items():
                setattr(self, key, value)
            self.active = False
            self.mfa_enabled = False
            self.erased = True
        # user.password_changed / user.password_reset change nothing this aggregate decides on.

    # -- commands ----------------------------------------------------------------------------

    @staticmethod
    def register(
        user_id: str,
        email: str,
        name: str,
        role: str,
        language: str,
        phone: str | None,
        source: str,
    ) -> list[Change]:
        return [
            (
                "user.registered",
                {
                    "user_id": user_id,
                    "email": email,
                    "name": name,
                    "phone": phone,
                    "language": language,
                    "role": role,
                    "source": source,
                },
            )
        ]

    def update_profile(self, changes: Mapping[str, Any]) -> list[Change]:
        """Only the fields whose value really changes go into the event."""
        self._require_not_erased()
        changed = {
            key: value
            for key, value in changes.items()
            if key in PROFILE_FIELDS and getattr(self, key) != value
        }
        if not changed:
            return []
        return [("user.profile_updated", {"user_id": self.id, "changes": changed})]

    def change_password(self) -> list[Change]:
        self._require_not_erased()
        return [("user.password_changed", {"user_id": self.id})]

    def reset_password(self) -> list[Change]:
        self._require_not_erased()
        return [("user.password_reset", {"user_id": self.id})]

    def change_role(self, role: str, other_active_admins: int) -> list[Change]:
        """``other_active_admins``: active admins other than this user."""
        self._require_not_erased()
        if role == self.role:
            return []
        if self.role == "admin" and self.active and other_active_admins == 0:
            raise _rule("the last active administrator cannot lose the admin role", "last_admin")
        return [
            (
                "user.role_changed",
                {"user_id": self.id, "role": role, "previous_role": self.role},
            )
        ]

    def deactivate(self, actor_id: str | None, other_active_admins: int) -> list[Change]:
        if actor_id == self.id:
            raise _rule("you cannot deactivate your own account", "cannot_deactivate_self")
        if not self.active:
            return []
        if self.role == "admin" and other_active_admins == 0:
            raise _rule("the last active administrator cannot be deactivated", "last_admin")
        return [("user.deactivated", {"user_id": self.id})]

    def erase(self, actor_id: str | None, other_active_admins: int) -> list[Change]:
        """Erase the user's personal data (the caller destroys their key): deactivated first
        if still active, then ``user.erased``. Erasing an erased user changes nothing."""
        if actor_id == self.id:
            raise _rule("you cannot erase your own account", "cannot_erase_self")
        if self.erased:
            return []
        if self.role == "admin" and self.active and other_active_admins == 0:
            raise _rule("the last active administrator cannot be erased", "last_admin")
        changes: list[Change] = []
        if self.active:
            changes.append(("user.deactivated", {"user_id": self.id}))
        changes.append(("user.erased", {"user_id": self.id}))
        return changes

    def reactivate(self) -> list[Change]:
        self._require_not_erased()
        if self.active:
            return []
        return [("user.reactivated", {"user_id": self.id})]

    def enable_mfa(self) -> list[Change]:
        self._require_not_erased()
        if self.mfa_enabled:
            return []
        return [("user.mfa_enabled", {"user_id": self.id, "method": "totp"})]

    def disable_mfa(self) -> list[Change]:
        if not self.mfa_enabled:
            return []
        return [("user.mfa_disabled", {"user_id": self.id})]


@dataclass(frozen=True)
class LockoutPolicy:
    threshold: int
    window: timedelta
    duration: timedelta

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> LockoutPolicy:
        return cls(
            threshold=int(settings["lockout_threshold"]),
            window=timedelta(seconds=int(settings["lockout_window_seconds"])),
            duration=timedelta(seconds=int(settings["lockout_duration_seconds"])),
        )


@dataclass
class LoginActivity:
    """Failed attempts since the last success or lock, and the current lock."""

    user_id: str
    version: int = 0
    failures: list[datetime] = field(default_factory=list)
    locked_until: datetime | None = None
    last_login_at: datetime | None = None

    @classmethod
    def from_events(cls, user_id: str, events: Iterable[Any]) -> LoginActivity:
        activity = cls(user_id)
        for event in events:
            activity.apply(event.type, event.payload, event.occurred_at)
        return activity

    def apply(self, event_type: str, payload: Mapping[str, Any], occurred_at: datetime) -> None:
        self.version += 1
        if event_type == "user.login_failed":
            self.failures.append(occurred_at)
        elif event_type == "user.locked":
            self.locked_until = datetime.fromisoformat(
                str(payload["locked_until"]).replace("Z", "+00:00")
            )
            self.failures = []
        elif event_type == "user.login_succeeded":
            self.failures = []
            self.locked_until = None
            self.last_login_at = occurred_at

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    def retry_after(self, now: datetime) -> int:
        """Whole seconds until the lock ends (at least 1 while locked)."""
        if not self.locked(now):
            return 0
        remaining = (self.locked_until - now).total_seconds()
        return max(1, int(remaining) + (1 if remaining % 1 else 0))

    def fail(
        self, now: datetime, reason: str, client_ip: str | None, policy: LockoutPolicy
    ) -> list[Change]:
        """A failed attempt; the one that reaches the threshold within the window locks."""
        recent = [moment for moment in self.failures if moment > now - policy.window]
        count = len(recent) + 1
        changes: list[Change] = [
            (
                "user.login_failed",
                {
                    "user_id": self.user_id,
                    "reason": reason,
                    "client_ip": client_ip,
                    "failures": count,
                },
            )
        ]
        if count >= policy.threshold:
            changes.append(
                (
                    "user.locked",
                    {
                        "user_id": self.user_id,
                        "locked_until": now + policy.duration,
                        "failures": count,
                    },
                )
            )
        return changes

    def succeed(self, session_id: str, method: str, client_ip: str | None) -> list[Change]:
        return [
            (
                "user.login_succeeded",
                {
                    "user_id": self.user_id,
                    "session_id": session_id,
                    "method": method,
                    "client_ip": client_ip,
                },
            )
        ]

    @staticmethod
    def revoke_sessions(user_id: str, session_ids: list[str], reason: str) -> list[Change]:
        """Revocations do not depend on the activity's state: no instance needed."""
        if not session_ids:
            return []
        return [
            (
                "user.session_revoked",
                {"user_id": user_id, "session_ids": session_ids, "reason": reason},
            )
        ]
