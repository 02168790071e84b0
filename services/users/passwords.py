"""Password policy and hashing.

Policy (NIST SP 800-63B style): 12 to 128 characters, any characters; not a common password
(``common_passwords.txt``, compared lower-case, also after stripping the digits and symbols
people glue to a common word: ``Password2024!``); not built from the account's e-mail or name;
not a single character or pattern repeated.

Hashing: argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile: t=3, m=64 MiB,
p=4). A hash takes ~0.1 s of CPU, so it runs in eventlet's thread pool (argon2 releases the
GIL) to keep the service's hub, heartbeats and other workers responsive; a semaphore bounds
how many run at once (and so the memory they take).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from eventlet import tpool
from eventlet.semaphore import BoundedSemaphore

MIN_LENGTH = 12
MAX_LENGTH = 128
#: Longer input is not even hashed (hashing cost grows with length: a cheap DoS otherwise).
MAX_INPUT_LENGTH = 1024
MAX_CONCURRENT_HASHES = 4

COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")

_hasher = PasswordHasher()
_slots = BoundedSemaphore(MAX_CONCURRENT_HASHES)
_DECORATION = re.compile(r"^[\W\d_]+|[\W\d_]+$")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    with COMMON_PASSWORDS_FILE.open(encoding="utf-8") as handle:
        return frozenset(
            line.strip().lower() for line in handle if line.strip() and not line.startswith("#")
        )


def normalise(password: str) -> str:
    """NFKC, so that the same password typed on another keyboard/IME hashes the same."""
    return unicodedata.normalize("NFKC", password)


def policy_errors(password: str, email: str | None = None, name: str | None = None) -> list[str]:
    """Why ``password`` is not acceptable (empty list: it is)."""
    if not isinstance(password, str):
        return ["Must be a string."]
    password = normalise(password)
    length = len(password)
    if length < MIN_LENGTH:
        return [f"Must be at least {MIN_LENGTH} characters long."]
    if length > MAX_LENGTH:
        return [f"Must be at most {MAX_LENGTH} characters long."]
    lowered = password.lower()
    common = common_passwords()
    core = _DECORATION.sub("", lowered)
    if lowered in common or (len(core) >= 4 and core in common):
        return ["This password is too common; choose a less predictable one."]
    if len(set(lowered)) < 5 or _is_repetition(lowered):
        return ["This password is too easy to guess (too few different characters)."]
    personal = set()
    if email:
        local = email.lower().split("@", 1)[0]
        personal.update({email.lower(), local})
    if name:
        personal.add(name.lower().replace(" ", ""))
    squeezed = lowered.replace(" ", "")
    for word in personal:
        if len(word) >= 4 and (squeezed == word or _DECORATION.sub("", squeezed) == word):
            return ["Must not be your e-mail address or name."]
    return []


def _is_repetition(text: str) -> bool:
    """``abcabcabcabc``: a short unit repeated."""
    for size in range(1, len(text) // 2 + 1):
        if len(text) % size == 0 and text[:size] * (len(text) // size) == text:
            return True
    return False


def hash_password(password: str) -> str:
    with _slots:
        return tpool.execute(_hasher.hash, normalise(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches. With no hash (unknown account) it still spends the time
    of one verification, so the answer time does not tell whether an account exists."""
    if not isinstance(password, str) or len(password) > MAX_INPUT_LENGTH:
        password = ""
    target = password_hash or _dummy_hash()
    with _slots:
        try:
            ok = tpool.execute(_hasher.verify, target, normalise(password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
    return bool(ok) and password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    """The hash was made with other parameters than today's: rehash after a good login."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash("not a real password, only spends the time of a check")
