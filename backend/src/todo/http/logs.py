"""Logging, configured once from the settings: one line per record, JSON or key=value.

Fields passed with `extra=` become keys of the line; the request id is added to
every record logged while a request is being served. Lines reach stderr through
a bounded buffer (todo.http.log_buffer).
"""

import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from todo.config import Settings
from todo.http.log_buffer import BufferedStreamHandler, Line

HANDLER_NAME = "todo"
# The id of the request being served: read by the log filter and the problem renderer,
# set by the request context (todo.http.request_context); None outside a request.
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)
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


def _timestamp(created: float, msecs: float) -> str:
    return f"{_second(int(created))}.{int(msecs):03d}Z"


# The fields every line starts with, which a record's own may not replace in a fast line.
_HEAD_FIELDS = frozenset(("ts", "level", "logger", "msg"))


@lru_cache(maxsize=64)
def _key_value_head(levelno: int, logger: str, msg: str) -> str:
    # A line written on every request has the same level, logger and message each time.
    return _key_values({"level": logging.getLevelName(levelno), "logger": logger, "msg": msg})


def _fields(
    created: float, msecs: float, *, level: str, logger: str, msg: str, extra: Mapping[str, Any]
) -> dict[str, Any]:
    return {"ts": _timestamp(created, msecs), "level": level, "logger": logger, "msg": msg, **extra}


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    extra = {
        key: value
        for key, value in vars(record).items()
        if key not in _RECORD_ATTRIBUTES and not key.startswith("_")
    }
    return _fields(
        record.created,
        record.msecs,
        level=record.levelname,
        logger=record.name,
        msg=record.getMessage(),
        extra=extra,
    )


def line_fields(line: Line) -> dict[str, Any]:
    level = logging.getLevelName(line.levelno)
    return _fields(
        line.created, line.msecs, level=level, logger=line.name, msg=line.msg, extra=line.fields
    )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = record_fields(record)
        if record.exc_info:
            fields["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(fields, default=str)

    def format_line(self, line: Line) -> str:
        return json.dumps(line_fields(line), default=str)


class KeyValueFormatter(logging.Formatter):
    """`ts=... level=INFO logger=todo.access msg=request method=GET ...`, for people."""

    def format(self, record: logging.LogRecord) -> str:
        line = _key_values(record_fields(record))
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line

    def format_line(self, line: Line) -> str:
        fields = line.fields
        if not _HEAD_FIELDS.isdisjoint(fields):
            return _key_values(line_fields(line))
        # As _key_values(line_fields(line)) writes it, with the constant part made once.
        head = _key_value_head(line.levelno, line.name, line.msg)
        start = f"ts={_timestamp(line.created, line.msecs)} {head}"
        if not fields:
            return start
        return start + " " + " ".join([f"{key}={_value(value)}" for key, value in fields.items()])


def _key_values(fields: Mapping[str, Any]) -> str:
    return " ".join(f"{key}={_value(value)}" for key, value in fields.items())


def _value(value: Any) -> str:
    if type(value) is int or type(value) is float:
        return str(value)  # digits, '.', '-', 'e', 'inf' or 'nan': always bare
    text = "-" if value is None else str(value)
    return text if _BARE_VALUE.fullmatch(text) else json.dumps(text)


def write_line(logger: logging.Logger, msg: str, fields: dict[str, Any]) -> None:
    """What `logger.info(msg, extra=fields)` writes, for a line written on every request.

    When the service's handler is the only one the record would reach (as it is once
    `configure_logging` has run, and no one has added another), the line goes to it as
    its fields alone: no LogRecord and no pass through the logging module's loggers,
    filters and locks, which cost a request more than formatting the line does.
    Anything else (a test's capture, an operator's own handler) gets the record.
    """
    handler = _sole_handler(logger)
    if handler is None:
        record = logger.makeRecord(
            logger.name, logging.INFO, __file__, 0, msg, (), None, extra=fields
        )
        logger.handle(record)
        return
    if "request_id" not in fields:
        # What the handler's filter would have added.
        request_id = current_request_id.get()
        if request_id is not None:
            fields = {**fields, "request_id": request_id}
    handler.add_line(Line(time.time(), logging.INFO, logger.name, msg, fields))


def _sole_handler(logger: logging.Logger) -> BufferedStreamHandler | None:
    """The service's handler, if it is the only handler an INFO record of `logger` reaches
    and nothing but its own request-id filter would filter it."""
    found: BufferedStreamHandler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if (
                found is not None
                or not isinstance(handler, BufferedStreamHandler)
                or handler.level > logging.INFO
                or not all(isinstance(each, RequestIdFilter) for each in handler.filters)
            ):
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    return found


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
