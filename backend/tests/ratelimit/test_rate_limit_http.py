"""The per-user rate limit as clients see it."""

from uuid import uuid4

import httpx
from fastapi import FastAPI

from tests.apps import client_with
from todo.db import Database

Headers = dict[str, str]
# Slow enough that no token comes back while a test runs.
SLOW = "1/m burst 3"


async def test_over_the_limit_is_429_with_retry_after_and_ratelimit_headers(
    app: FastAPI, database: Database, database_url: str, headers: Headers
) -> None:
    async with client_with(database, database_url, rate_limit=SLOW) as client:
        allowed = [await client.get("/api/tasks", headers=headers) for _ in range(3)]
        refused = await client.post("/api/tasks", json={"title": "a"}, headers=headers)

    assert [response.status_code for response in allowed] == [200, 200, 200]
    assert [response.headers["RateLimit"] for response in allowed] == [
        '"default";r=2;t=60',
        '"default";r=1;t=120',
        '"default";r=0;t=180',
    ]
    assert {response.headers["RateLimit-Policy"] for response in allowed} == {'"default";q=3;w=180'}

    assert refused.status_code == 429
    assert refused.headers["Content-Type"] == "application/problem+json"
    problem = refused.json()
    assert problem["status"] == 429
    assert problem["type"] == "urn:todo:problem:rate-limited"
    assert problem["instance"] == "/api/tasks"
    assert 55 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Policy"] == '"default";q=3;w=180'
    assert refused.headers["RateLimit"].startswith('"default";r=0;t=')


async def test_a_refused_request_writes_nothing(
    app: FastAPI, database: Database, database_url: str, headers: Headers
) -> None:
    async with client_with(database, database_url, rate_limit="1/m burst 1") as client:
        first = await client.post("/api/tasks", json={"title": "a"}, headers=headers)
        second = await client.post("/api/tasks", json={"title": "b"}, headers=headers)
    assert (first.status_code, second.status_code) == (201, 429)

    async with client_with(database, database_url) as unlimited:
        tasks = (await unlimited.get("/api/tasks", headers=headers)).json()
    assert [task["title"] for task in tasks] == ["a"]


async def test_each_user_has_their_own_limit(
    app: FastAPI, database: Database, database_url: str, headers: Headers
) -> None:
    other = {"X-User-ID": str(uuid4())}
    async with client_with(database, database_url, rate_limit="1/m burst 1") as client:
        assert (await client.get("/api/tasks", headers=headers)).status_code == 200
        assert (await client.get("/api/tasks", headers=headers)).status_code == 429
        assert (await client.get("/api/tasks", headers=other)).status_code == 200
        # The same user in capitals is the same user.
        upper = {"X-User-ID": headers["X-User-ID"].upper()}
        assert (await client.get("/api/tasks", headers=upper)).status_code == 429


async def test_requests_naming_no_valid_user_and_health_checks_are_not_limited(
    app: FastAPI, database: Database, database_url: str
) -> None:
    async with client_with(database, database_url, rate_limit="1/m burst 1") as client:
        for _ in range(3):
            response = await client.get("/api/tasks", headers={"X-User-ID": "nobody"})
            assert response.status_code == 400
            assert "RateLimit" not in response.headers
            assert (await client.get("/health")).status_code == 200


async def test_without_rate_limit_there_are_no_rate_limit_headers(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    for _ in range(5):
        response = await client.get("/api/tasks", headers=headers)
        assert response.status_code == 200
        assert "RateLimit" not in response.headers
        assert "RateLimit-Policy" not in response.headers


async def test_redis_shares_the_limit_between_app_instances(
    app: FastAPI, database: Database, database_url: str, redis_url: str, redis_prefix: str
) -> None:
    headers = {"X-User-ID": str(uuid4())}
    settings = {"rate_limit": SLOW, "redis_url": redis_url, "redis_key_prefix": redis_prefix}
    async with (
        client_with(database, database_url, **settings) as one,
        client_with(database, database_url, **settings) as two,
    ):
        statuses = [
            (await one.get("/api/tasks", headers=headers)).status_code,
            (await two.get("/api/tasks", headers=headers)).status_code,
            (await one.get("/api/tasks", headers=headers)).status_code,
            (await two.get("/api/tasks", headers=headers)).status_code,
            (await one.get("/api/tasks", headers=headers)).status_code,
        ]
    assert statuses == [200, 200, 200, 429, 429]


async def test_unreachable_redis_serves_without_a_limit(
    app: FastAPI, database: Database, database_url: str, headers: Headers
) -> None:
    settings = {"rate_limit": "1/m burst 1", "redis_url": "redis://127.0.0.1:1/0"}
    async with client_with(database, database_url, **settings) as client:
        responses = [await client.get("/api/tasks", headers=headers) for _ in range(3)]
    assert [response.status_code for response in responses] == [200, 200, 200]
    assert "RateLimit" not in responses[0].headers


async def test_cors_lets_browsers_send_and_read_the_new_headers(
    app: FastAPI, database: Database, database_url: str, headers: Headers
) -> None:
    origin = {"Origin": "http://localhost:3000"}
    async with client_with(database, database_url, rate_limit="1/m burst 1") as client:
        preflight = await client.options(
            "/api/tasks/x/complete",
            headers={
                **origin,
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "x-user-id, if-match, idempotency-key",
            },
        )
        assert preflight.status_code == 200
        allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
        for name in ("if-match", "if-none-match", "idempotency-key"):
            assert name in allowed

        refused = [await client.get("/api/tasks", headers={**headers, **origin}) for _ in range(2)]
    assert refused[1].status_code == 429
    assert refused[1].headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    exposed = {
        name.strip().lower()
        for name in refused[1].headers["Access-Control-Expose-Headers"].split(",")
    }
    assert exposed >= {
        "etag",
        "location",
        "retry-after",
        "ratelimit",
        "ratelimit-policy",
        "idempotent-replayed",
    }
