"""A retry racing its first request, and the purge of expired keys."""

import asyncio
import time
from datetime import timedelta
from functools import partial

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, text, update

from tests.apps import client_with
from tests.helpers import until_a_backend_waits_on_a_lock
from todo.db import Database
from todo.db.purge import purge_periodically
from todo.db.types import utcnow
from todo.idempotency.models import IdempotencyRecord
from todo.idempotency.service import purge_expired

Headers = dict[str, str]


async def _stored_keys(database: Database) -> int:
    async with database.engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(IdempotencyRecord))
    return int(count or 0)


async def _expire_all_keys(database: Database) -> None:
    async with database.engine.begin() as connection:
        await connection.execute(
            update(IdempotencyRecord).values(expires_at=utcnow() - timedelta(seconds=1))
        )


async def _until_no_stored_keys(database: Database) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not await _stored_keys(database):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the expired keys were never purged")


async def test_a_retry_while_the_first_is_in_flight_waits_or_is_409_never_a_second_task(
    database: Database, database_url: str, headers: Headers, client: httpx.AsyncClient
) -> None:
    await client.get("/api/tasks", headers=headers)  # the user exists from here on
    keyed = {**headers, "Idempotency-Key": "slow"}
    body = {"title": "Buy milk"}

    async with client_with(database, database_url, idempotency_wait_seconds=0.3) as app:
        async with database.engine.connect() as holder:
            await holder.begin()
            if database.dialect == "postgresql":
                # Keep new tasks out, so the first request stalls mid-transaction
                # on its INSERT, holding the key it has just claimed; it is
                # served by an instance that waits longer than the retry's.
                await holder.execute(text("LOCK TABLE tasks IN SHARE MODE"))
                async with client_with(database, database_url) as patient:
                    first = asyncio.create_task(
                        patient.post("/api/tasks", json=body, headers=keyed)
                    )
                    await until_a_backend_waits_on_a_lock(database)

                    retry = await app.post("/api/tasks", json=body, headers=keyed)

                    assert retry.status_code == 409
                    assert retry.json()["type"] == "urn:todo:problem:idempotency-key-in-flight"
                    assert not first.done()
                    await holder.rollback()
                    assert (await first).status_code == 201
            else:
                # SQLite has one writer at a time: both wait for the lock, in turn.
                await holder.execute(text("UPDATE users SET email = email"))
                first = asyncio.create_task(app.post("/api/tasks", json=body, headers=keyed))
                retry_task = asyncio.create_task(app.post("/api/tasks", json=body, headers=keyed))
                await asyncio.sleep(0.2)
                assert not first.done()
                assert not retry_task.done()
                await holder.rollback()
                responses = [await first, await retry_task]
                assert [response.status_code for response in responses] == [201, 201]
                assert responses[0].content == responses[1].content
                replayed = [response.headers.get("Idempotent-Replayed") for response in responses]
                assert replayed.count("true") == 1
                assert replayed.count(None) == 1

        later = await app.post("/api/tasks", json=body, headers=keyed)
        assert later.status_code == 201
        assert later.headers["Idempotent-Replayed"] == "true"
        tasks = (await app.get("/api/tasks", headers=headers)).json()
        assert len(tasks) == 1


async def test_a_keyed_toggle_stuck_behind_another_change_stores_nothing(
    database: Database, database_url: str, headers: Headers, client: httpx.AsyncClient
) -> None:
    task_id = (await client.post("/api/tasks", json={"title": "a"}, headers=headers)).json()["id"]
    keyed = {**headers, "Idempotency-Key": "tap"}
    path = f"/api/tasks/{task_id}/complete"

    async with client_with(database, database_url, idempotency_wait_seconds=0.3) as app:
        async with database.engine.connect() as holder:
            await holder.begin()
            if database.dialect == "postgresql":
                await holder.execute(
                    text("SELECT 1 FROM tasks WHERE id = :id FOR UPDATE"), {"id": task_id}
                )
                stuck = await app.patch(path, headers=keyed)
                assert stuck.status_code == 409
                assert stuck.json()["type"] == "urn:todo:problem:idempotency-key-in-flight"
                await holder.rollback()
            else:
                await holder.execute(text("UPDATE tasks SET title = title"))
                waiting = asyncio.create_task(app.patch(path, headers=keyed))
                await asyncio.sleep(0.2)
                assert not waiting.done()
                await holder.rollback()
                assert (await waiting).status_code == 200

        retried = await app.patch(path, headers=keyed)
        assert retried.status_code == 200
        current = await app.get(f"/api/tasks/{task_id}", headers=headers)
        assert current.json()["status"] == "completed"
        assert current.headers["ETag"] == '"2"'


async def test_purge_removes_expired_keys_in_batches_and_keeps_live_ones(
    database: Database, client: httpx.AsyncClient, headers: Headers
) -> None:
    for number in range(5):
        await client.post(
            "/api/tasks", json={"title": "a"}, headers={**headers, "Idempotency-Key": f"k{number}"}
        )
    await _expire_all_keys(database)
    await client.post(
        "/api/tasks", json={"title": "a"}, headers={**headers, "Idempotency-Key": "live"}
    )

    purged = await purge_expired(database, batch_size=2)

    assert purged == 5
    assert await _stored_keys(database) == 1
    replay = await client.post(
        "/api/tasks", json={"title": "a"}, headers={**headers, "Idempotency-Key": "live"}
    )
    assert replay.headers["Idempotent-Replayed"] == "true"


async def test_the_app_purges_expired_keys_once_it_has_started(
    app: FastAPI, database: Database, client: httpx.AsyncClient, headers: Headers
) -> None:
    await client.post(
        "/api/tasks", json={"title": "a"}, headers={**headers, "Idempotency-Key": "k"}
    )
    await _expire_all_keys(database)
    assert await _stored_keys(database) == 1

    async with app.router.lifespan_context(app):
        # The purge runs in the background: give it a while, not forever.
        await _until_no_stored_keys(database)


async def test_the_purge_comes_round_again(
    database: Database, client: httpx.AsyncClient, headers: Headers
) -> None:
    purger = asyncio.create_task(
        purge_periodically(
            [("expired idempotency keys", partial(purge_expired, database))], interval=0.05
        )
    )
    try:
        await client.post(
            "/api/tasks", json={"title": "a"}, headers={**headers, "Idempotency-Key": "k"}
        )
        await _expire_all_keys(database)
        await _until_no_stored_keys(database)
    finally:
        purger.cancel()
