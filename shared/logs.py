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


class ExpectedErrorsAsInfo(logging.Filter):
    """For ``nameko.containers``: an error an entrypoint expects (its ``expected_exceptions``:
    every ``shared.errors.CmsError`` of the RPCs and of the gateway, a 404 or a 422 answered on
    purpose) becomes one INFO line with its type, without a traceback, where nameko logs a
    WARNING with the full traceback, once in the service and again in the gateway. Unexpected
    errors (``error handling worker``, at ERROR) keep theirs."""

    PREFIX = "(expected) error handling worker"

    def filter(self, record: logging.LogRecord) -> bool:
        if not (isinstance(record.msg, str) and record.msg.startswith(self.PREFIX)):
            return True
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and len(record.args or ()) == 2:
            record.args = (record.args[0], f"{type(error).__name__}: {error}")
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.exc_info = record.exc_text = None
        # nameko's logger lets WARNING through; an INFO line shows where the service logs INFO
        return logging.getLogger().isEnabledFor(logging.INFO)


def logging_config(service: str, level: str = "INFO") -> dict:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter, "service": service}},
        "filters": {"expected_errors": {"()": ExpectedErrorsAsInfo}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json"},
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "kombu": {"level": "WARNING"},
            "amqp": {"level": "ERROR"},
            "nameko": {"level": "WARNING"},
            "nameko.containers": {"filters": ["expected_errors"]},
            "alembic": {"level": "WARNING"},
        },
    }


def configure(service: str, level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(service, level))
