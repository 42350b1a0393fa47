"""Changes reach the feed in commit order: none before the one a write waits behind.

PostgreSQL only: there two writers of one user really overlap, and the second
waits on the user's row; SQLite runs one writer at a time.
"""

import asyncio
import time
from uuid import UUID

import httpx

from tests.environment import only_on
from tests.helpers import create_task, until_a_backend_waits_on_a_lock
from tests.sync.feed import Headers, change_id, feed_page
from todo.db import Database
from todo.tasks import service
from todo.tasks.schemas import TaskUpdate

pytestmark = only_on("postgresql")


async def test_a_write_waiting_on_an_uncommitted_one_comes_after_it_and_neither_shows_early(
    database: Database, client: httpx.AsyncClient, headers: Headers, user_id: str
) -> None:
    held, other = [await create_task(client, headers, title=f"t{n}") for n in range(2)]
    cursor = (await feed_page(client, headers))["cursor"]

    async with database.transaction() as transaction:
        first = await service.update_task(
            transaction,
            UUID(user_id),
            UUID(held["id"]),
            TaskUpdate.model_validate({"title": "held"}),
        )
        second = asyncio.create_task(
            client.patch(f"/api/tasks/{other['id']}/complete", headers=headers)
        )
        await until_a_backend_waits_on_a_lock(database)

        # Neither is visible: the first is not committed, the second waits behind it.
        page = await feed_page(client, headers, cursor)
        assert page == {"changes": [], "cursor": cursor, "has_more": False}
        assert not second.done()

    answered = await second
    assert answered.status_code == 200
    page = await feed_page(client, headers, cursor)
    assert [change_id(change) for change in page["changes"]] == [held["id"], other["id"]]
    assert page["changes"][0]["task"]["title"] == first.title == "held"
    assert page["changes"][1]["task"] == answered.json()
    assert page["changes"][1]["task"]["status"] == "completed"


async def test_a_long_poll_wakes_only_once_the_change_it_waits_for_commits(
    database: Database, client: httpx.AsyncClient, headers: Headers, user_id: str
) -> None:
    task = await create_task(client, headers)
    cursor = (await feed_page(client, headers))["cursor"]

    async with database.transaction() as transaction:
        poll = asyncio.create_task(feed_page(client, headers, cursor, wait=5))
        await service.toggle_task(transaction, UUID(user_id), UUID(task["id"]))
        # The poll reads on its own connection: the uncommitted change is not there.
        early = await feed_page(client, headers, cursor)
        assert early["changes"] == []
        assert not poll.done()
        started = time.monotonic()

    page = await asyncio.wait_for(poll, timeout=10)
    assert time.monotonic() - started < 4
    assert [change["task"]["status"] for change in page["changes"]] == ["completed"]
