import io
import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI

from todo.config import Settings
from todo.db import Database
from todo.http.log_buffer import Line
from todo.http.logs import (
    HANDLER_NAME,
    JsonFormatter,
    KeyValueFormatter,
    RequestIdFilter,
    configure_logging,
    current_request_id,
)
from todo.main import create_app

SECRET = "the body must never be logged"


def _access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "todo.access"]


def _our_handler() -> logging.StreamHandler[Any]:
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == HANDLER_NAME)
    assert isinstance(handler, logging.StreamHandler)
    return handler


@pytest.fixture
async def json_app(
    database: Database, database_url: str, app: FastAPI
) -> AsyncIterator[tuple[httpx.AsyncClient, io.StringIO]]:
    """A client of an app logging JSON, and the stream it logs to."""
    json_app = create_app(Settings(database_url=database_url, log_format="json"), database)
    stream = io.StringIO()
    _our_handler().setStream(stream)
    transport = httpx.ASGITransport(app=json_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client, stream


async def test_one_json_line_per_request_with_its_fields(
    json_app: tuple[httpx.AsyncClient, io.StringIO], user_id: str
) -> None:
    json_client, json_output = json_app
    created = await json_client.post(
        "/api/tasks",
        json={"title": "Buy milk", "description": SECRET},
        headers={"X-User-ID": user_id, "X-Request-ID": "req-1"},
    )
    task_id = created.json()["id"]
    fetched = await json_client.get(f"/api/tasks/{task_id}", headers={"X-User-ID": user_id})

    _our_handler().flush()
    lines = [json.loads(line) for line in json_output.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "todo.access"]
    assert len(access) == 2
    first, second = access
    assert first["method"] == "POST"
    assert first["route"] == "/api/tasks"
    assert first["status"] == 201
    assert first["request_id"] == "req-1"
    assert first["user_id"] == user_id
    assert first["level"] == "INFO"
    assert isinstance(first["duration_ms"], float)
    assert first["duration_ms"] >= 0
    assert first["ts"].endswith("Z")
    # The template, not the path that carries the id.
    assert second["route"] == "/api/tasks/{task_id}"
    assert second["status"] == 200
    assert second["request_id"] == fetched.headers["X-Request-ID"]
    assert task_id not in json.dumps(second)
    assert SECRET not in json_output.getvalue()


async def test_the_access_record_carries_every_field(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, user_id: str
) -> None:
    caplog.set_level(logging.INFO, logger="todo.access")

    await client.put(
        f"/api/tasks/{uuid4()}",
        json={"title": SECRET},
        headers={"X-User-ID": user_id, "X-Request-ID": "req-2"},
    )

    [record] = _access_records(caplog)
    line = json.loads(JsonFormatter().format(record))
    assert {k: line[k] for k in ("method", "route", "status", "request_id", "user_id")} == {
        "method": "PUT",
        "route": "/api/tasks/{task_id}",
        "status": 404,
        "request_id": "req-2",
        "user_id": user_id,
    }
    assert SECRET not in caplog.text
    assert all(SECRET not in JsonFormatter().format(r) for r in caplog.records)


@pytest.mark.parametrize("header", [None, "not-a-uuid"])
async def test_no_user_id_unless_the_header_was_valid(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, header: str | None
) -> None:
    caplog.set_level(logging.INFO, logger="todo.access")
    headers = {} if header is None else {"X-User-ID": header}

    response = await client.get("/api/tasks", headers=headers)

    [record] = _access_records(caplog)
    assert response.status_code == 400
    assert record.status == 400  # type: ignore[attr-defined]
    assert record.user_id is None  # type: ignore[attr-defined]


async def test_an_unknown_path_is_not_logged_raw(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="todo.access")

    await client.get("/wp-admin/secret-probe")

    [record] = _access_records(caplog)
    assert record.route == "<unmatched>"  # type: ignore[attr-defined]
    assert record.status == 404  # type: ignore[attr-defined]
    assert "secret-probe" not in KeyValueFormatter().format(record)


async def test_a_too_large_body_is_logged_under_its_route(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, headers: dict[str, str]
) -> None:
    caplog.set_level(logging.INFO, logger="todo.access")

    await client.post("/api/tasks", content=b"x" * (1024 * 1024 + 1), headers=headers)

    [record] = _access_records(caplog)
    assert (record.route, record.status) == ("/api/tasks", 413)  # type: ignore[attr-defined]


async def test_an_unexpected_error_is_logged_with_the_request_id(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def fail() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/test/fail", fail)

    await client.get("/test/fail", headers={"X-Request-ID": "req-500"})

    [error] = [r for r in caplog.records if r.name == "todo.errors"]
    [access] = _access_records(caplog)
    assert error.levelno == logging.ERROR
    assert error.request_id == "req-500"  # type: ignore[attr-defined]
    assert error.route == "/test/fail"  # type: ignore[attr-defined]
    assert error.exc_info is not None
    assert "RuntimeError: a bug" in json.loads(JsonFormatter().format(error))["exc_info"]
    assert (access.status, access.request_id) == (500, "req-500")  # type: ignore[attr-defined]


def test_records_logged_during_a_request_get_its_id() -> None:
    record = logging.makeLogRecord({"msg": "inside"})
    outside = logging.makeLogRecord({"msg": "outside"})
    token = current_request_id.set("req-3")
    try:
        RequestIdFilter().filter(record)
    finally:
        current_request_id.reset(token)
    RequestIdFilter().filter(outside)

    assert record.request_id == "req-3"  # type: ignore[attr-defined]
    assert not hasattr(outside, "request_id")


def test_the_text_format_is_key_value() -> None:
    record = logging.makeLogRecord(
        {
            "name": "todo.access",
            "levelname": "INFO",
            "msg": "request",
            "route": "/api/tasks/{task_id}",
            "status": 200,
            "user_id": None,
            "note": 'has "quotes" and spaces',
        }
    )

    line = KeyValueFormatter().format(record)

    assert line.startswith("ts=")
    assert " level=INFO logger=todo.access msg=request " in line
    assert " route=/api/tasks/{task_id} status=200 user_id=- " in line
    assert line.endswith(' note="has \\"quotes\\" and spaces"')


@pytest.mark.parametrize("formatter", [JsonFormatter(), KeyValueFormatter()])
@pytest.mark.parametrize(
    "fields",
    [
        {
            "method": "GET",
            "route": "/api/tasks/{task_id}",
            "status": 200,
            "duration_ms": 1.5,
            "request_id": "0123abcd" * 4,
            "user_id": None,
        },
        {"note": 'has "quotes" and spaces', "count": 3},
        # A field named as one of the line's own replaces it in place.
        {"msg": "replaced", "status": 404},
        {},
    ],
)
def test_a_line_queued_as_its_fields_is_the_line_its_record_makes(
    formatter: JsonFormatter | KeyValueFormatter, fields: dict[str, Any]
) -> None:
    # 12:34:56.789 on 2026-12-08, and a time just below a whole second.
    for created in (1796733296.789, 1796733296.9999):
        line = Line(created, logging.INFO, "todo.access", "request", fields)

        assert formatter.format_line(line) == formatter.format(line.as_record())


@pytest.mark.parametrize(
    ("log_format", "formatter"), [("json", JsonFormatter), ("text", KeyValueFormatter)]
)
def test_logging_is_configured_once_whatever_the_calls(
    log_format: str, formatter: type[logging.Formatter]
) -> None:
    settings = Settings(log_format=log_format, log_level="debug")
    configure_logging(settings)
    configure_logging(settings)

    ours = [h for h in logging.getLogger().handlers if h.get_name() == HANDLER_NAME]
    assert len(ours) == 1
    assert isinstance(ours[0].formatter, formatter)
    assert logging.getLogger().level == logging.DEBUG
    # uvicorn's lines go through the same handler; its access log is silent.
    assert logging.getLogger("uvicorn.error").propagate
    assert not logging.getLogger("uvicorn").handlers
    assert not logging.getLogger("uvicorn.access").hasHandlers()
    configure_logging(Settings())


async def test_log_level_warning_silences_the_access_log(
    database: Database, database_url: str, app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    quiet = create_app(Settings(database_url=database_url, log_level="WARNING"), database)
    transport = httpx.ASGITransport(app=quiet)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/health")
    finally:
        configure_logging(Settings())

    assert response.status_code == 200
    assert _access_records(caplog) == []
