"""Password policy and hashing, access tokens, TOTP and the event catalogue (no database)."""

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pyotp
import pytest

from services.users import passwords, tokens, totp
from services.users.events import SEALED_FIELDS, registry
from shared.errors import EventSchemaError, ServiceUnavailable, Unauthorized

NOW = datetime.now(UTC)


# -- passwords ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "at least 12"),
        ("x" * 129, "at most 128"),
        ("password1234", "too common"),
        ("Password2024!", "too common"),
        ("QWERTYUIOPASDF", "too common"),
        ("iloveyou2025!!", "too common"),
        ("1qaz2wsx3edc", "too common"),
        ("aaaaaaaaaaaaaaaa", "too common"),
        ("abababababab", "too easy"),
        ("ann.smith@example.com", "e-mail"),
    ],
)
def test_policy_refuses(password, reason):
    problems = passwords.policy_errors(password, email="ann.smith@example.com", name="Ann Smith")
    assert problems and reason in problems[0]


@pytest.mark.parametrize(
    "password",
    [
        "Velvet-Harbour-Lantern-42",
        "correct horse battery staple",
        "我的密码是长城与黄河2026",
        "x7#Lq!p9Zr2@",
    ],
)
def test_policy_accepts(password):
    assert passwords.policy_errors(password, email="ann@example.com", name="Ann") == []


def test_common_list_is_substantial_and_lower_case():
    common = passwords.common_passwords()
    assert len(common) > 5000
    assert "123456" in common and "password" in common and "woaini1314" in common
    assert all(entry == entry.lower() for entry in common)


def test_argon2id_hash_and_verify():
    digest = passwords.hash_password("Velvet-Harbour-Lantern-42")
    assert digest.startswith("$argon2id$") and "m=65536,t=3,p=4" in digest
    assert passwords.verify_password(digest, "Velvet-Harbour-Lantern-42")
    assert not passwords.verify_password(digest, "Velvet-Harbour-Lantern-43")
    assert not passwords.verify_password(None, "anything at all")
    assert not passwords.verify_password("not a hash", "anything at all")
    assert not passwords.needs_rehash(digest)


def test_an_unknown_account_costs_one_verification_with_the_same_parameters():
    """No timed assertion (speed belongs to the benchmark): the check against a missing
    account verifies against a dummy hash made with exactly the parameters of real ones."""
    digest = passwords.hash_password("Velvet-Harbour-Lantern-42")
    dummy = passwords._dummy_hash()
    assert dummy.split("$")[1:4] == digest.split("$")[1:4]  # argon2id, version, m/t/p
    assert passwords.verify_password(None, "Velvet-Harbour-Lantern-42") is False
    assert (
        passwords.verify_password(None, "not a real password, only spends the time of a check")
        is False
    )


# -- access tokens ------------------------------------------------------------------------------


