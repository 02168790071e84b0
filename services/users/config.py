"""Settings of the users service that ``shared.config.Settings`` does not (yet) carry.

They come from environment variables with local defaults, read once per process like
:func:`shared.config.settings`. The security settings here are only *defaults*: an admin can
override them at run time (``update_security_settings``), and the overrides are events.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

ROLES: tuple[str, ...] = ("admin", "manager", "sales", "analyst")
LANGUAGES: tuple[str, ...] = ("zh-CN", "en")


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value.strip() == "" else value.strip()


def _env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = _env(name, str(default))
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name, "true" if default else "false").lower()
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


def _env_roles(name: str, default: str) -> tuple[str, ...]:
    roles = tuple(part.strip() for part in _env(name, default).split(",") if part.strip())
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ValueError(f"{name} names unknown roles: {', '.join(unknown)}")
    return tuple(role for role in ROLES if role in roles)


@dataclass(frozen=True)
class UsersConfig:
    self_registration: bool
    mfa_required_roles: tuple[str, ...]
    lockout_threshold: int
    lockout_window_seconds: int
    lockout_duration_seconds: int
    login_rate_limit: int
    login_rate_window_seconds: int
    access_token_ttl: int
    refresh_token_ttl: int
    totp_issuer: str

    def security_defaults(self) -> dict:
        """The security settings in force until an admin changes them."""
        return {
            "self_registration": self.self_registration,
            "mfa_required_roles": list(self.mfa_required_roles),
            "lockout_threshold": self.lockout_threshold,
            "lockout_window_seconds": self.lockout_window_seconds,
            "lockout_duration_seconds": self.lockout_duration_seconds,
        }


def load_users_config() -> UsersConfig:
    return UsersConfig(
        self_registration=_env_bool("CMS_SELF_REGISTRATION", False),
        mfa_required_roles=_env_roles("CMS_MFA_REQUIRED_ROLES", ""),
        lockout_threshold=_env_int("CMS_LOCKOUT_THRESHOLD", 5, minimum=1),
        lockout_window_seconds=_env_int("CMS_LOCKOUT_WINDOW_SECONDS", 900, minimum=1),
        lockout_duration_seconds=_env_int("CMS_LOCKOUT_DURATION_SECONDS", 900, minimum=1),
        login_rate_limit=_env_int("CMS_LOGIN_RATE_LIMIT", 20, minimum=1),
        login_rate_window_seconds=_env_int("CMS_LOGIN_RATE_WINDOW_SECONDS", 300, minimum=1),
        access_token_ttl=_env_int("CMS_ACCESS_TOKEN_TTL", 900, minimum=1),
        refresh_token_ttl=_env_int("CMS_REFRESH_TOKEN_TTL", 14 * 24 * 3600, minimum=1),
        totp_issuer=_env("CMS_TOTP_ISSUER", "CMS"),
    )


@lru_cache(maxsize=1)
def users_config() -> UsersConfig:
    """The process-wide users settings, read once."""
    return load_users_config()
