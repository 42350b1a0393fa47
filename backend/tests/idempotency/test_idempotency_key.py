"""Idempotency-Key on POST /api/tasks and PATCH /api/tasks/{id}/complete."""

import asyncio
import random
import re
from datetime import timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import func, select, update

from todo.db import Database
from todo.db.types import utcnow
from todo.idempotency.http import KEY_PATTERN, InvalidIdempotencyKeyError, parse_idempotency_key
from todo.idempotency.models import IdempotencyRecord

Headers = dict[str, str]


async def _tasks(client: httpx.AsyncClient, headers: Headers) -> list[dict[str, Any]]:
    response = await client.get("/api/tasks", headers=headers)
    assert response.status_code == 200
    tasks: list[dict[str, Any]] = response.json()
    return tasks


async def _expire_keys(database: Database) -> None:
    async with database.engine.begin() as connection:
        await connection.execute(
            update(IdempotencyRecord).values(expires_at=utcnow() - timedelta(seconds=1))
        )


async def _stored_keys(database: Database) -> int:
    async with database.engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(IdempotencyRecord))
    return int(count or 0)


async def test_a_retried_create_gets_the_first_response_and_creates_nothing(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    keyed = {**headers, "Idempotency-Key": "create-milk-1"}
    first = await client.post("/api/tasks", json={"title": "Buy milk"}, headers=keyed)
    retry = await client.post("/api/tasks", json={"title": "Buy milk"}, headers=keyed)

    assert first.status_code == retry.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.content == first.content
    for name in ("Location", "ETag", "Content-Type"):
        assert retry.headers[name] == first.headers[name]
    assert first.headers["Location"] == f"/api/tasks/{first.json()['id']}"
    assert first.headers["ETag"] == '"1"'
    assert first.headers["Content-Type"] == "application/json"
    assert [task["id"] for task in await _tasks(client, headers)] == [first.json()["id"]]


async def test_a_replay_is_the_first_response_even_after_the_task_changed(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    keyed = {**headers, "Idempotency-Key": "k"}
    first = await client.post("/api/tasks", json={"title": "Buy milk"}, headers=keyed)
    await client.patch(f"/api/tasks/{first.json()['id']}/complete", headers=headers)

    retry = await client.post("/api/tasks", json={"title": "Buy milk"}, headers=keyed)

    assert retry.json()["status"] == "pending"
    assert retry.headers["ETag"] == '"1"'


async def test_the_same_request_in_other_words_is_the_same_request(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    keyed = {**headers, "Idempotency-Key": "same"}
    first = await client.post("/api/tasks", json={"title": "a", "description": "b"}, headers=keyed)
    retry = await client.post(
        "/api/tasks",
        json={"status": "pending", "description": "b", "title": " a "},
        headers=keyed,
    )
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["id"] == first.json()["id"]


async def test_a_retried_toggle_toggles_once(client: httpx.AsyncClient, headers: Headers) -> None:
    task_id = (await client.post("/api/tasks", json={"title": "a"}, headers=headers)).json()["id"]
    keyed = {**headers, "Idempotency-Key": "toggle-1"}

    first = await client.patch(f"/api/tasks/{task_id}/complete", headers=keyed)
    retry = await client.patch(f"/api/tasks/{task_id}/complete", headers=keyed)

    assert first.status_code == retry.status_code == 200
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.content == first.content
    assert retry.headers["ETag"] == first.headers["ETag"] == '"2"'
    current = await client.get(f"/api/tasks/{task_id}", headers=headers)
    assert current.json()["status"] == "completed"
    assert current.headers["ETag"] == '"2"'

    # A new key is a new toggle.
    again = await client.patch(
        f"/api/tasks/{task_id}/complete", headers={**headers, "Idempotency-Key": "toggle-2"}
    )
    assert again.json()["status"] == "pending"


async def test_concurrent_retries_of_a_create_make_one_task(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    keyed = {**headers, "Idempotency-Key": "double-click"}
    retries = 8

    responses = await asyncio.gather(
        *(
            client.post("/api/tasks", json={"title": "Buy milk"}, headers=keyed)
            for _ in range(retries)
        )
    )

    assert [response.status_code for response in responses] == [201] * retries
    assert len({response.content for response in responses}) == 1
    replayed = [response.headers.get("Idempotent-Replayed") for response in responses]
    assert replayed.count("true") == retries - 1
    assert len(await _tasks(client, headers)) == 1


async def test_concurrent_retries_of_a_toggle_toggle_once(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    task_id = (await client.post("/api/tasks", json={"title": "a"}, headers=headers)).json()["id"]
    keyed = {**headers, "Idempotency-Key": "tap-tap-tap"}
    retries = 8

    responses = await asyncio.gather(
        *(client.patch(f"/api/tasks/{task_id}/complete", headers=keyed) for _ in range(retries))
    )

    assert [response.status_code for response in responses] == [200] * retries
    assert {response.json()["status"] for response in responses} == {"completed"}
    replayed = [response.headers.get("Idempotent-Replayed") for response in responses]
    assert replayed.count("true") == retries - 1
    current = await client.get(f"/api/tasks/{task_id}", headers=headers)
    assert current.headers["ETag"] == '"2"'


async def test_the_same_key_with_another_body_is_422(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    keyed = {**headers, "Idempotency-Key": "reused"}
    await client.post("/api/tasks", json={"title": "Buy milk"}, headers=keyed)

    response = await client.post("/api/tasks", json={"title": "Buy bread"}, headers=keyed)

    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == "urn:todo:problem:idempotency-key-reused"
    assert len(await _tasks(client, headers)) == 1


async def test_the_same_key_on_another_route_is_422(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    keyed = {**headers, "Idempotency-Key": "reused"}
    created = await client.post("/api/tasks", json={"title": "a"}, headers=keyed)

    toggle = await client.patch(f"/api/tasks/{created.json()['id']}/complete", headers=keyed)

    assert toggle.status_code == 422
    assert toggle.json()["type"] == "urn:todo:problem:idempotency-key-reused"
    current = await client.get(f"/api/tasks/{created.json()['id']}", headers=headers)
    assert current.json()["status"] == "pending"


async def test_keys_belong_to_their_user(client: httpx.AsyncClient, headers: Headers) -> None:
    other = {"X-User-ID": str(uuid4())}
    mine = await client.post(
        "/api/tasks", json={"title": "a"}, headers={**headers, "Idempotency-Key": "k"}
    )
    theirs = await client.post(
        "/api/tasks", json={"title": "a"}, headers={**other, "Idempotency-Key": "k"}
    )
    assert theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]
    assert theirs.json()["user_id"] == other["X-User-ID"]


async def test_a_failed_request_stores_nothing_and_frees_its_key(
    database: Database, client: httpx.AsyncClient, headers: Headers
) -> None:
    keyed = {**headers, "Idempotency-Key": "k"}
    missing = await client.patch(f"/api/tasks/{uuid4()}/complete", headers=keyed)
    assert missing.status_code == 404
    assert await _stored_keys(database) == 0

    created = await client.post("/api/tasks", json={"title": "a"}, headers=keyed)
    assert created.status_code == 201
    assert "Idempotent-Replayed" not in created.headers


async def test_a_stale_if_match_is_not_stored_so_the_key_can_be_retried(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    task_id = (await client.post("/api/tasks", json={"title": "a"}, headers=headers)).json()["id"]
    keyed = {**headers, "Idempotency-Key": "k"}

    stale = await client.patch(
        f"/api/tasks/{task_id}/complete", headers={**keyed, "If-Match": '"7"'}
    )
    fresh = await client.patch(
        f"/api/tasks/{task_id}/complete", headers={**keyed, "If-Match": '"1"'}
    )

    assert stale.status_code == 412
    assert fresh.status_code == 200
    assert "Idempotent-Replayed" not in fresh.headers
    assert fresh.json()["status"] == "completed"


async def test_an_expired_key_is_a_new_key(
    database: Database, client: httpx.AsyncClient, headers: Headers
) -> None:
    keyed = {**headers, "Idempotency-Key": "k"}
    first = await client.post("/api/tasks", json={"title": "Buy milk"}, headers=keyed)
    await _expire_keys(database)

    second = await client.post("/api/tasks", json={"title": "Buy bread"}, headers=keyed)

    assert second.status_code == 201
    assert "Idempotent-Replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    # ... and it is stored afresh.
    third = await client.post("/api/tasks", json={"title": "Buy bread"}, headers=keyed)
    assert third.headers["Idempotent-Replayed"] == "true"
    assert len(await _tasks(client, headers)) == 2


@pytest.mark.parametrize(
    "key",
    ["", " ", "x" * 256, "caf\u00e9", "tab\there", '"unterminated', '"bad \\n escape"', '""'],
)
async def test_a_malformed_key_is_400(
    client: httpx.AsyncClient, headers: Headers, key: str
) -> None:
    response = await client.post(
        "/api/tasks",
        json={"title": "a"},
        headers=[
            *((name.encode(), value.encode()) for name, value in headers.items()),
            (b"Idempotency-Key", key.encode()),
        ],
    )
    assert response.status_code == 400
    assert response.json()["type"] == "urn:todo:problem:invalid-idempotency-key"
    assert await _tasks(client, headers) == []


@pytest.mark.parametrize("key", ["x", "x" * 255, "a b~!{}", '"8e03978e-40d5"', '"q\\"uote"'])
async def test_a_well_formed_key_is_accepted(
    client: httpx.AsyncClient, headers: Headers, key: str
) -> None:
    response = await client.post(
        "/api/tasks", json={"title": "a"}, headers={**headers, "Idempotency-Key": key}
    )
    assert response.status_code == 201


async def test_the_quoted_and_bare_forms_name_the_same_key(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    bare = await client.post(
        "/api/tasks", json={"title": "a"}, headers={**headers, "Idempotency-Key": "abc"}
    )
    quoted = await client.post(
        "/api/tasks", json={"title": "a"}, headers={**headers, "Idempotency-Key": '"abc"'}
    )
    assert quoted.headers["Idempotent-Replayed"] == "true"
    assert quoted.json()["id"] == bare.json()["id"]


async def test_the_caller_is_checked_before_the_key(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/tasks", json={"title": "a"}, headers={"Idempotency-Key": ""})
    assert response.json()["type"] == "urn:todo:problem:invalid-user-id"


def test_the_published_key_pattern_accepts_exactly_what_the_parser_does() -> None:
    # `make fuzz` draws keys from the pattern and expects each to be accepted.
    def parsed(value: str) -> bool:
        try:
            parse_idempotency_key(value)
        except InvalidIdempotencyKeyError:
            return False
        return True

    rng = random.Random(7)
    values = ["a", "a b", '"a"', '"a\\"b"', '"', '""', 'a"', '"a', "é", '"\\\\"', '"a\\x"']
    values += ["x" * 255, "x" * 256, '"' + "x" * 255 + '"', '"' + "x" * 256 + '"']
    values += [
        "".join(rng.choice(' !"#\\ab~\t') for _ in range(rng.randint(1, 8))) for _ in range(5000)
    ]
    # A header value arrives without surrounding white space.
    values = [value for value in values if value == value.strip(" \t") and value]
    disagreements = [v for v in values if (re.fullmatch(KEY_PATTERN, v) is not None) != parsed(v)]
    assert disagreements == []
