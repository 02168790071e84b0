"""The gateway's short memory of confirmed credentials (gateway/credentials.py)."""

import jwt
import pytest

from gateway.credentials import CredentialCache
from shared.errors import Unauthorized


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


class Users:
    """Counts the confirmations the cache asks for."""

    def __init__(self):
        self.calls = 0
        self.valid = True

    def confirm(self):
        self.calls += 1
        if not self.valid:
            raise Unauthorized("the session has ended; sign in again", {"code": "session_revoked"})
        return {"user_id": "u-1", "role": "sales", "n": self.calls}


def _token(exp):
    return jwt.encode({"exp": exp, "sub": "u-1"}, "not-the-users-key", algorithm="HS256")


def _setup(seconds=2):
    """A clock, the users service, a cache, and a token good for 15 minutes."""
    clock = Clock()
    return clock, Users(), CredentialCache(seconds=seconds, clock=clock), _token(clock.now + 900)


def test_an_answer_is_kept_for_the_configured_seconds_only():
    clock, users, cache, token = _setup()
    assert cache.lookup("token", token, users.confirm)["n"] == 1
    clock.now += 1.9
    assert cache.lookup("token", token, users.confirm)["n"] == 1
    clock.now += 0.2
    assert cache.lookup("token", token, users.confirm)["n"] == 2


def test_never_kept_beyond_the_tokens_own_expiry():
    clock, users, cache, _ = _setup()
    token = _token(clock.now + 0.5)
    cache.lookup("token", token, users.confirm)
    clock.now += 0.6
    cache.lookup("token", token, users.confirm)
    assert users.calls == 2
    unreadable = "not.a.jwt"
    cache.lookup("token", unreadable, users.confirm)
    cache.lookup("token", unreadable, users.confirm)
    assert users.calls == 4  # no expiry to read: not kept


def test_a_refused_credential_is_not_kept():
    _clock, users, cache, _ = _setup()
    users.valid = False
    for _ in range(2):
        with pytest.raises(Unauthorized):
            cache.lookup("api_key", "cms_key", users.confirm)
    assert users.calls == 2


def test_a_credential_change_through_the_gateway_forgets_every_answer():
    _clock, users, cache, token = _setup()
    cache.lookup("token", token, users.confirm)
    cache.after_call("users", "get_user")
    cache.after_call("customers", "deactivate")  # not a credential
    cache.lookup("token", token, users.confirm)
    assert users.calls == 1
    cache.after_call("users", "logout")
    users.valid = False
    with pytest.raises(Unauthorized):
        cache.lookup("token", token, users.confirm)


def test_an_answer_fetched_while_a_change_was_made_is_not_kept():
    _clock, users, cache, token = _setup()

    def confirm_during_a_sign_out():
        answer = users.confirm()  # read before the sign-out committed
        cache.after_call("users", "logout")
        return answer

    cache.lookup("token", token, confirm_during_a_sign_out)
    users.valid = False
    with pytest.raises(Unauthorized):
        cache.lookup("token", token, users.confirm)


def test_zero_seconds_turns_it_off():
    _clock, users, cache, token = _setup(seconds=0)
    cache.lookup("token", token, users.confirm)
    cache.lookup("token", token, users.confirm)
    assert users.calls == 2


def test_keys_are_hashes_and_the_store_is_bounded(monkeypatch):
    monkeypatch.setattr("gateway.credentials.MAX_ENTRIES", 10)
    _clock, users, cache, _ = _setup()
    for n in range(25):
        cache.lookup("api_key", f"cms_secret_{n}", users.confirm)
    assert len(cache._entries) <= 10
    assert not any("cms_secret" in key for key in cache._entries)
