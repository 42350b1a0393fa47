"""Every error class, from every layer, is an RFC 9457 problem."""

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.helpers import assert_problem


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/nowhere"), 404)
    assert body["instance"] == "/nowhere"


async def test_trailing_slash_is_a_404_problem_not_a_redirect(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    assert_problem(await client.get("/api/tasks/", headers=headers), 404)


async def test_wrong_method_is_a_405_problem_with_every_allowed_method(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.put("/api/tasks", headers=headers)
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET, POST, PATCH, DELETE"


async def test_405_on_a_task_names_its_methods(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.post("/api/tasks/6f1c3c1e-0000-4000-8000-000000000000", headers=headers)
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET, PUT, DELETE"


async def test_body_over_one_mebibyte_is_a_413_problem(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    body = b'{"title": "' + b"x" * (1024 * 1024) + b'"}'
    response = await client.post(
        "/api/tasks", content=body, headers={**headers, "Content-Type": "application/json"}
    )
    assert_problem(response, 413)


async def test_chunked_body_over_the_limit_is_a_413_problem(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"title": "'
        for _ in range(11):
            yield b"x" * 100_000
        yield b'"}'

    response = await client.post(
        "/api/tasks", content=chunks(), headers={**headers, "Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413)


async def test_chunked_body_under_the_limit_is_accepted(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"title": '
        yield b'"chunked"}'

    response = await client.post(
        "/api/tasks", content=chunks(), headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "chunked"


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"title": "x",}', b"not json", b'{"title": "x"} trailing'],
)
async def test_malformed_json_is_a_400_problem(
    client: httpx.AsyncClient, headers: dict[str, str], body: bytes
) -> None:
    response = await client.post(
        "/api/tasks", content=body, headers={**headers, "Content-Type": "application/json"}
    )
    assert_problem(response, 400)


async def test_deeply_nested_json_is_a_400_problem(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    response = await client.post(
        "/api/tasks", content=body, headers={**headers, "Content-Type": "application/json"}
    )
    assert_problem(response, 400)


async def test_body_without_a_json_content_type_is_a_415_problem(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.post(
        "/api/tasks", content=b'{"title": "x"}', headers={**headers, "Content-Type": "text/plain"}
    )
    body = assert_problem(response, 415)
    assert "application/json" in body["detail"]


async def test_validation_problem_lists_each_invalid_field(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.post(
        "/api/tasks",
        json={"title": "", "status": "done", "extra": 1},
        headers=headers,
    )
    body = assert_problem(response, 422)
    by_pointer = {error["pointer"]: error for error in body["errors"]}
    assert set(by_pointer) == {"#/title", "#/status", "#/extra"}
    for error in body["errors"]:
        assert error["loc"][0] == "body"
        assert error["detail"]
        assert error["type"]
        assert set(error) == {"loc", "pointer", "detail", "type"}


async def test_validation_problem_does_not_echo_the_input(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    secret = "s3cr3t-" + "y" * 500
    response = await client.post("/api/tasks", json={"title": secret}, headers=headers)
    assert_problem(response, 422)
    assert secret not in response.text


async def test_unexpected_error_is_a_logged_500_problem_with_cors(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode() -> None:
        raise RuntimeError("kaboom in the handler")

    app.add_api_route("/explode", explode)
    with caplog.at_level(logging.ERROR):
        response = await client.get("/explode", headers={"Origin": "http://localhost:3000"})
    body = assert_problem(response, 500)
    assert "kaboom" not in response.text
    assert body["instance"] == "/explode"
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
    [logged] = [record for record in caplog.records if record.exc_info]
    assert (logged.__dict__["method"], logged.__dict__["route"]) == ("GET", "/explode")
    assert logged.__dict__["request_id"] == body["request_id"]
