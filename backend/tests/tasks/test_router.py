"""The task endpoints' happy paths and what each returns."""

from datetime import datetime
from uuid import UUID

import httpx

from tests.helpers import assert_problem, create_task, parse_timestamp

FIELDS = {
    "id",
    "user_id",
    "title",
    "description",
    "status",
    "created_at",
    "updated_at",
    "position",
}


async def test_create_returns_the_task_and_its_location(
    client: httpx.AsyncClient, headers: dict[str, str], user_id: str
) -> None:
    response = await client.post(
        "/api/tasks", json={"title": "Buy milk", "description": "2 litres"}, headers=headers
    )
    assert response.status_code == 201
    task = response.json()
    assert set(task) == FIELDS
    assert response.headers["location"] == f"/api/tasks/{task['id']}"
    assert UUID(task["id"]).version == 4
    assert task["user_id"] == user_id
    assert task["title"] == "Buy milk"
    assert task["description"] == "2 litres"
    assert task["status"] == "pending"
    assert parse_timestamp(task["created_at"]) == parse_timestamp(task["updated_at"])


async def test_created_task_can_be_read_back_exactly(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    task = await create_task(client, headers, title="Read me", status="completed")
    response = await client.get(f"/api/tasks/{task['id']}", headers=headers)
    assert response.status_code == 200
    assert response.json() == task


async def test_timestamps_are_utc_and_recent(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    before = datetime.now().astimezone()
    task = await create_task(client, headers)
    after = datetime.now().astimezone()
    assert before <= parse_timestamp(task["created_at"]) <= after


async def test_list_is_newest_first(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    ids = [(await create_task(client, headers, title=f"t{i}"))["id"] for i in range(5)]
    response = await client.get("/api/tasks", headers=headers)
    assert response.status_code == 200
    assert [task["id"] for task in response.json()] == ids[::-1]
    assert "link" not in response.headers


async def test_list_of_a_new_user_is_empty(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get("/api/tasks", headers=headers)
    assert response.status_code == 200
    assert response.json() == []


async def test_list_filters_by_status(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    pending = await create_task(client, headers, title="p")
    done = await create_task(client, headers, title="c", status="completed")
    for status, expected in (("pending", pending), ("completed", done)):
        response = await client.get("/api/tasks", params={"status": status}, headers=headers)
        assert [task["id"] for task in response.json()] == [expected["id"]]


async def test_put_changes_only_the_given_fields(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    task = await create_task(client, headers, title="Old", description="keep me")
    response = await client.put(
        f"/api/tasks/{task['id']}", json={"title": "  New  "}, headers=headers
    )
    assert response.status_code == 200
    updated = response.json()
    assert updated["title"] == "New"
    assert updated["description"] == "keep me"
    assert updated["status"] == "pending"
    assert updated["created_at"] == task["created_at"]
    assert parse_timestamp(updated["updated_at"]) > parse_timestamp(task["updated_at"])


async def test_put_can_change_every_field_at_once(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    task = await create_task(client, headers, title="Old", description="d")
    changes = {"title": "New", "description": "e", "status": "completed"}
    response = await client.put(f"/api/tasks/{task['id']}", json=changes, headers=headers)
    assert response.status_code == 200
    assert {key: response.json()[key] for key in changes} == changes


async def test_put_null_description_clears_it(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    task = await create_task(client, headers, description="to be cleared")
    response = await client.put(
        f"/api/tasks/{task['id']}", json={"description": None}, headers=headers
    )
    assert response.status_code == 200
    assert response.json()["description"] is None
    again = await client.get(f"/api/tasks/{task['id']}", headers=headers)
    assert again.json()["description"] is None


async def test_toggle_flips_status_both_ways(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    task = await create_task(client, headers)
    first = await client.patch(f"/api/tasks/{task['id']}/complete", headers=headers)
    assert first.status_code == 200
    assert first.json()["status"] == "completed"
    second = await client.patch(f"/api/tasks/{task['id']}/complete", headers=headers)
    assert second.json()["status"] == "pending"
    assert (
        parse_timestamp(task["updated_at"])
        < parse_timestamp(first.json()["updated_at"])
        < parse_timestamp(second.json()["updated_at"])
    )
    assert second.json()["created_at"] == task["created_at"]


async def test_delete_removes_the_task(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    task = await create_task(client, headers)
    response = await client.delete(f"/api/tasks/{task['id']}", headers=headers)
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await client.get(f"/api/tasks/{task['id']}", headers=headers), 404)
    assert_problem(await client.delete(f"/api/tasks/{task['id']}", headers=headers), 404)


async def test_unknown_task_is_a_404_for_every_operation(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    path = "/api/tasks/6f1c3c1e-0000-4000-8000-000000000000"
    for response in (
        await client.get(path, headers=headers),
        await client.put(path, json={"title": "x"}, headers=headers),
        await client.patch(path + "/complete", headers=headers),
        await client.delete(path, headers=headers),
    ):
        body = assert_problem(response, 404)
        assert body["type"] == "urn:todo:problem:task-not-found"


async def test_malformed_task_id_is_a_422(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    body = assert_problem(await client.get("/api/tasks/not-a-uuid", headers=headers), 422)
    assert body["errors"][0]["loc"] == ["path", "task_id"]
