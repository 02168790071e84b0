"""Settings of the webhooks service: the nameko config (``WEBHOOK_*``, tests use it) wins,
else the environment (``CMS_WEBHOOK_*``, documented in the README), else the defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULTS: dict[str, Any] = {
    "BACKOFF_BASE": 10.0,  # seconds before the first retry; doubles each time
    "BACKOFF_MAX": 3600.0,  # the longest wait between two attempts
    "RETRY_HOURS": 72.0,  # keep retrying a delivery this long after its first attempt
    "PAUSE_AFTER_HOURS": 72.0,  # hours of failing without one success that pause (0: never)
    "TIMEOUT": 10.0,  # seconds an endpoint has to answer
    "CONCURRENCY": 10,  # deliveries in flight per process (the bounded pool)
    "POLL_INTERVAL": 1.0,  # seconds between looks for due deliveries when idle
    "CATCH_UP_INTERVAL": 30.0,  # seconds between catch-ups through read_events
    "ALLOW_HTTP_LOOPBACK": False,  # loopback endpoints, http too (development and tests only)
    "LOG_DAYS": 30,  # delivered deliveries are kept this long in the log (failed ones for ever)
}


@dataclass(frozen=True)
class WebhookSettings:
    backoff_base: float
    backoff_max: float
    retry_hours: float
    pause_after_hours: float
    timeout: float
    concurrency: int
    poll_interval: float
    catch_up_interval: float
    allow_http_loopback: bool
    log_days: int

    def backoff(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failed attempt: base, 2·base, 4·base, …
        up to the maximum."""
        return min(self.backoff_max, self.backoff_base * 2 ** max(0, failures - 1))


def _raw(config: Mapping[str, Any], name: str) -> Any:
    if f"WEBHOOK_{name}" in config:
        return config[f"WEBHOOK_{name}"]
    env = os.environ.get(f"CMS_WEBHOOK_{name}")
    return env if env not in (None, "") else DEFAULTS[name]


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def load(config: Mapping[str, Any] | None = None) -> WebhookSettings:
    config = config or {}
    return WebhookSettings(
        backoff_base=float(_raw(config, "BACKOFF_BASE")),
        backoff_max=float(_raw(config, "BACKOFF_MAX")),
        retry_hours=float(_raw(config, "RETRY_HOURS")),
        pause_after_hours=float(_raw(config, "PAUSE_AFTER_HOURS")),
        timeout=float(_raw(config, "TIMEOUT")),
        concurrency=max(1, int(_raw(config, "CONCURRENCY"))),
        poll_interval=float(_raw(config, "POLL_INTERVAL")),
        catch_up_interval=float(_raw(config, "CATCH_UP_INTERVAL")),
        allow_http_loopback=_bool(_raw(config, "ALLOW_HTTP_LOOPBACK")),
        log_days=int(_raw(config, "LOG_DAYS")),
    )
