"""The request context of a worker: the request id that came with the call (from the gateway
through nameko's context data) and the event metadata derived from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nameko.extensions import DependencyProvider

from shared.logs import request_id_var


@dataclass(frozen=True)
class WorkerContext:
    request_id: str | None
    correlation_id: str | None

    def event_metadata(self, actor: dict[str, Any] | None = None, **extra: Any) -> dict:
        """Metadata for the events this worker appends: request, correlation and actor."""
        metadata: dict[str, Any] = {}
        if self.request_id:
            metadata["request_id"] = self.request_id
        if self.correlation_id or self.request_id:
            metadata["correlation_id"] = self.correlation_id or self.request_id
        if actor:
            metadata["actor_id"] = actor.get("id")
            metadata["actor_kind"] = actor.get("kind")
        metadata.update({key: value for key, value in extra.items() if value is not None})
        return metadata


class RequestContext(DependencyProvider):
    """Puts the caller's request id into this worker's log lines and hands it to the worker."""

    def worker_setup(self, worker_ctx) -> None:
        request_id_var.set(worker_ctx.context_data.get("request_id"))

    def get_dependency(self, worker_ctx) -> WorkerContext:
        data = worker_ctx.context_data
        return WorkerContext(data.get("request_id"), data.get("correlation_id"))
