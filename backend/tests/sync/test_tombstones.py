"""A delete leaves a tombstone: gone from every task route, a delete in the feed, until purged."""

from datetime import timedelta
from uuid import UUID

import httpx
from sqlalchemy import bindparam, update

from tests.helpers import assert_problem, create_task
from tests.sync.feed import Headers, feed_page, listed_tasks, read_to_end
from todo.db import Database
from todo.db.types import utcnow
from todo.sync.service import purge_tombstones
from todo.tasks.models import Task

_TASKS = Task.__table__  # type: ignore[attr-defined]


async def _deleted_days_ago(database: Database, task_ids: list[str], days: int) -> None:
    async with database.engine.begin() as connection:
        rows = await connection.execute(
            update(_TASKS)
            .where(_TASKS.c.id.in_(bindparam("ids", expanding=True)))
            .where(_TASKS.c.deleted_at.is_not(None))
            .values(deleted_at=utcnow() - timedelta(days=days)),
            {"ids": [UUID(task_id) for task_id in task_ids]},
        )
        assert rows.rowcount == len(task_ids)


async def test_a_deleted_task_is_not_found_by_any_route_and_is_a_delete_in_the_feed(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    kept = await create_task(client, headers, title="kept")
    doomed = await create_task(client, headers, title="doomed")
    before = (await feed_page(client, headers))["cursor"]
    path = f"/api/tasks/{doomed['id']}"

    assert (await client.delete(path, headers=headers)).status_code == 204

    responses = [
        await client.get(path, headers=headers),
        await client.put(path, json={"title": "back"}, headers=headers),
        await client.patch(path + "/complete", headers=headers),
        await client.delete(path, headers=headers),
    ]
    for response in responses:
        assert_problem(response, 404)
        assert response.json()["type"] == "urn:todo:problem:task-not-found"
    assert await listed_tasks(client, headers) == {kept["id"]: kept}
    # Those refused writes changed nothing: the feed holds the delete alone.
    page = await feed_page(client, headers, before)
    assert page["changes"] == [{"op": "delete", "id": doomed["id"]}]
    assert page["has_more"] is False
    # A fresh snapshot never had the task, so it hears of no delete.
    snapshot = await feed_page(client, headers)
    assert snapshot["changes"] == [{"op": "upsert", "task": kept}]


async def test_purged_deletes_expire_the_cursors_from_before_them_and_no_others(
    database: Database, client: httpx.AsyncClient, headers: Headers
) -> None:
    tasks = [await create_task(client, headers, title=f"t{number}") for number in range(4)]
    first, second, recent, live = (task["id"] for task in tasks)
    before_deletes = (await feed_page(client, headers))["cursor"]
    await client.delete(f"/api/tasks/{first}", headers=headers)
    between_deletes = (await feed_page(client, headers, before_deletes))["cursor"]
    await client.delete(f"/api/tasks/{second}", headers=headers)
    after_old_deletes = (await feed_page(client, headers, between_deletes))["cursor"]
    await client.delete(f"/api/tasks/{recent}", headers=headers)
    await _deleted_days_ago(database, [first, second], days=2)

    assert await purge_tombstones(database, timedelta(days=1)) == 1

    # The deletes of `first` and `second` are forgotten: a cursor from before either expired.
    for cursor in (before_deletes, between_deletes):
        body = assert_problem(
            await client.get("/api/tasks/changes?since=" + cursor, headers=headers), 410
        )
        assert body["type"] == "urn:todo:problem:sync-cursor-expired"
    # A cursor that had both still reads on: the recent delete is still there.
    page = await feed_page(client, headers, after_old_deletes)
    assert page["changes"] == [{"op": "delete", "id": recent}]
    snapshot, after_purge = await read_to_end(client, headers)
    assert [change["task"]["id"] for page in snapshot for change in page] == [live]
    # And so does a cursor taken after the purge.
    created = await create_task(client, headers, title="later")
    await client.delete(f"/api/tasks/{live}", headers=headers)
    page = await feed_page(client, headers, after_purge)
    assert page["changes"] == [
        {"op": "upsert", "task": created},
        {"op": "delete", "id": live},
    ]
    # A second purge finds nothing older than a day.
    assert await purge_tombstones(database, timedelta(days=1)) == 0
    assert (await feed_page(client, headers, after_old_deletes))["changes"][0] == {
        "op": "delete",
        "id": recent,
    }


async def test_the_purge_keeps_tombstones_younger_than_the_retention(
    database: Database, client: httpx.AsyncClient, headers: Headers
) -> None:
    task = await create_task(client, headers)
    before = (await feed_page(client, headers))["cursor"]
    await client.delete(f"/api/tasks/{task['id']}", headers=headers)

    assert await purge_tombstones(database, timedelta(hours=1)) == 0

    page = await feed_page(client, headers, before)
    assert page["changes"] == [{"op": "delete", "id": task["id"]}]
