"""Logging, configured once from the settings: one line per record, JSON or key=value.

Fields passed with `extra=` become keys of the line; the request id is added to
every record logged while a request is being served. Lines reach stderr through
a bounded buffer (todo.http.log_buffer).
"""

import json
import logging
import re
import sys
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from todo.config import Settings
from todo.http.log_buffer import BufferedStreamHandler
from todo.http.request_context import current_request_id

HANDLER_NAME = "todo"
# Printable ASCII but space, '"', '=' and '\\': written as is; anything else is quoted.
_BARE_VALUE = re.compile(r"[!#-<>-\[\]-~]+")

# Attributes every LogRecord has; whatever else a record carries came from
# `extra`, except uvicorn's copy of its message in terminal colours.
_RECORD_ATTRIBUTES = frozenset(
    (*vars(logging.makeLogRecord({})), "message", "asctime", "taskName", "color_message")
)


@lru_cache(maxsize=4)
def _second(epoch_second: int) -> str:
    # Records come in bursts within one second: format it once.
    return datetime.fromtimestamp(epoch_second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _timestamp(record: logging.LogRecord) -> str:
    return f"{_second(int(record.created))}.{int(record.msecs):03d}Z"


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ts": _timestamp(record),
        "level": record.levelname,
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
            fields[key] = value
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = record_fields(record)
        if record.exc_info:
            fields["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(fields, default=str)


class KeyValueFormatter(logging.Formatter):
    """`ts=... level=INFO logger=todo.access msg=request method=GET ...`, for people."""

    def format(self, record: logging.LogRecord) -> str:
        line = " ".join(f"{key}={_value(value)}" for key, value in record_fields(record).items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _value(value: Any) -> str:
    text = "-" if value is None else str(value)
    return text if _BARE_VALUE.fullmatch(text) else json.dumps(text)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            request_id = current_request_id.get()
            if request_id is not None:
                record.request_id = request_id
        return True


def configure_logging(settings: Settings) -> None:
    """Send every record, uvicorn's included, through one handler on the root logger.

    Safe to call again (each app the tests create does): the handler is replaced,
    and handlers that others added to the root logger are left alone.
    """
    handler = BufferedStreamHandler(sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else KeyValueFormatter())
    handler.addFilter(RequestIdFilter())

    # No formatter here prints threads or processes: skip looking them up for
    # every record (the logging documentation's "Optimization" advice).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False

    root = logging.getLogger()
    for existing in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(existing)
        existing.close()
    root.addHandler(handler)
    root.setLevel(settings.log_level)

    # uvicorn's own lines take the same format; its access log would repeat
    # what todo.access already says about each request.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False


def stop_buffering_logs() -> None:
    """Write the lines held now, and each later one at once (the app is shutting down)."""
    for handler in logging.getLogger().handlers:
        if handler.get_name() == HANDLER_NAME and isinstance(handler, BufferedStreamHandler):
            handler.write_through()
