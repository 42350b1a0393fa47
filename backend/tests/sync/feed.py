"""Reading the change feed as a client does, and the tasks it should arrive at."""

from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import bindparam, select, update

from todo.db import Database
from todo.tasks.models import Task
from todo.users.models import User

FEED = "/api/tasks/changes"

Headers = dict[str, str]
Change = dict[str, Any]
Replica = dict[str, dict[str, Any]]

_TASKS = Task.__table__  # type: ignore[attr-defined]
_USERS = User.__table__  # type: ignore[attr-defined]


async def feed_page(
    client: httpx.AsyncClient,
    headers: Headers,
    since: str | None = None,
    *,
    limit: int | None = None,
    wait: float | None = None,
) -> dict[str, Any]:
    """One answer of the feed, checked for its shape: changes, cursor, has_more."""
    given = {"since": since, "limit": limit, "wait": wait}
    query = {name: value for name, value in given.items() if value is not None}
    response = await client.get(FEED, params=query, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    page: dict[str, Any] = response.json()
    assert set(page) == {"changes", "cursor", "has_more"}
    assert isinstance(page["cursor"], str)
    assert len(page["cursor"]) == 32
    assert isinstance(page["has_more"], bool)
    ids = [change_id(change) for change in page["changes"]]
    # Each task at most once in a page, in its latest state.
    assert len(ids) == len(set(ids)), page
    for change in page["changes"]:
        assert change["op"] in {"upsert", "delete"}
        assert set(change) == ({"op", "task"} if change["op"] == "upsert" else {"op", "id"})
    return page


async def read_to_end(
    client: httpx.AsyncClient, headers: Headers, since: str | None = None, limit: int = 500
) -> tuple[list[list[Change]], str]:
    """Every page from `since` (the snapshot without it) until has_more is false."""
    pages: list[list[Change]] = []
    cursor = since
    while True:
        page = await feed_page(client, headers, cursor, limit=limit)
        pages.append(page["changes"])
        cursor = page["cursor"]
        if not page["has_more"]:
            return pages, cursor
        # A page that says more is coming is never empty.
        assert page["changes"]


def change_id(change: Change) -> str:
    if change["op"] == "upsert":
        task_id: str = change["task"]["id"]
        return task_id
    deleted_id: str = change["id"]
    return deleted_id


def apply(replica: Replica, changes: list[Change]) -> None:
    """What a client does with the changes: upsert or drop each task."""
    for change in changes:
        if change["op"] == "upsert":
            replica[change["task"]["id"]] = change["task"]
        else:
            replica.pop(change["id"], None)


async def listed_tasks(client: httpx.AsyncClient, headers: Headers, limit: int = 100) -> Replica:
    """GET /api/tasks to its last page (following Link), by id."""
    tasks: Replica = {}
    url: str | None = f"/api/tasks?limit={limit}"
    while url is not None:
        response = await client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        for task in response.json():
            assert task["id"] not in tasks
            tasks[task["id"]] = task
        link = response.headers.get("link")
        url = link.split(";", 1)[0].strip()[1:-1] if link is not None else None
    return tasks


async def last_change(database: Database, user_id: str) -> int:
    async with database.engine.connect() as connection:
        number = await connection.scalar(
            select(_USERS.c.last_change).where(_USERS.c.id == UUID(user_id))
        )
    assert number is not None
    return int(number)


async def stamp_as_one_change(database: Database, user_id: str, task_ids: list[str]) -> int:
    """Make the tasks one change of their user, as a write of several rows would: its number."""
    async with database.engine.begin() as connection:
        number = await connection.scalar(
            update(_USERS)
            .where(_USERS.c.id == UUID(user_id))
            .values(last_change=_USERS.c.last_change + 1)
            .returning(_USERS.c.last_change)
        )
        assert number is not None
        rows = await connection.execute(
            update(_TASKS)
            .where(_TASKS.c.id.in_(bindparam("ids", expanding=True)))
            .values(change=number),
            {"ids": [UUID(task_id) for task_id in task_ids]},
        )
        assert rows.rowcount == len(task_ids)
    return int(number)
