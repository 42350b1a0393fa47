"""The committed contract is the app's, and it documents the HTTP semantics clients rely on."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from todo.config import Settings
from todo.main import create_app

CONTRACT = Path(__file__).resolve().parents[2] / "specs/001-backend-api-data/contracts/openapi.yaml"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    document: dict[str, Any] = create_app(Settings(database_url="sqlite:///:memory:")).openapi()
    return document


def test_the_committed_contract_is_the_apps(schema: dict[str, Any]) -> None:
    assert yaml.safe_load(CONTRACT.read_text()) == schema, "run `make openapi`"


def _operation(schema: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    operation: dict[str, Any] = schema["paths"][path][method]
    return operation


def _header_params(operation: dict[str, Any]) -> set[str]:
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}


@pytest.mark.parametrize(
    ("method", "path", "headers", "statuses", "success"),
    [
        ("get", "/api/tasks/{task_id}", {"If-None-Match"}, {"304", "429"}, "200"),
        ("post", "/api/tasks", {"Idempotency-Key"}, {"409", "422", "429"}, "201"),
        ("put", "/api/tasks/{task_id}", {"If-Match"}, {"412", "428", "429"}, "200"),
        (
            "patch",
            "/api/tasks/{task_id}/complete",
            {"If-Match", "Idempotency-Key"},
            {"409", "412", "428", "429"},
            "200",
        ),
        ("delete", "/api/tasks/{task_id}", {"If-Match"}, {"412", "428", "429"}, "204"),
    ],
)
def test_conditional_and_idempotent_requests_are_documented(
    schema: dict[str, Any],
    method: str,
    path: str,
    headers: set[str],
    statuses: set[str],
    success: str,
) -> None:
    operation = _operation(schema, method, path)
    assert headers <= _header_params(operation)
    assert statuses <= set(operation["responses"])
    success_headers = set(operation["responses"][success].get("headers", {}))
    assert {"RateLimit", "RateLimit-Policy"} <= success_headers
    if method != "delete":
        assert "ETag" in success_headers
    if "Idempotency-Key" in headers:
        assert "Idempotent-Replayed" in success_headers
    refused = operation["responses"]["429"]
    assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(refused["headers"])
