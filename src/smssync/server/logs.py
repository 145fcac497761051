"""The logs of ``smssync serve``: one format for smssync, uvicorn and any other library, the
request's id on every line logged while it is answered, text or JSON (``--log-format``).

The request id lives in a context variable that ``observe.Observe`` sets for each request;
a filter on the one handler copies it onto every record, so that a line logged deep inside a
verb says which request it belongs to without anyone passing the id along. Lines logged
outside a request (start, the dispatcher, the liveness check) have none.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

#: The id of the request being answered in this task, None outside a request.
REQUEST_ID: ContextVar[str | None] = ContextVar("smssync_request_id", default=None)

#: Every line says when, how bad, who and for which request:
#: ``2026-12-03 14:11:30,123 WARNING smssync.server [5f0c…]: …`` (no brackets outside one).
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(request_tag)s: %(message)s"


class RequestIdFilter(logging.Filter):
    """Put the current request's id on the record: ``request_id`` (None outside a request)
    and ``request_tag`` (`` [id]``, or nothing) for the text format."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        record.request_id = request_id
        record.request_tag = f" [{request_id}]" if request_id else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601 UTC), level, logger, message, request_id,
    and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # A newline inside a message stays escaped: one line is one record for a shipper.
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_config(log_format: str = "text") -> dict[str, Any]:
    """The logging of ``smssync serve`` (``logging.config.dictConfig``): smssync's own INFO
    and up, uvicorn's, and other libraries' warnings on stderr, in one format; the access
    log stays off (task queries carry secrets)."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    handler = {"handlers": ["stderr"], "level": "INFO", "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "formatters": {"line": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "line",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {"smssync": handler, "uvicorn": handler, "uvicorn.error": {"level": "INFO"}},
        # Anything else (alembic, httpx, asyncio) in the same format, its warnings only.
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }
