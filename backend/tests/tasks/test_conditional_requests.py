"""ETags, If-None-Match and If-Match on the task routes (RFC 9110, section 13)."""

import asyncio
from typing import Any
from uuid import uuid4

import httpx
import pytest

from tests.apps import client_with
from todo.db import Database

Headers = dict[str, str]


async def _create(client: httpx.AsyncClient, headers: Headers, title: str = "Buy milk") -> Any:
    response = await client.post("/api/tasks", json={"title": title}, headers=headers)
    assert response.status_code == 201
    return response


async def _get(client: httpx.AsyncClient, headers: Headers, task_id: str) -> httpx.Response:
    return await client.get(f"/api/tasks/{task_id}", headers=headers)


# The three writes If-Match guards, each as (method, path suffix, body).
WRITES = [
    pytest.param("PUT", "", {"title": "Buy oat milk"}, id="put"),
    pytest.param("PATCH", "/complete", None, id="toggle"),
    pytest.param("DELETE", "", None, id="delete"),
]


async def _write(
    client: httpx.AsyncClient,
    method: str,
    task_id: str,
    suffix: str,
    body: Any,
    headers: Headers,
) -> httpx.Response:
    return await client.request(method, f"/api/tasks/{task_id}{suffix}", json=body, headers=headers)


