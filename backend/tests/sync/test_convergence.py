"""Clients writing at once: every replica the feed builds ends equal to the tasks themselves.

From scratch, and from every cursor handed out while the writes went on (the
snapshot's middle included), starting from what the feed had given up to it.
"""

import asyncio
import random

import httpx

from tests.helpers import create_task
from tests.sync.feed import Headers, Replica, apply, feed_page, listed_tasks, read_to_end
from todo.sync.cursor import decode_sync_cursor

WRITERS = 4
OPERATIONS = 30


async def _writer(
    client: httpx.AsyncClient, headers: Headers, known: list[str], rng: random.Random
) -> None:
    """Random creates, updates, toggles and deletes, on any task any writer made."""
    for step in range(OPERATIONS):
        action = (
            rng.choice(["create", "create", "update", "toggle", "delete"]) if known else "create"
        )
        if action == "create":
            known.append((await create_task(client, headers, title=f"step {step}"))["id"])
            continue
        path = f"/api/tasks/{rng.choice(known)}"
        if action == "update":
            body = {"title": f"t{rng.randrange(1000)}", "description": rng.choice([None, "d"])}
            response = await client.put(path, json=body, headers=headers)
        elif action == "toggle":
            response = await client.patch(path + "/complete", headers=headers)
        else:
            response = await client.delete(path, headers=headers)
        # Another writer may have deleted the task first.
        assert response.status_code in {200, 204, 404}, response.text


async def _follower(
    client: httpx.AsyncClient, headers: Headers, writing: asyncio.Event
) -> list[tuple[str, Replica]]:
    """Read the feed in small pages while the writes go on: each cursor, and the replica at it."""
    replica: Replica = {}
    cursor: str | None = None
    recorded: list[tuple[str, Replica]] = []
    while writing.is_set():
        page = await feed_page(client, headers, cursor, limit=3)
        apply(replica, page["changes"])
        cursor = page["cursor"]
        recorded.append((cursor, dict(replica)))
    return recorded


async def test_replicas_from_scratch_and_from_every_cursor_converge_on_the_tasks(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    # A few tasks first, so that the follower's snapshot spans several pages.
    known = [(await create_task(client, headers, title=f"seed {n}"))["id"] for n in range(8)]
    writing = asyncio.Event()
    writing.set()
    follower = asyncio.create_task(_follower(client, headers, writing))
    try:
        await asyncio.gather(
            *(_writer(client, headers, known, random.Random(seed)) for seed in range(WRITERS))
        )
    finally:
        writing.clear()
    recorded = await follower
    # The follower read while the writes went on, not only after them.
    distinct = list(dict(recorded).items())
    assert len(distinct) > 5
    # Some in the middle of the snapshot (its floor still ahead of where they stand).
    assert any(decode_sync_cursor(cursor).floor > 0 for cursor, _ in distinct)

    expected = await listed_tasks(client, headers, limit=7)
    assert expected, "some tasks survived"
    pages, _ = await read_to_end(client, headers, limit=5)
    from_scratch: Replica = {}
    for changes in pages:
        apply(from_scratch, changes)
    assert from_scratch == expected

    # Every cursor handed out, from the snapshot's first page on.
    for cursor, state in distinct:
        replica = dict(state)
        pages, end = await read_to_end(client, headers, cursor, limit=4)
        for changes in pages:
            apply(replica, changes)
        assert replica == expected, cursor
        assert (await feed_page(client, headers, end))["changes"] == []
