"""Per-API-key rate limits: a token bucket per key in the gateway process.

Each key may make ``CMS_API_KEY_RATE_LIMIT`` requests per ``CMS_API_KEY_RATE_WINDOW`` seconds
(bursts up to the limit, refilled evenly); ``CMS_API_KEY_RATE_LIMITS`` sets other limits for
chosen keys (``<key id>=<requests>,…``). Beyond it the gateway answers 429 with ``Retry-After``.
The buckets live in each gateway process: with N gateway processes a key gets up to N times
the limit (documented in the README). Signed-in people are not limited here (sign-in itself
is, by the users service).
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass


def _overrides(raw: str) -> dict[str, int]:
    limits = {}
    for part in raw.split(","):
        key, _, value = part.partition("=")
        if key.strip() and value.strip().isdigit():
            limits[key.strip()] = int(value)
    return limits


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, limit: int, window: float, overrides: dict[str, int] | None = None):
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self.configure(limit, window, overrides)

    def configure(self, limit: int, window: float, overrides: dict[str, int] | None = None):
        with self._lock:
            self.limit = limit
            self.window = window
            self.overrides = dict(overrides or {})
            self._buckets.clear()

    def limit_for(self, key: str) -> int:
        return self.overrides.get(key, self.limit)

    def hit(self, key: str, now: float | None = None) -> int:
        """Count one request of ``key``: 0 when allowed, else the seconds to wait."""
        limit = self.limit_for(key)
        if limit <= 0 or self.window <= 0:
            return 0
        now = time.monotonic() if now is None else now
        rate = limit / self.window
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(limit), now)
            bucket.tokens = min(float(limit), bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0
            return max(1, math.ceil((1 - bucket.tokens) / rate))


LIMITER = RateLimiter(
    int(os.environ.get("CMS_API_KEY_RATE_LIMIT") or 600),
    float(os.environ.get("CMS_API_KEY_RATE_WINDOW") or 60),
    _overrides(os.environ.get("CMS_API_KEY_RATE_LIMITS") or ""),
)
