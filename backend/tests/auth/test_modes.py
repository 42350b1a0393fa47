"""One setting picks how callers are identified; routes and docs follow it."""

import logging
from typing import Any, Literal
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI

from todo.config import Settings
from todo.main import create_app

IN_MEMORY = "sqlite:///:memory:"


def _settings(mode: Literal["header", "jwt"] = "header", host: str = "127.0.0.1") -> Settings:
    return Settings(
        database_url=IN_MEMORY,
        host=host,
        auth_mode=mode,
        auth_jwks_url="http://127.0.0.1:9/api/auth/jwks",
    )


def _operations(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (path, operation)
        for path, path_item in schema["paths"].items()
        for operation in path_item.values()
    ]


def test_header_mode_documents_x_user_id_on_every_task_operation() -> None:
    schema = create_app(_settings()).openapi()

    for path, operation in _operations(schema):
        names = [parameter["name"] for parameter in operation.get("parameters", [])]
        assert ("X-User-ID" in names) == path.startswith("/api/"), path
        assert "security" not in operation
    assert "securitySchemes" not in schema["components"]


def test_jwt_mode_documents_the_bearer_scheme_instead() -> None:
    schema = create_app(_settings("jwt")).openapi()

    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schema["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    for path, operation in _operations(schema):
        names = [parameter["name"] for parameter in operation.get("parameters", [])]
        assert "X-User-ID" not in names
        if path.startswith("/api/"):
            assert operation["security"] == [{"bearerAuth": []}]
            assert "401" in operation["responses"]
        else:
            assert "security" not in operation
    assert "Authorization: Bearer" in schema["info"]["description"]


async def test_header_mode_ignores_a_bearer_token(client: httpx.AsyncClient) -> None:
    headers = {"X-User-ID": str(uuid4()), "Authorization": "Bearer a.b.c"}

    assert (await client.get("/api/tasks", headers=headers)).status_code == 200
    missing = await client.get("/api/tasks", headers={"Authorization": "Bearer a.b.c"})
    assert missing.status_code == 400
    assert missing.json()["type"] == "urn:todo:problem:invalid-user-id"


async def test_header_mode_checks_the_header_before_the_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/tasks", json={"title": ""})

    assert response.status_code == 400
    assert response.json()["type"] == "urn:todo:problem:invalid-user-id"


@pytest.mark.parametrize(
    ("mode", "credential_header"),
    [("header", "X-User-ID"), ("jwt", "Authorization")],
)
async def test_cors_allows_the_credential_header_of_the_mode(
    mode: Literal["header", "jwt"], credential_header: str
) -> None:
    app = create_app(_settings(mode))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.options(
            "/api/tasks",
            headers={
                "Origin": "http://localhost:3000",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": credential_header,
            },
        )

    assert response.status_code == 200
    assert credential_header.lower() in response.headers["access-control-allow-headers"].lower()


async def _start(app: FastAPI) -> None:
    async with app.router.lifespan_context(app):
        pass


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "todo.example"])
async def test_header_mode_warns_at_start_up_when_not_on_loopback(
    host: str, caplog: pytest.LogCaptureFixture
) -> None:
    await _start(create_app(_settings("header", host)))

    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "AUTH_MODE=jwt" in warnings[0].getMessage()


@pytest.mark.parametrize(
    ("host", "mode"),
    [
        ("127.0.0.1", "header"),
        ("::1", "header"),
        ("localhost", "header"),
        ("0.0.0.0", "jwt"),
    ],
)
async def test_no_warning_on_loopback_or_in_jwt_mode(
    host: str, mode: Literal["header", "jwt"], caplog: pytest.LogCaptureFixture
) -> None:
    await _start(create_app(_settings(mode, host)))

    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
