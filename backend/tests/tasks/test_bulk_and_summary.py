"""Bulk actions (toggle all, clear completed) and the summary's counts."""

import asyncio
from collections.abc import Sequence
from typing import Any
from uuid import uuid4

import httpx
from sqlalchemy import text

from todo.db import Database

Headers = dict[str, str]


async def _create(client: httpx.AsyncClient, headers: Headers, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/tasks", json={"title": "t", **fields}, headers=headers)
    assert response.status_code == 201
    task: dict[str, Any] = response.json()
    return task


async def _all(client: httpx.AsyncClient, headers: Headers) -> dict[str, dict[str, Any]]:
    response = await client.get("/api/tasks", params={"limit": 1000}, headers=headers)
    return {task["id"]: task for task in response.json()}


async def test_setting_every_status_changes_only_the_tasks_that_differ(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    done = await _create(client, headers, status="completed")
    pending = [await _create(client, headers) for _ in range(3)]

    response = await client.patch("/api/tasks", json={"status": "completed"}, headers=headers)

    assert response.status_code == 200
    assert response.json() == {"updated": 3}
    tasks = await _all(client, headers)
    assert {task["status"] for task in tasks.values()} == {"completed"}
    # The one already completed kept its version and time; the others moved on.
    assert tasks[done["id"]]["updated_at"] == done["updated_at"]
    unchanged = await client.get(f"/api/tasks/{done['id']}", headers=headers)
    assert unchanged.headers["ETag"] == '"1"'
    for task in pending:
        changed = await client.get(f"/api/tasks/{task['id']}", headers=headers)
        assert changed.headers["ETag"] == '"2"'
        assert changed.json()["updated_at"] > task["updated_at"]


async def test_the_status_filter_limits_a_bulk_update(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    await _create(client, headers, status="completed")
    await _create(client, headers)

    response = await client.patch(
        "/api/tasks", params={"status": "completed"}, json={"status": "pending"}, headers=headers
    )

    assert response.json() == {"updated": 1}
    assert {task["status"] for task in (await _all(client, headers)).values()} == {"pending"}


async def test_bulk_actions_never_touch_another_users_tasks(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    other = {"X-User-ID": str(uuid4())}
    theirs = await _create(client, other)
    await _create(client, headers)

    await client.patch("/api/tasks", json={"status": "completed"}, headers=headers)
    await client.delete("/api/tasks", params={"status": "completed"}, headers=headers)

    assert await _all(client, other) == {theirs["id"]: theirs}


async def test_clearing_completed_deletes_only_those(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    done = [await _create(client, headers, status="completed") for _ in range(2)]
    kept = await _create(client, headers)

    response = await client.delete("/api/tasks", params={"status": "completed"}, headers=headers)

    assert response.status_code == 200
    assert response.json() == {"deleted": 2}
    assert list(await _all(client, headers)) == [kept["id"]]
    for task in done:
        assert (await client.get(f"/api/tasks/{task['id']}", headers=headers)).status_code == 404


async def test_deleting_all_needs_a_status(client: httpx.AsyncClient, headers: Headers) -> None:
    await _create(client, headers)

    for params in ({}, {"status": "done"}):
        response = await client.delete("/api/tasks", params=params, headers=headers)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
    assert len(await _all(client, headers)) == 1


async def test_a_bulk_update_needs_a_status_body(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    for body in ({}, {"status": "done"}, {"status": "completed", "title": "x"}):
        response = await client.patch("/api/tasks", json=body, headers=headers)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_bulk_write_is_one_change_in_the_feed(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    for _ in range(5):
        await _create(client, headers)
    cursor = (await client.get("/api/tasks/changes", headers=headers)).json()["cursor"]

    await client.patch("/api/tasks", json={"status": "completed"}, headers=headers)
    # A page of one may not end inside the change: all five come together.
    page = (
        await client.get(
            "/api/tasks/changes", params={"since": cursor, "limit": 1}, headers=headers
        )
    ).json()

    assert len(page["changes"]) == 5
    assert page["has_more"] is False
    assert {change["task"]["status"] for change in page["changes"]} == {"completed"}


async def test_the_summary_counts_live_tasks_and_its_etag_follows_the_counts(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    first = await _create(client, headers)
    await _create(client, headers, status="completed")
    gone = await _create(client, headers)
    await client.delete(f"/api/tasks/{gone['id']}", headers=headers)

    summary = await client.get("/api/tasks/summary", headers=headers)
    assert summary.status_code == 200
    assert summary.json() == {"total": 2, "pending": 1, "completed": 1}
    etag = summary.headers["ETag"]

    # A write that changes no count keeps the tag: a 304.
    await client.put(f"/api/tasks/{first['id']}", json={"title": "renamed"}, headers=headers)
    same = await client.get("/api/tasks/summary", headers={**headers, "If-None-Match": etag})
    assert same.status_code == 304
    assert same.headers["ETag"] == etag

    await client.patch(f"/api/tasks/{first['id']}/complete", headers=headers)
    changed = await client.get("/api/tasks/summary", headers={**headers, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json() == {"total": 2, "pending": 0, "completed": 2}
    assert changed.headers["ETag"] != etag


async def test_the_summary_of_a_new_user_is_zero(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    response = await client.get("/api/tasks/summary", headers=headers)
    assert response.json() == {"total": 0, "pending": 0, "completed": 0}


async def test_concurrent_bulk_and_single_writes_lose_nothing(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    tasks = [await _create(client, headers) for _ in range(10)]

    async def rename(task: dict[str, Any]) -> None:
        response = await client.put(
            f"/api/tasks/{task['id']}", json={"title": f"renamed {task['id']}"}, headers=headers
        )
        assert response.status_code == 200

    async def complete_all() -> None:
        response = await client.patch("/api/tasks", json={"status": "completed"}, headers=headers)
        assert response.status_code == 200

    await asyncio.gather(complete_all(), *(rename(task) for task in tasks), complete_all())

    # Each write kept the other's field: in any serial order, both are there.
    final = await _all(client, headers)
    assert {task["title"] for task in final.values()} == {f"renamed {t['id']}" for t in tasks}
    assert {task["status"] for task in final.values()} == {"completed"}


async def test_the_summary_is_one_query_on_the_live_tasks_index(
    client: httpx.AsyncClient, database: Database, headers: Headers
) -> None:
    await _create(client, headers)
    query = (
        "SELECT count(*), count(*) FILTER (WHERE status = 'pending') "
        "FROM tasks WHERE user_id = :user AND deleted_at IS NULL"
    )
    user = headers["X-User-ID"]
    plan: Sequence[Any]
    async with database.engine.connect() as connection:
        if database.dialect == "postgresql":
            # On a table this small the planner would rather scan it.
            await connection.execute(text("SET enable_seqscan = off"))
            plan = (await connection.execute(text(f"EXPLAIN {query}"), {"user": user})).all()
        else:
            user = user.replace("-", "")  # how SQLite stores a UUID
            plan = (
                await connection.execute(text(f"EXPLAIN QUERY PLAN {query}"), {"user": user})
            ).all()
    plan_text = "\n".join(str(row[-1]) for row in plan)
    if database.dialect == "postgresql":
        # One of the user's indexes (which one is the planner's choice), not a scan.
        assert "Seq Scan" not in plan_text
        assert "Index" in plan_text, plan_text
    else:
        # SQLite picks among the user's indexes by its own estimates: one of them, no scan.
        assert plan_text.startswith("SEARCH tasks USING"), plan_text
