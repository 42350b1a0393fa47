"""The committed contract is the app's, and a client generated from it reads the server right.

Generators read `default` as "always present" and `required` as "always sent": the
contract marks required exactly what the server always sends, and gives no default to
what a client or the server may leave out.
"""

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

from todo.config import Settings
from todo.main import create_app, openapi_contract

CONTRACT = Path(__file__).resolve().parents[2] / "specs/001-backend-api-data/contracts/openapi.yaml"
TASK_RESPONSES = [
    ("get", "/api/tasks/{task_id}", "200"),
    ("get", "/api/tasks/{task_id}", "304"),
    ("put", "/api/tasks/{task_id}", "200"),
    ("patch", "/api/tasks/{task_id}/complete", "200"),
    ("post", "/api/tasks/{task_id}/move", "200"),
    ("get", "/api/tasks/summary", "200"),
    ("put", "/api/tasks/{task_id}", "412"),
]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return openapi_contract()


def _app_schema(mode: Literal["header", "jwt"]) -> dict[str, Any]:
    settings = Settings(
        database_url="sqlite:///:memory:",
        auth_mode=mode,
        auth_jwks_url="http://127.0.0.1:9/api/auth/jwks",
    )
    document: dict[str, Any] = create_app(settings).openapi()
    return document


def test_the_committed_contract_is_the_export(schema: dict[str, Any]) -> None:
    assert yaml.safe_load(CONTRACT.read_text()) == schema, "run `make openapi`"


def _operation(schema: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    operation: dict[str, Any] = schema["paths"][path][method]
    return operation


def _operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, path_item in schema["paths"].items():
        for method, operation in path_item.items():
            yield path, method, operation


def _header_params(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}


def _required_headers(response: dict[str, Any]) -> set[str]:
    return {name for name, header in response.get("headers", {}).items() if header.get("required")}


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
    assert headers <= set(_header_params(operation))
    assert statuses <= set(operation["responses"])
    success_headers = set(operation["responses"][success].get("headers", {}))
    assert {"RateLimit", "RateLimit-Policy"} <= success_headers
    if method != "delete":
        assert "ETag" in success_headers
    if "Idempotency-Key" in headers:
        assert "Idempotent-Replayed" in success_headers
    refused = operation["responses"]["429"]
    assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(refused["headers"])


def test_a_task_is_created_without_a_status(schema: dict[str, Any]) -> None:
    task_create = schema["components"]["schemas"]["TaskCreate"]

    assert task_create["required"] == ["title"]
    assert "default" not in task_create["properties"]["status"]
    assert "pending" in task_create["properties"]["status"]["description"]


def test_no_request_body_member_has_a_default(schema: dict[str, Any]) -> None:
    bodies = [
        content["schema"]["$ref"].rpartition("/")[2]
        for _, _, operation in _operations(schema)
        for content in operation.get("requestBody", {}).get("content", {}).values()
    ]
    assert "TaskCreate" in bodies
    for name in bodies:
        for member, member_schema in schema["components"]["schemas"][name]["properties"].items():
            assert "default" not in member_schema, (name, member)


def test_problem_members_are_required_exactly_when_always_sent(schema: dict[str, Any]) -> None:
    problem = schema["components"]["schemas"]["Problem"]
    field_problem = schema["components"]["schemas"]["FieldProblem"]

    assert set(problem["required"]) == {
        "type",
        "title",
        "status",
        "detail",
        "instance",
        "request_id",
    }
    assert set(field_problem["required"]) == {"loc", "detail", "type"}
    # Left out when they do not apply, never sent as null.
    for optional in (problem["properties"]["errors"], field_problem["properties"]["pointer"]):
        assert "default" not in optional
        assert "anyOf" not in optional
    for model in (problem, field_problem):
        for member, member_schema in model["properties"].items():
            assert "default" not in member_schema, member


@pytest.mark.parametrize(("method", "path", "status"), TASK_RESPONSES)
def test_every_response_with_a_task_version_requires_its_etag(
    schema: dict[str, Any], method: str, path: str, status: str
) -> None:
    response = _operation(schema, method, path)["responses"][status]
    assert "ETag" in _required_headers(response)


def test_a_created_task_requires_its_location_and_etag(schema: dict[str, Any]) -> None:
    created = _operation(schema, "post", "/api/tasks")["responses"]["201"]
    assert {"Location", "ETag"} <= _required_headers(created)


def test_every_429_requires_retry_after(schema: dict[str, Any]) -> None:
    limited = [
        operation["responses"]["429"]
        for _, _, operation in _operations(schema)
        if "429" in operation["responses"]
    ]
    assert len(limited) >= 10
    for response in limited:
        assert "Retry-After" in _required_headers(response)


def test_every_503_declares_retry_after_and_requires_it_where_nothing_is_written(
    schema: dict[str, Any],
) -> None:
    unavailable = [
        (path, method, operation["responses"]["503"])
        for path, method, operation in _operations(schema)
        if "503" in operation["responses"]
    ]
    assert ("/health/ready", "get") in {(path, method) for path, method, _ in unavailable}
    assert ("/api/tasks", "post") in {(path, method) for path, method, _ in unavailable}
    for path, method, response in unavailable:
        retry_after = response["headers"]["Retry-After"]
        # A write's 503 may be write-outcome-unknown, which has none.
        assert retry_after["required"] is (method == "get"), (path, method)
        assert retry_after["schema"] == {"type": "integer", "minimum": 1}


def test_every_operation_takes_an_optional_request_id(schema: dict[str, Any]) -> None:
    for path, method, operation in _operations(schema):
        request_id = _header_params(operation)["X-Request-ID"]
        assert request_id["required"] is False, (path, method)
        # Any value is taken (a malformed one is replaced), so none is refused.
        assert request_id["schema"] == {"type": "string"}


def test_the_contract_serves_a_client_of_either_mode(schema: dict[str, Any]) -> None:
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, method, operation in _operations(schema):
        user_header = _header_params(operation).get("X-User-ID")
        if not path.startswith("/api/"):
            assert user_header is None
            assert "security" not in operation
            continue
        # JWT mode: the bearer token alone; header mode: X-User-ID, and no scheme.
        assert operation["security"] == [{"bearerAuth": []}, {}], (path, method)
        assert user_header is not None
        assert user_header["required"] is False
        assert {"400", "401"} <= set(operation["responses"])
    assert "AUTH_MODE=jwt" in schema["info"]["description"]
    assert "AUTH_MODE=header" in schema["info"]["description"]


def test_a_jwt_mode_server_asks_for_no_user_header() -> None:
    for path, method, operation in _operations(_app_schema("jwt")):
        assert "X-User-ID" not in _header_params(operation), (path, method)


def _without_callers(schema: dict[str, Any]) -> dict[str, Any]:
    """The document less what depends on the mode: the credentials and their refusals."""
    document: dict[str, Any] = copy.deepcopy(schema)
    document["info"].pop("description")
    document["components"].pop("securitySchemes", None)
    for _, _, operation in _operations(document):
        operation.pop("security", None)
        operation["responses"].pop("401", None)
        parameters = [p for p in operation["parameters"] if p["name"] != "X-User-ID"]
        operation["parameters"] = parameters
    return document


def test_the_contract_is_what_a_server_of_either_mode_serves(schema: dict[str, Any]) -> None:
    expected = _without_callers(schema)
    assert _without_callers(_app_schema("header")) == expected
    assert _without_callers(_app_schema("jwt")) == expected
