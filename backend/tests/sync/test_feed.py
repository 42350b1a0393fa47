"""The change feed: the snapshot, the changes after a cursor, its pages, and long polling."""

import asyncio
import time

import httpx
import pytest

from tests.helpers import assert_problem, create_task
from tests.sync.feed import (
    FEED,
    Headers,
    apply,
    change_id,
    feed_page,
    last_change,
    listed_tasks,
    read_to_end,
    stamp_as_one_change,
)
from todo.db import Database


async def _current(client: httpx.AsyncClient, headers: Headers, task_id: str) -> bytes:
    response = await client.get(f"/api/tasks/{task_id}", headers=headers)
    assert response.status_code == 200
    return response.content


async def test_the_snapshot_is_every_live_task_as_get_returns_it_and_no_delete(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    tasks = [await create_task(client, headers, title=f"t{number}") for number in range(5)]
    await client.put(f"/api/tasks/{tasks[1]['id']}", json={"description": "more"}, headers=headers)
    await client.patch(f"/api/tasks/{tasks[2]['id']}/complete", headers=headers)
    await client.delete(f"/api/tasks/{tasks[3]['id']}", headers=headers)

    page = await feed_page(client, headers)

    assert page["has_more"] is False
    assert {change["op"] for change in page["changes"]} == {"upsert"}
    live = [task["id"] for task in tasks if task is not tasks[3]]
    assert sorted(change_id(change) for change in page["changes"]) == sorted(live)
    for change in page["changes"]:
        # Exactly the document GET returns, field for field.
        current = await client.get(f"/api/tasks/{change['task']['id']}", headers=headers)
        assert change["task"] == current.json()
    # In change order: the two written last come last.
    assert [change_id(change) for change in page["changes"]][-2:] == [
        tasks[1]["id"],
        tasks[2]["id"],
    ]


async def test_the_feed_holds_each_task_bytes_as_get_returns_it(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    task = await create_task(client, headers, title="Ünïcode ✓", description='quote " here')
    response = await client.get(FEED, headers=headers)
    current = await _current(client, headers, task["id"])
    assert b'{"op":"upsert","task":' + current + b"}" in response.content


async def test_the_snapshot_pages_chain_to_the_end_at_any_limit(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    tasks = {(await create_task(client, headers, title=f"t{n}"))["id"] for n in range(7)}
    for limit in (1, 2, 3, 7, 1000):
        pages, cursor = await read_to_end(client, headers, limit=limit)
        ids = [change_id(change) for page in pages for change in page]
        # Each live task once, none left out, in pages of at most `limit` (one change a task).
        assert sorted(ids) == sorted(tasks)
        assert all(len(page) <= limit for page in pages)
        assert len(pages) == -(-len(tasks) // limit)
        # The last cursor is at the end: nothing newer.
        end = await feed_page(client, headers, cursor, limit=limit)
        assert end == {"changes": [], "cursor": cursor, "has_more": False}


async def test_an_empty_snapshot_is_no_change_and_its_cursor_reads_what_comes_next(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    page = await feed_page(client, headers)
    assert page["changes"] == []
    assert page["has_more"] is False
    task = await create_task(client, headers)
    after = await feed_page(client, headers, page["cursor"])
    assert after["changes"] == [{"op": "upsert", "task": task}]


@pytest.mark.parametrize(
    ("name", "value"), [("limit", 0), ("limit", 1001), ("limit", -1), ("wait", -1), ("wait", 61)]
)
async def test_limit_and_wait_outside_their_bounds_are_a_422(
    client: httpx.AsyncClient, headers: Headers, name: str, value: int
) -> None:
    response = await client.get(FEED, params={name: value}, headers=headers)
    body = assert_problem(response, 422)
    assert [error["loc"] for error in body["errors"]] == [["query", name]]


@pytest.mark.parametrize(
    ("name", "value"), [("limit", 1), ("limit", 1000), ("wait", 0), ("wait", 60)]
)
async def test_limit_and_wait_at_their_bounds_are_served(
    client: httpx.AsyncClient, headers: Headers, name: str, value: int
) -> None:
    tasks = [await create_task(client, headers, title=f"t{n}") for n in range(2)]
    page = await feed_page(
        client,
        headers,
        limit=value if name == "limit" else None,
        wait=value if name == "wait" else None,
    )
    assert len(page["changes"]) == min(value if name == "limit" else 500, len(tasks))
    assert page["has_more"] is (name == "limit" and value == 1)


async def test_after_a_cursor_each_task_comes_once_in_its_latest_state_in_change_order(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    first, second, third = [await create_task(client, headers, title=f"t{n}") for n in range(3)]
    cursor = (await feed_page(client, headers))["cursor"]
    for title in ("a", "b", "c"):
        await client.put(f"/api/tasks/{first['id']}", json={"title": title}, headers=headers)
    await client.patch(f"/api/tasks/{second['id']}/complete", headers=headers)
    await client.patch(f"/api/tasks/{first['id']}/complete", headers=headers)
    await client.patch(f"/api/tasks/{second['id']}/complete", headers=headers)
    await client.patch(f"/api/tasks/{second['id']}/complete", headers=headers)
    fourth = await create_task(client, headers, title="t3")

    page = await feed_page(client, headers, cursor)

    # `third` did not change; the others come in the order of their last write.
    assert [change_id(change) for change in page["changes"]] == [
        first["id"],
        second["id"],
        fourth["id"],
    ]
    for change in page["changes"]:
        assert (
            change["task"]
            == (await client.get(f"/api/tasks/{change_id(change)}", headers=headers)).json()
        )
    assert page["changes"][0]["task"]["title"] == "c"
    assert page["changes"][0]["task"]["status"] == "completed"
    assert page["changes"][1]["task"]["status"] == "completed"
    assert third["id"] not in [change_id(change) for change in page["changes"]]
    # Read one at a time, the same changes in the same order.
    pages, end = await read_to_end(client, headers, cursor, limit=1)
    assert [change for page in pages for change in page] == page["changes"]
    assert end == page["cursor"]


async def test_a_page_never_ends_inside_one_change(
    database: Database, client: httpx.AsyncClient, headers: Headers, user_id: str
) -> None:
    tasks = [await create_task(client, headers, title=f"t{n}") for n in range(5)]
    cursor = (await feed_page(client, headers))["cursor"]
    await client.put(f"/api/tasks/{tasks[0]['id']}", json={"title": "single"}, headers=headers)
    batch = sorted(task["id"] for task in tasks[1:4])
    number = await stamp_as_one_change(database, user_id, batch)
    assert number == await last_change(database, user_id)
    later = await create_task(client, headers, title="later")

    # The limit falls inside the batch: the page takes the whole of it.
    page = await feed_page(client, headers, cursor, limit=2)
    assert [change_id(change) for change in page["changes"]] == [tasks[0]["id"], *batch]
    assert page["has_more"] is True
    rest = await feed_page(client, headers, page["cursor"], limit=2)
    assert rest["changes"] == [{"op": "upsert", "task": later}]
    assert rest["has_more"] is False

    # The limit ends just before the batch, then one page is the batch, beyond its limit.
    one = await feed_page(client, headers, cursor, limit=1)
    assert [change_id(change) for change in one["changes"]] == [tasks[0]["id"]]
    assert one["has_more"] is True
    whole = await feed_page(client, headers, one["cursor"], limit=1)
    assert [change_id(change) for change in whole["changes"]] == batch
    assert whole["has_more"] is True
    last = await feed_page(client, headers, whole["cursor"], limit=1)
    assert [change_id(change) for change in last["changes"]] == [later["id"]]
    assert last["has_more"] is False

    # The batch as the snapshot's first change, at the smallest limit: kept whole too.
    snapshot, _ = await read_to_end(client, headers, limit=1)
    assert [[change_id(change) for change in page] for page in snapshot] == [
        [tasks[4]["id"]],
        [tasks[0]["id"]],
        batch,
        [later["id"]],
    ]
    replica: dict[str, dict[str, object]] = {}
    for changes in snapshot:
        apply(replica, changes)
    assert replica == await listed_tasks(client, headers)


async def test_a_long_poll_is_answered_as_soon_as_another_request_writes(
    database: Database, client: httpx.AsyncClient, headers: Headers
) -> None:
    cursor = (await feed_page(client, headers))["cursor"]
    feed_reads = asyncio.Event()

    def on_statement(sql: str) -> None:
        if "FROM tasks" in sql and "tasks.change >" in sql:
            feed_reads.set()

    database.listeners.append(on_statement)
    try:
        started = time.monotonic()
        poll = asyncio.create_task(feed_page(client, headers, cursor, wait=5))
        # The poll has read the feed (it subscribed first): the write comes after.
        await asyncio.wait_for(feed_reads.wait(), timeout=5)
        await database.ping()
        assert not poll.done()
        task = await create_task(client, headers)
        page = await asyncio.wait_for(poll, timeout=10)
        elapsed = time.monotonic() - started
    finally:
        database.listeners.remove(on_statement)

    assert page["changes"] == [{"op": "upsert", "task": task}]
    assert page["has_more"] is False
    assert elapsed < 4, f"the long poll took {elapsed:.2f} s to see the write"


async def test_a_long_poll_with_nothing_newer_ends_after_its_wait_with_the_same_cursor(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    await create_task(client, headers)
    cursor = (await feed_page(client, headers))["cursor"]

    started = time.monotonic()
    page = await feed_page(client, headers, cursor, wait=1)
    elapsed = time.monotonic() - started

    assert page == {"changes": [], "cursor": cursor, "has_more": False}
    assert 0.9 <= elapsed < 4


async def test_a_long_poll_with_changes_waiting_is_answered_at_once(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    cursor = (await feed_page(client, headers))["cursor"]
    task = await create_task(client, headers)

    started = time.monotonic()
    page = await feed_page(client, headers, cursor, wait=30)

    assert time.monotonic() - started < 4
    assert page["changes"] == [{"op": "upsert", "task": task}]


async def test_a_bulk_write_is_one_change_that_a_page_keeps_whole(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    tasks = [await create_task(client, headers, title=f"t{n}") for n in range(5)]
    cursor = (await feed_page(client, headers))["cursor"]
    response = await client.patch("/api/tasks", json={"status": "completed"}, headers=headers)
    assert response.status_code == 200, response.text
    later = await create_task(client, headers, title="later")

    page = await feed_page(client, headers, cursor, limit=2)

    assert sorted(change_id(change) for change in page["changes"]) == sorted(
        task["id"] for task in tasks
    )
    assert {change["task"]["status"] for change in page["changes"]} == {"completed"}
    assert page["has_more"] is True
    rest = await feed_page(client, headers, page["cursor"], limit=2)
    assert rest == {
        "changes": [{"op": "upsert", "task": later}],
        "cursor": rest["cursor"],
        "has_more": False,
    }
