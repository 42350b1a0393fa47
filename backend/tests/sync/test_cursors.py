"""Cursors: a malformed one is a 400, one this user or this database cannot use a 410.

And a user's feed, however it is read, holds only that user's tasks.
"""

import base64
import random
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete

from tests.helpers import assert_problem, create_task
from tests.sync.feed import FEED, Headers, change_id, feed_page, read_to_end
from todo.db import Database
from todo.sync.cursor import SyncCursor, decode_sync_cursor, encode_sync_cursor
from todo.tasks.models import Task
from todo.users.models import User

_TASKS = Task.__table__  # type: ignore[attr-defined]
_USERS = User.__table__  # type: ignore[attr-defined]
EXPIRED = "urn:todo:problem:sync-cursor-expired"


async def _refused(
    client: httpx.AsyncClient, headers: Headers, since: str, status: int
) -> dict[str, object]:
    response = await client.get(FEED, params={"since": since}, headers=headers)
    return assert_problem(response, status)


@pytest.mark.parametrize(
    "since",
    [
        "",
        "bad",
        "A" * 31,
        "A" * 33,
        "!" * 32,
        "A" * 31 + "!",
        "AAAA====" + "A" * 24,
        "=" * 32,
        " " * 32,
        "é" * 32,
        # The standard alphabet's two characters: not this API's (A-Z a-z 0-9 _ -).
        "A+" * 16,
        "A/" * 16,
    ],
)
async def test_a_malformed_cursor_is_a_400_invalid_cursor(
    client: httpx.AsyncClient, headers: Headers, since: str
) -> None:
    await create_task(client, headers)
    body = await _refused(client, headers, since, 400)
    assert body["type"] == "urn:todo:problem:invalid-cursor"


async def test_a_well_formed_cursor_this_api_never_issued_is_expired_not_served(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    await create_task(client, headers)
    rng = random.Random(3)
    for _ in range(5):
        # 24 random bytes: a cursor's form, but no user's tag.
        garbage = base64.urlsafe_b64encode(rng.randbytes(24)).decode()
        body = await _refused(client, headers, garbage, 410)
        assert body["type"] == EXPIRED
    body = await _refused(client, headers, "A" * 32, 410)
    assert body["type"] == EXPIRED


async def test_a_cursor_beyond_the_users_last_change_is_from_another_database(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    await create_task(client, headers)
    cursor = decode_sync_cursor((await feed_page(client, headers))["cursor"])
    assert cursor.after == 1
    assert cursor.floor == 0
    for ahead in (
        SyncCursor(cursor.tag, cursor.after + 1, 0),
        SyncCursor(cursor.tag, 0, cursor.after + 1),
        SyncCursor(cursor.tag, 2**64 - 1, 0),
    ):
        body = await _refused(client, headers, encode_sync_cursor(ahead), 410)
        assert body["type"] == EXPIRED
    # The cursor itself, and one taken mid-snapshot, are still served.
    assert (await feed_page(client, headers, encode_sync_cursor(cursor)))["changes"] == []
    mid_snapshot = encode_sync_cursor(SyncCursor(cursor.tag, 0, cursor.after))
    assert len((await feed_page(client, headers, mid_snapshot))["changes"]) == 1


async def test_a_cursor_from_before_the_user_was_made_again_is_expired(
    app: FastAPI,
    database: Database,
    client: httpx.AsyncClient,
    headers: Headers,
    user_id: str,
) -> None:
    # The user had nothing yet: the cursor's position is 0, valid in any database.
    empty = await feed_page(client, headers)
    assert empty["changes"] == []
    await create_task(client, headers)
    later = (await feed_page(client, headers))["cursor"]
    # The same user id in another database (or this one emptied and restored): a new row.
    async with database.engine.begin() as connection:
        await connection.execute(delete(_TASKS).where(_TASKS.c.user_id == UUID(user_id)))
        await connection.execute(delete(_USERS).where(_USERS.c.id == UUID(user_id)))
    app.state.users.forget()
    task = await create_task(client, headers, title="in the new database")

    for cursor in (empty["cursor"], later):
        body = await _refused(client, headers, cursor, 410)
        assert body["type"] == EXPIRED
    assert (await feed_page(client, headers))["changes"] == [{"op": "upsert", "task": task}]


async def test_another_users_cursor_is_expired_and_reveals_nothing(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    other = {"X-User-ID": str(uuid4())}
    mine = await create_task(client, headers, title="mine")
    theirs = await create_task(client, other, title="theirs")
    # Both users at the same change number: only the user binding tells the cursors apart.
    my_cursor = (await feed_page(client, headers))["cursor"]
    their_cursor = (await feed_page(client, other))["cursor"]
    assert decode_sync_cursor(my_cursor).after == decode_sync_cursor(their_cursor).after

    for since, caller in ((their_cursor, headers), (my_cursor, other)):
        response = await client.get(FEED, params={"since": since}, headers=caller)
        body = assert_problem(response, 410)
        assert body["type"] == EXPIRED
        assert mine["id"] not in response.text
        assert theirs["id"] not in response.text


async def test_interleaved_users_each_see_only_their_own_tasks_from_any_cursor(
    client: httpx.AsyncClient,
) -> None:
    users = [{"X-User-ID": str(uuid4())} for _ in range(2)]
    created: list[set[str]] = [set(), set()]
    live: list[set[str]] = [set(), set()]
    cursors: list[list[str]] = [[], []]
    rng = random.Random(11)
    for step in range(40):
        who = rng.randrange(2)
        caller = users[who]
        action = rng.choice(["create", "update", "toggle", "delete"]) if live[who] else "create"
        if action == "create":
            task_id = (await create_task(client, caller, title=f"u{who} s{step}"))["id"]
            created[who].add(task_id)
            live[who].add(task_id)
            continue
        path = f"/api/tasks/{rng.choice(sorted(live[who]))}"
        if action == "update":
            response = await client.put(path, json={"title": f"s{step}"}, headers=caller)
        elif action == "toggle":
            response = await client.patch(path + "/complete", headers=caller)
        else:
            response = await client.delete(path, headers=caller)
            live[who].discard(path.rsplit("/", 1)[1])
        assert response.status_code in {200, 204}, response.text
        if step % 4 == 0:
            cursors[who].append((await feed_page(client, caller))["cursor"])
    assert all(cursors)
    assert all(created[who] - live[who] for who in range(2)), "each user deleted something"

    for who, caller in enumerate(users):
        pages, _ = await read_to_end(client, caller, limit=3)
        snapshot = [change for page in pages for change in page]
        assert {change["op"] for change in snapshot} == {"upsert"}
        assert {change_id(change) for change in snapshot} == live[who]
        assert {change["task"]["user_id"] for change in snapshot} == {caller["X-User-ID"]}
        for own in cursors[who]:
            pages, _ = await read_to_end(client, caller, own, limit=3)
            # Deletes included: every id named is one of the caller's own tasks.
            assert {change_id(change) for page in pages for change in page} <= created[who]
        for foreign in cursors[1 - who]:
            response = await client.get(FEED, params={"since": foreign}, headers=caller)
            assert assert_problem(response, 410)["type"] == EXPIRED
            assert not any(task_id in response.text for task_id in created[1 - who])
