"""JSON log lines, one object per line, with the service name and the request id."""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
from datetime import UTC, datetime

#: The request id of the work in progress (set per nameko worker, per HTTP request).
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "cms_request_id", default=None
)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str = "cms"):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def logging_config(service: str, level: str = "INFO") -> dict:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter, "service": service}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json"},
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "kombu": {"level": "WARNING"},
            "amqp": {"level": "ERROR"},
            "nameko": {"level": "WARNING"},
            "alembic": {"level": "WARNING"},
        },
    }


def configure(service: str, level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(service, level))
