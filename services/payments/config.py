"""Settings of the payments service and of its sandbox provider.

Environment variables with local defaults; a nameko config key ``PAYMENTS`` (a dict with the
same names minus ``CMS_``) overrides them, which is how tests run the sandbox without latency.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Any

from shared.config import settings


@dataclass(frozen=True)
class PaymentsConfig:
    #: a pending payment not completed within this many seconds expires
    pending_ttl_seconds: int
    #: how often the expiry timer looks for due payments
    expiry_interval_seconds: float
    #: the sandbox's simulated processing time before it reports an outcome
    sandbox_latency_ms: int
    #: share (0..1) of otherwise successful sandbox payments that fail (processing_error)
    sandbox_failure_rate: float
    #: seconds until a sandbox bank transfer settles
    sandbox_transfer_delay_seconds: int
    #: where the sandbox posts its webhooks (the gateway's public endpoint)
    sandbox_webhook_url: str
    #: HMAC-SHA256 key of the sandbox's webhook signatures
    sandbox_webhook_secret: str
    #: a webhook whose timestamp is further than this from now is refused (replay window)
    sandbox_webhook_tolerance_seconds: int


def _get(overrides: dict[str, Any], name: str, default: Any) -> Any:
    if name in overrides:
        return overrides[name]
    value = os.environ.get(f"CMS_{name}")
    return default if value is None or value.strip() == "" else value.strip()


def load_config(nameko_config: dict[str, Any] | None = None) -> PaymentsConfig:
    nameko_config = nameko_config or {}
    overrides = dict(nameko_config.get("PAYMENTS") or {})
    base = settings()
    gateway = nameko_config.get("WEB_SERVER_ADDRESS") or f"{base.gateway_host}:{base.gateway_port}"
    host, _, port = str(gateway).rpartition(":")
    if host in ("", "0.0.0.0"):  # noqa: S104 - the address the gateway listens on, not a bind
        host = "127.0.0.1"
    default_secret = hmac.new(
        base.secret_key.encode(), b"sandbox-webhook-secret", hashlib.sha256
    ).hexdigest()
    config = PaymentsConfig(
        pending_ttl_seconds=int(_get(overrides, "PAYMENT_PENDING_TTL_SECONDS", 1800)),
        expiry_interval_seconds=float(_get(overrides, "PAYMENT_EXPIRY_INTERVAL_SECONDS", 30)),
        sandbox_latency_ms=int(_get(overrides, "SANDBOX_LATENCY_MS", 800)),
        sandbox_failure_rate=float(_get(overrides, "SANDBOX_FAILURE_RATE", 0.0)),
        sandbox_transfer_delay_seconds=int(_get(overrides, "SANDBOX_TRANSFER_DELAY_SECONDS", 60)),
        sandbox_webhook_url=str(
            _get(overrides, "SANDBOX_WEBHOOK_URL", f"http://{host}:{port}/api/v1/webhooks/sandbox")
        ),
        sandbox_webhook_secret=str(_get(overrides, "SANDBOX_WEBHOOK_SECRET", default_secret)),
        sandbox_webhook_tolerance_seconds=int(
            _get(overrides, "SANDBOX_WEBHOOK_TOLERANCE_SECONDS", 300)
        ),
    )
    if not 0.0 <= config.sandbox_failure_rate <= 1.0:
        raise ValueError("CMS_SANDBOX_FAILURE_RATE must be between 0 and 1")
    if config.pending_ttl_seconds < 1 or config.sandbox_latency_ms < 0:
        raise ValueError("CMS_PAYMENT_PENDING_TTL_SECONDS ≥ 1 and CMS_SANDBOX_LATENCY_MS ≥ 0")
    return config