def _token(**claims):
    now = datetime.now(UTC)  # not the module's NOW: the suite may run longer than a token lives
    base = {
        "iss": "cms-users",
        "typ": "access",
        "sub": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "role": "sales",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    base.update(claims)
    return jwt.encode(base, tokens.access_key(), algorithm="HS256")


def test_access_token_round_trip():
    user_id, session_id = str(uuid.uuid4()), str(uuid.uuid4())
    token = tokens.issue_access_token(user_id, session_id, "manager", datetime.now(UTC), 900)
    claims = tokens.decode_access_token(token)
    assert (claims.user_id, claims.session_id, claims.role) == (user_id, session_id, "manager")
    assert claims.expires_at - claims.issued_at == timedelta(seconds=900)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "HS256"


def _code(token):
    with pytest.raises(Unauthorized) as caught:
        tokens.decode_access_token(token)
    return caught.value.extra["code"]


def test_expired_tampered_and_foreign_tokens_are_refused():
    expired = tokens.issue_access_token(
        str(uuid.uuid4()), str(uuid.uuid4()), "sales", NOW - timedelta(hours=1), 60
    )
    assert _code(expired) == "token_expired"
    good = _token()
    head, body, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["role"] = "admin"
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert _code(f"{head}.{forged_body}.{signature}") == "token_invalid"
    assert (
        _code(
            jwt.encode({"sub": "x"}, "another key of at least thirty-two bytes", algorithm="HS256")
        )
        == "token_invalid"
    )
    assert _code(_token(typ="refresh")) == "token_invalid"
    assert _code(_token(iss="someone-else")) == "token_invalid"
    assert _code(_token(sub="not-a-uuid")) == "token_invalid"
    assert _code("garbage") == "token_invalid"
    assert _code("") == "token_invalid"


def test_alg_none_is_refused():
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    body = _token().split(".")[1]
    assert _code(f"{header}.{body}.") == "token_invalid"
    assert _code(jwt.encode({"sub": "x"}, None, algorithm="none")) == "token_invalid"


def test_the_signing_key_is_derived_not_the_secret_itself():
    assert tokens.access_key("k") != b"k" and len(tokens.access_key("k")) == 32
    assert tokens.access_key("k") != tokens.access_key("other")


def test_api_key_format():
    key = tokens.new_api_key()
    assert key.startswith("cms_") and len(key) > 40 and tokens.looks_like_api_key(key)
    assert not tokens.looks_like_api_key("sk_live_123") and not tokens.looks_like_api_key(None)
    assert tokens.api_key_display_prefix(key) == key[:12]
    assert tokens.digest(key) != tokens.digest(tokens.new_api_key())


# -- TOTP ---------------------------------------------------------------------------------------


def test_totp_step_matching_with_drift_and_replay_protection():
    secret = totp.new_secret()
    generator = pyotp.TOTP(secret)
    code = generator.at(NOW)
    step = totp.matching_step(secret, code, NOW)
    assert step == generator.timecode(NOW)
    assert totp.matching_step(secret, generator.at(NOW - timedelta(seconds=30)), NOW) == step - 1
    assert totp.matching_step(secret, generator.at(NOW - timedelta(seconds=90)), NOW) is None
    assert totp.matching_step(secret, code, NOW, last_used_step=step) is None
    assert totp.matching_step(secret, "12345", NOW) is None


def test_qr_svg_and_uri():
    uri = totp.provisioning_uri(totp.new_secret(), "ann@example.com", "CMS")
    assert uri.startswith("otpauth://totp/CMS:ann%40example.com?secret=")
    svg = totp.qr_svg(uri)
    assert svg.lstrip().startswith("<svg") and "<path" in svg


def test_recovery_codes():
    codes = totp.new_recovery_codes()
    assert len(codes) == 10 == len(set(codes))
    assert all(len(code) == 19 and code.count("-") == 3 for code in codes)
    assert totp.recovery_code_hash(codes[0]) == totp.recovery_code_hash(codes[0].upper())
    assert totp.recovery_code_hash(codes[0]) != totp.recovery_code_hash(codes[1])


# -- event catalogue ----------------------------------------------------------------------------


EXPECTED_EVENTS = {
    "user.registered",
    "user.profile_updated",
    "user.password_changed",
    "user.password_reset",
    "user.role_changed",
    "user.deactivated",
    "user.reactivated",
    "user.login_succeeded",
    "user.login_failed",
    "user.locked",
    "user.mfa_enabled",
    "user.mfa_disabled",
    "user.session_revoked",
    "api_key.issued",
    "api_key.revoked",
    "security_settings.updated",
    "user.erased",
}

#: Every field of personal data in the log, per event type: sealed under the user's key.
EXPECTED_SEALED_FIELDS = {
    "user.registered": ("email", "name", "phone"),
    "user.profile_updated": ("changes.email", "changes.name", "changes.phone"),
    "user.login_succeeded": ("client_ip",),
    "user.login_failed": ("client_ip",),
}


def test_catalogue_has_every_event_at_v1():
    assert {event for event, version in registry if version == 1} == EXPECTED_EVENTS


def test_no_schema_has_a_field_for_secrets():
    forbidden = ("password", "hash", "secret", "token", "code", "key")
    for event_type, version in registry:
        schema = registry.schema(event_type, version)
        for name in schema.fields:
            if name in ("api_key_id",):
                continue
            assert not any(word in name for word in forbidden), (event_type, name)


def test_payloads_are_validated():
    with pytest.raises(EventSchemaError):
        registry.new_event(
            "user.role_changed",
            {"user_id": str(uuid.uuid4()), "role": "boss", "previous_role": "sales"},
        )
    event = registry.new_event(
        "user.locked",
        {"user_id": str(uuid.uuid4()), "locked_until": NOW, "failures": 5},
    )
    assert event.payload["locked_until"].endswith("Z")


def test_personal_fields_are_declared_sealed():
    assert SEALED_FIELDS == EXPECTED_SEALED_FIELDS


def _sealed_for(subject):
    nonce = base64.b64encode(b"n" * 12).decode()
    data = base64.b64encode(b"d" * 24).decode()
    return {"$sealed": {"subject": subject, "alg": "A256GCM", "nonce": nonce, "data": data}}


def _registered(user_id, **fields):
    payload = {
        "user_id": user_id,
        "email": _sealed_for(user_id),
        "name": _sealed_for(user_id),
        "phone": None,
        "language": "en",
        "role": "sales",
        "source": "admin",
    }
    return {**payload, **fields}


def test_the_catalogue_takes_personal_data_only_sealed_and_for_its_own_user():
    user_id = str(uuid.uuid4())
    event = registry.new_event("user.registered", _registered(user_id))
    assert event.payload["email"] == _sealed_for(user_id) and event.payload["phone"] is None
    bad_payloads = (
        _registered(user_id, email="ann@example.com"),  # plain: never
        _registered(user_id, name=_sealed_for(str(uuid.uuid4()))),  # another subject's key
        _registered(user_id, phone={"$sealed": "x"}),
        _registered(user_id, name={"$sealed": {**_sealed_for(user_id)["$sealed"], "alg": "x"}}),
        _registered(user_id, name={"$sealed": {**_sealed_for(user_id)["$sealed"], "nonce": "!"}}),
    )
    for payload in bad_payloads:
        with pytest.raises(EventSchemaError):
            registry.new_event("user.registered", payload)
    with pytest.raises(EventSchemaError):
        registry.new_event("user.profile_updated", {"user_id": user_id, "changes": {"name": "Ann"}})
    with pytest.raises(EventSchemaError):
        registry.new_event(
            "user.login_failed",
            {
                "user_id": user_id,
                "reason": "invalid_password",
                "client_ip": "192.0.2.1",
                "failures": 1,
            },
        )
    updated = registry.new_event(
        "user.profile_updated",
        {"user_id": user_id, "changes": {"phone": None, "language": "en"}},
    )
    assert updated.payload["changes"] == {"phone": None, "language": "en"}


def test_totp_secrets_are_encrypted_for_one_user_under_the_secret_key():
    secret, user_id = totp.new_secret(), str(uuid.uuid4())
    stored = totp.encrypt_secret(secret, user_id, master="k1")
    assert stored != totp.encrypt_secret(secret, user_id, master="k1")  # fresh nonce
    assert secret.encode() not in stored and base64.b32decode(secret) not in stored
    assert totp.decrypt_secret(stored, user_id, master="k1") == secret
    for other_user, master in ((str(uuid.uuid4()), "k1"), (user_id, "k2")):
        with pytest.raises(ServiceUnavailable, match=r"decrypt|format"):
            totp.decrypt_secret(stored, other_user, master=master)
    with pytest.raises(ServiceUnavailable, match=r"decrypt|format"):
        totp.decrypt_secret(b"\x02" + stored[1:], user_id, master="k1")
    # the default master key is CMS_SECRET_KEY
    assert totp.decrypt_secret(totp.encrypt_secret(secret, user_id), user_id) == secret
