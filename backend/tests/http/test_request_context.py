import asyncio
import re
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI

from todo.http.logs import current_request_id

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def failing_app(app: FastAPI) -> FastAPI:
    async def fail() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/test/fail", fail)
    return app


async def test_an_id_is_generated_and_returned(client: httpx.AsyncClient) -> None:
    first = await client.get("/health")
    second = await client.get("/health")

    assert GENERATED_ID.fullmatch(first.headers["X-Request-ID"])
    assert GENERATED_ID.fullmatch(second.headers["X-Request-ID"])
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


@pytest.mark.parametrize(
    "request_id",
    ["abc", "a" * 128, "0", "req-1.2:3_x", "123e4567-e89b-12d3-a456-426614174000"],
)
async def test_a_sane_incoming_id_is_kept(client: httpx.AsyncClient, request_id: str) -> None:
    response = await client.get("/health", headers={"X-Request-ID": request_id})

    assert response.headers["X-Request-ID"] == request_id


@pytest.mark.parametrize(
    "request_id",
    [b"", b"a" * 129, b"two words", b'quote"', b"semi;colon", b"\xc3\xa9", b"a/b", b"{x}"],
)
async def test_an_insane_incoming_id_is_replaced(
    client: httpx.AsyncClient, request_id: bytes
) -> None:
    response = await client.get("/health", headers=[(b"X-Request-ID", request_id)])

    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])


async def _problem(client: httpx.AsyncClient, status: int, headers: dict[str, str]) -> Any:
    user = {"X-User-ID": str(uuid4())}
    match status:
        case 400:
            return await client.get("/api/tasks", headers=headers)
        case 404:
            return await client.get(f"/api/tasks/{uuid4()}", headers={**headers, **user})
        case 405:
            return await client.put("/api/tasks", headers={**headers, **user})
        case 413:
            body = b"x" * (1024 * 1024 + 1)
            return await client.post("/api/tasks", content=body, headers={**headers, **user})
        case 415:
            type_ = {"Content-Type": "text/plain"}
            return await client.post(
                "/api/tasks", content=b"title", headers={**headers, **user, **type_}
            )
        case 422:
            return await client.post("/api/tasks", json={"title": ""}, headers={**headers, **user})
        case 500:
            return await client.get("/test/fail", headers=headers)
    raise AssertionError(status)


@pytest.mark.parametrize("status", [400, 404, 405, 413, 415, 422, 500])
@pytest.mark.usefixtures("failing_app")
async def test_every_problem_names_the_request(client: httpx.AsyncClient, status: int) -> None:
    given = await _problem(client, status, {"X-Request-ID": f"trace-{status}"})
    generated = await _problem(client, status, {})

    assert given.status_code == generated.status_code == status
    assert given.headers["Content-Type"] == "application/problem+json"
    assert given.headers["X-Request-ID"] == f"trace-{status}"
    assert given.json()["request_id"] == f"trace-{status}"
    assert GENERATED_ID.fullmatch(generated.headers["X-Request-ID"])
    assert generated.json()["request_id"] == generated.headers["X-Request-ID"]


async def test_the_id_reaches_the_handler_and_is_reset_after(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async def echo() -> dict[str, str | None]:
        return {"request_id": current_request_id.get()}

    app.add_api_route("/test/echo", echo)

    response = await client.get("/test/echo", headers={"X-Request-ID": "seen-inside"})

    assert response.json() == {"request_id": "seen-inside"}
    assert current_request_id.get() is None


async def test_concurrent_requests_keep_their_own_ids(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    count = 10
    # Every request waits here until all have started, so they interleave.
    barrier = asyncio.Barrier(count)

    async def echo_after_all_arrived() -> dict[str, str | None]:
        await barrier.wait()
        return {"request_id": current_request_id.get()}

    app.add_api_route("/test/together", echo_after_all_arrived)

    responses = await asyncio.gather(
        *(client.get("/test/together", headers={"X-Request-ID": f"r{n}"}) for n in range(count))
    )

    assert [r.json()["request_id"] for r in responses] == [f"r{n}" for n in range(count)]
    assert [r.headers["X-Request-ID"] for r in responses] == [f"r{n}" for n in range(count)]


async def test_browsers_may_send_and_read_the_id(client: httpx.AsyncClient) -> None:
    origin = {"Origin": "http://localhost:3000"}
    preflight = await client.options(
        "/api/tasks",
        headers={
            **origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "X-User-ID, X-Request-ID",
        },
    )
    response = await client.get("/health", headers=origin)

    assert preflight.status_code == 200
    assert "x-request-id" in preflight.headers["Access-Control-Allow-Headers"].lower()
    assert GENERATED_ID.fullmatch(preflight.headers["X-Request-ID"])
    assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]