async def test_every_single_task_response_carries_the_etag_of_its_version(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    created = await _create(client, headers)
    task_id = created.json()["id"]
    assert created.headers["ETag"] == '"1"'

    got = await _get(client, headers, task_id)
    assert got.headers["ETag"] == '"1"'

    put = await client.put(f"/api/tasks/{task_id}", json={"title": "x"}, headers=headers)
    assert put.headers["ETag"] == '"2"'

    toggled = await client.patch(f"/api/tasks/{task_id}/complete", headers=headers)
    assert toggled.headers["ETag"] == '"3"'
    assert (await _get(client, headers, task_id)).headers["ETag"] == '"3"'


async def test_the_list_carries_no_etag(client: httpx.AsyncClient, headers: Headers) -> None:
    await _create(client, headers)
    response = await client.get("/api/tasks", headers=headers)
    assert response.status_code == 200
    assert "ETag" not in response.headers


@pytest.mark.parametrize("if_none_match", ['"1"', 'W/"1"', '"7", "1"', "*"])
async def test_get_with_a_matching_if_none_match_is_304_without_a_body(
    client: httpx.AsyncClient, headers: Headers, if_none_match: str
) -> None:
    task_id = (await _create(client, headers)).json()["id"]

    response = await client.get(
        f"/api/tasks/{task_id}", headers={**headers, "If-None-Match": if_none_match}
    )

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["ETag"] == '"1"'


async def test_get_with_a_stale_if_none_match_returns_the_task(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    task_id = (await _create(client, headers)).json()["id"]
    await client.patch(f"/api/tasks/{task_id}/complete", headers=headers)

    response = await client.get(
        f"/api/tasks/{task_id}", headers={**headers, "If-None-Match": '"1"'}
    )

    assert response.status_code == 200
    assert response.json()["status"] == "completed"
    assert response.headers["ETag"] == '"2"'


async def test_if_none_match_star_on_a_missing_task_is_404(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    response = await client.get(f"/api/tasks/{uuid4()}", headers={**headers, "If-None-Match": "*"})
    assert response.status_code == 404


@pytest.mark.parametrize(("method", "suffix", "body"), WRITES)
@pytest.mark.parametrize("if_match", ['"1"', '"5", "1"', "*"])
async def test_a_write_with_a_matching_if_match_succeeds(
    client: httpx.AsyncClient,
    headers: Headers,
    method: str,
    suffix: str,
    body: Any,
    if_match: str,
) -> None:
    task_id = (await _create(client, headers)).json()["id"]

    response = await _write(
        client, method, task_id, suffix, body, {**headers, "If-Match": if_match}
    )

    assert response.status_code in (200, 204)
    if method != "DELETE":
        assert response.headers["ETag"] == '"2"'


@pytest.mark.parametrize(("method", "suffix", "body"), WRITES)
@pytest.mark.parametrize("if_match", ['"1"', 'W/"2"', '"abc"', "garbage"])
async def test_a_write_with_a_stale_if_match_is_412_and_changes_nothing(
    client: httpx.AsyncClient,
    headers: Headers,
    method: str,
    suffix: str,
    body: Any,
    if_match: str,
) -> None:
    task_id = (await _create(client, headers)).json()["id"]
    await client.put(f"/api/tasks/{task_id}", json={"description": "2 litres"}, headers=headers)
    before = (await _get(client, headers, task_id)).json()

    response = await _write(
        client, method, task_id, suffix, body, {**headers, "If-Match": if_match}
    )

    assert response.status_code == 412
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 412
    assert problem["type"] == "urn:todo:problem:stale-version"
    # The current ETag, so the client can fetch and retry knowingly.
    assert response.headers["ETag"] == '"2"'
    after = await _get(client, headers, task_id)
    assert after.status_code == 200
    assert after.json() == before
    assert after.headers["ETag"] == '"2"'


@pytest.mark.parametrize(("method", "suffix", "body"), WRITES)
@pytest.mark.parametrize("if_match", ['"1"', "*"])
async def test_a_conditional_write_to_a_missing_task_is_404(
    client: httpx.AsyncClient,
    headers: Headers,
    method: str,
    suffix: str,
    body: Any,
    if_match: str,
) -> None:
    response = await _write(
        client, method, str(uuid4()), suffix, body, {**headers, "If-Match": if_match}
    )
    assert response.status_code == 404


@pytest.mark.parametrize(("method", "suffix", "body"), WRITES)
async def test_another_users_task_is_404_not_412_even_with_a_stale_if_match(
    client: httpx.AsyncClient, headers: Headers, method: str, suffix: str, body: Any
) -> None:
    task_id = (await _create(client, headers)).json()["id"]
    stranger = {"X-User-ID": str(uuid4()), "If-Match": '"9"'}

    response = await _write(client, method, task_id, suffix, body, stranger)

    assert response.status_code == 404
    assert (await _get(client, headers, task_id)).headers["ETag"] == '"1"'


async def test_if_match_lines_are_read_as_one_list(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    task_id = (await _create(client, headers)).json()["id"]
    response = await client.patch(
        f"/api/tasks/{task_id}/complete",
        headers=[*headers.items(), ("If-Match", '"8"'), ("If-Match", '"1"')],
    )
    assert response.status_code == 200


@pytest.mark.parametrize(("method", "suffix", "body"), WRITES)
async def test_without_if_match_the_last_write_wins(
    client: httpx.AsyncClient, headers: Headers, method: str, suffix: str, body: Any
) -> None:
    task_id = (await _create(client, headers)).json()["id"]
    await client.put(f"/api/tasks/{task_id}", json={"description": "first"}, headers=headers)

    response = await _write(client, method, task_id, suffix, body, headers)

    assert response.status_code in (200, 204)


@pytest.mark.parametrize(
    ("method", "suffix", "body", "winner_status", "loser_status"),
    [
        pytest.param("PUT", "", {"title": "mine"}, 200, 412, id="put"),
        pytest.param("PATCH", "/complete", None, 200, 412, id="toggle"),
        # The losers find no task at all: 404 outranks a failed precondition.
        pytest.param("DELETE", "", None, 204, 404, id="delete"),
    ],
)
async def test_of_concurrent_writers_with_the_same_etag_exactly_one_wins(
    client: httpx.AsyncClient,
    headers: Headers,
    method: str,
    suffix: str,
    body: Any,
    winner_status: int,
    loser_status: int,
) -> None:
    task_id = (await _create(client, headers)).json()["id"]
    writers = 8

    responses = await asyncio.gather(
        *(
            _write(client, method, task_id, suffix, body, {**headers, "If-Match": '"1"'})
            for _ in range(writers)
        )
    )

    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(winner_status) == 1, statuses
    assert statuses.count(loser_status) == writers - 1, statuses
    after = await _get(client, headers, task_id)
    if method == "DELETE":
        assert after.status_code == 404
    else:
        # One write landed: the version moved exactly once.
        assert after.headers["ETag"] == '"2"'


@pytest.mark.parametrize(("method", "suffix", "body"), WRITES)
async def test_required_if_match_refuses_an_unconditional_write_with_428(
    database: Database,
    database_url: str,
    client: httpx.AsyncClient,
    headers: Headers,
    method: str,
    suffix: str,
    body: Any,
) -> None:
    task_id = (await _create(client, headers)).json()["id"]
    async with client_with(database, database_url, require_if_match=True) as strict:
        refused = await _write(strict, method, task_id, suffix, body, headers)
        assert refused.status_code == 428
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert refused.json()["type"] == "urn:todo:problem:if-match-required"
        assert (await _get(strict, headers, task_id)).headers["ETag"] == '"1"'

        accepted = await _write(
            strict, method, task_id, suffix, body, {**headers, "If-Match": '"1"'}
        )
        assert accepted.status_code in (200, 204)


async def test_required_if_match_still_checks_the_caller_first(
    database: Database, database_url: str
) -> None:
    async with client_with(database, database_url, require_if_match=True) as strict:
        response = await strict.delete(f"/api/tasks/{uuid4()}")
    assert response.status_code == 400
    assert response.json()["type"] == "urn:todo:problem:invalid-user-id"
