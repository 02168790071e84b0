"""A short memory of the credentials the users service confirmed (docs/performance.md).

Every API call needs to know who is calling, and asking the users service costs an RPC and
two queries: about a fifth of the CPU of a cheap call. The gateway keeps each answer for
``CMS_AUTH_CACHE_SECONDS`` (2 s by default; 0 turns the cache off), and never beyond the
access token's own expiry. What could make a kept answer wrong is handled so:

- any change through this gateway that can end or alter a credential (sign-out, password,
  role, deactivation, second factor, API key revocation, security settings: every users RPC
  that is not a known read) forgets every kept answer at once, and an answer fetched while
  such a change was under way is not kept (a generation counter);
- a change made elsewhere (another gateway process, the command line) takes effect here
  within the cache's seconds.

Only a hash of the credential is kept as the key.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import jwt

from shared.config import settings

#: users RPCs that read or that only create new credentials (no kept answer goes stale):
#: every other users RPC through the gateway forgets the kept answers (sign-in and refresh
#: too: a refresh token used twice ends its session family).
HARMLESS_USERS_CALLS = frozenset(
    {
        "authenticate",
        "authenticate_api_key",
        "get_user",
        "list_users",
        "get_security_settings",
        "list_api_keys",
        "list_audit",
        "record_audit",
        "register",
        "create_user",
        "create_api_key",
        "totp_begin",
    }
)

#: At most this many kept answers; the oldest half goes when it is full.
MAX_ENTRIES = 10_000


def _token_expiry(token: str) -> float | None:
    """The ``exp`` of an access token the users service has just verified."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        return float(claims["exp"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return None


class CredentialCache:
    def __init__(self, seconds: float | None = None, clock: Callable[[], float] = time.time):
        self.seconds = settings().auth_cache_seconds if seconds is None else seconds
        self.clock = clock
        self.generation = 0
        self._entries: dict[str, tuple[float, Any]] = {}

    @staticmethod
    def _key(kind: str, credential: str) -> str:
        return hashlib.sha256(f"{kind}:{credential}".encode()).hexdigest()

    def lookup(self, kind: str, credential: str, confirm: Callable[[], Any]) -> Any:
        """The kept answer for this credential, or ``confirm()``'s (kept when nothing changed
        meanwhile). ``confirm`` raises for a credential that is not good: nothing is kept."""
        if self.seconds <= 0:
            return confirm()
        key = self._key(kind, credential)
        now = self.clock()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        generation = self.generation
        answer = confirm()
        if generation == self.generation:
            until = now + self.seconds
            if kind == "token":
                expiry = _token_expiry(credential)
                until = min(until, expiry) if expiry is not None else now
            if until > now:
                if len(self._entries) >= MAX_ENTRIES:
                    self._evict(now)
                self._entries[key] = (until, answer)
        return answer

    def _evict(self, now: float) -> None:
        live = sorted(
            ((until, key) for key, (until, _) in self._entries.items() if until > now),
            reverse=True,
        )[: MAX_ENTRIES // 2]
        self._entries = {key: self._entries[key] for _, key in live}

    def forget(self) -> None:
        """Forget every kept answer (a credential may have changed)."""
        self.generation += 1
        self._entries.clear()

    def after_call(self, service: str, method: str) -> None:
        if service == "users" and method not in HARMLESS_USERS_CALLS:
            self.forget()


CREDENTIALS = CredentialCache()
