"""Real responses hold what the committed contract requires of them.

Each answer's status is documented for its operation, it carries every header the
contract marks required, and a problem (or a task) has every required member, only
documented ones, and no null where the contract allows none.
"""

from typing import Any
from uuid import uuid4

import httpx
import pytest

from tests.apps import client_with
from todo.config import Settings
from todo.db import Database
from todo.main import create_app, openapi_contract

NO_SUCH_TASK = "6f1c3c1e-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return openapi_contract()


def _resolved(schema: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    reference = item.get("$ref")
    if reference is None:
        return item
    *_, kind, name = reference.split("/")
    resolved: dict[str, Any] = schema["components"][kind][name]
    return resolved


def _assert_members(schema: dict[str, Any], model: str, body: dict[str, Any]) -> None:
    documented = schema["components"]["schemas"][model]
    assert set(documented["required"]) <= set(body), (model, body)
    assert set(body) <= set(documented["properties"]), (model, body)


def assert_conforms(
    schema: dict[str, Any], method: str, path: str, response: httpx.Response
) -> None:
    """`response` is one the contract documents for the operation at `method` and `path`."""
    responses = schema["paths"][path][method]["responses"]
    status = str(response.status_code)
    assert status in responses, f"{method} {path} answered an undocumented {status}"
    documented = responses[status]
    for name, header in documented.get("headers", {}).items():
        if _resolved(schema, header).get("required"):
            assert name in response.headers, f"{method} {path} {status} lacks {name}"
    if "application/problem+json" in documented.get("content", {}):
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        _assert_members(schema, "Problem", problem)
        assert None not in problem.values(), problem
        for error in problem.get("errors", []):
            _assert_members(schema, "FieldProblem", error)
            assert None not in error.values(), error
    elif documented.get("content", {}).get("application/json", {}).get("schema") == {
        "$ref": "#/components/schemas/TaskRead"
    }:
        _assert_members(schema, "TaskRead", response.json())


async def test_every_task_operation_answers_what_the_contract_requires(
    client: httpx.AsyncClient, headers: dict[str, str], schema: dict[str, Any]
) -> None:
    one = "/api/tasks/{task_id}"

    async def check(method: str, path: str, url: str, **kwargs: Any) -> httpx.Response:
        kwargs["headers"] = {**headers, **kwargs.get("headers", {})}
        response = await client.request(method.upper(), url, **kwargs)
        assert_conforms(schema, method, path, response)
        return response

    created = await check("post", "/api/tasks", "/api/tasks", json={"title": "Buy milk"})
    assert created.status_code == 201
    url = created.headers["location"]
    etag = created.headers["etag"]
    assert (await check("get", one, url)).status_code == 200
    assert (await check("get", one, url, headers={"If-None-Match": etag})).status_code == 304
    assert (await check("put", one, url, json={"title": "Oat milk"})).status_code == 200
    stale = await check("put", one, url, json={"title": "Soy"}, headers={"If-Match": '"99"'})
    assert stale.status_code == 412
    assert (await check("patch", f"{one}/complete", f"{url}/complete")).status_code == 200
    moved = await check("post", f"{one}/move", f"{url}/move", json={"after": None})
    assert moved.status_code == 200
    assert (await check("get", "/api/tasks", "/api/tasks")).status_code == 200
    assert (await check("get", "/api/tasks/summary", "/api/tasks/summary")).status_code == 200
    assert (await check("delete", one, url)).status_code == 204
    assert (await check("get", one, url)).status_code == 404

    key = {"Idempotency-Key": str(uuid4())}
    for _ in range(2):
        keyed = await check("post", "/api/tasks", "/api/tasks", json={"title": "T"}, headers=key)
    assert keyed.headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize(
    ("method", "path", "url", "request_options", "problem_type", "pointer"),
    [
        ("get", "/api/tasks", "/api/tasks", {"user": False}, "invalid-user-id", None),
        (
            "post",
            "/api/tasks",
            "/api/tasks",
            {"content": b"{", "headers": {"Content-Type": "application/json"}},
            "malformed-body",
            None,
        ),
        (
            "post",
            "/api/tasks",
            "/api/tasks",
            {"json": {"title": "T"}, "headers": {"Idempotency-Key": ""}},
            "invalid-idempotency-key",
            None,
        ),
        ("get", "/api/tasks/changes", "/api/tasks/changes?since=x", {}, "invalid-cursor", None),
        ("get", "/api/tasks", "/api/tasks?limit=0", {}, "validation", False),
        ("get", "/api/tasks/{task_id}", "/api/tasks/42", {}, "validation", False),
        ("post", "/api/tasks", "/api/tasks", {"json": {"title": ""}}, "validation", True),
        (
            "get",
            "/api/tasks/{task_id}",
            f"/api/tasks/{NO_SUCH_TASK}",
            {},
            "task-not-found",
            None,
        ),
        (
            "post",
            "/api/tasks",
            "/api/tasks",
            {"content": b"title", "headers": {"Content-Type": "text/plain"}},
            "about:blank",
            None,
        ),
        (
            "post",
            "/api/tasks",
            "/api/tasks",
            {
                "content": b'{"title": "' + b"x" * (1024 * 1024) + b'"}',
                "headers": {"Content-Type": "application/json"},
            },
            "about:blank",
            None,
        ),
    ],
    ids=[
        "invalid-user-id",
        "malformed-body",
        "invalid-idempotency-key",
        "invalid-cursor",
        "validation-of-a-query-limit",
        "validation-of-a-path-parameter",
        "validation-of-a-body-field",
        "task-not-found",
        "unsupported-media-type",
        "body-too-large",
    ],
)
async def test_every_problem_has_the_members_the_contract_requires(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    schema: dict[str, Any],
    method: str,
    path: str,
    url: str,
    request_options: dict[str, Any],
    problem_type: str,
    pointer: bool | None,
) -> None:
    options = dict(request_options)
    caller = headers if options.pop("user", True) else {}
    options["headers"] = {**caller, **options.get("headers", {})}

    response = await client.request(method.upper(), url, **options)

    assert_conforms(schema, method, path, response)
    problem = response.json()
    assert problem["type"].endswith(problem_type)
    assert problem["instance"] == url.partition("?")[0]
    assert ("errors" in problem) is (pointer is not None)
    if pointer is not None:
        [error] = problem["errors"]
        # A body field's JSON Pointer; none at all (not null) for a query or path field.
        assert ("pointer" in error) is pointer


async def test_a_refused_write_and_a_refused_caller_answer_as_documented(
    database: Database, database_url: str, headers: dict[str, str], schema: dict[str, Any]
) -> None:
    async with client_with(database, database_url, require_if_match=True) as client:
        created = await client.post("/api/tasks", json={"title": "T"}, headers=headers)
        url = created.headers["location"]
        response = await client.delete(url, headers=headers)
        assert response.status_code == 428
        assert_conforms(schema, "delete", "/api/tasks/{task_id}", response)

    async with client_with(database, database_url, rate_limit="1/m burst 1") as client:
        await client.get("/api/tasks", headers=headers)
        response = await client.get("/api/tasks", headers=headers)
        assert response.status_code == 429
        assert_conforms(schema, "get", "/api/tasks", response)

    async with client_with(
        database, database_url, auth_mode="jwt", auth_jwt_secret="s" * 32
    ) as client:
        # JWT mode ignores X-User-ID: without a token, the caller is refused.
        response = await client.get("/api/tasks", headers=headers)
        assert response.status_code == 401
        assert_conforms(schema, "get", "/api/tasks", response)


@pytest.mark.parametrize(
    ("method", "path", "request_options"),
    [
        ("get", "/health/ready", {}),
        ("get", "/api/tasks", {}),
        ("post", "/api/tasks", {"json": {"title": "T"}}),
    ],
)
async def test_a_database_outage_answers_as_documented(
    schema: dict[str, Any], method: str, path: str, request_options: dict[str, Any]
) -> None:
    # Nothing listens on port 9 of the loopback interface.
    settings = Settings(
        database_url="postgresql://nobody@127.0.0.1:9/none", database_connect_timeout=1
    )
    database = Database(settings.database_url, settings)
    transport = httpx.ASGITransport(app=create_app(settings, database=database))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.request(
                method.upper(), path, headers={"X-User-ID": str(uuid4())}, **request_options
            )
    finally:
        await database.dispose()

    assert response.status_code == 503
    assert response.json()["type"] == "urn:todo:problem:database-unavailable"
    assert_conforms(schema, method, path, response)
    # Declared on a write's 503 too, though not required there (write-outcome-unknown has none).
    assert response.headers["retry-after"] == "2"
