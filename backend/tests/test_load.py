"""Many concurrent requests from two app processes' worth of pools, on one database.

Through PgBouncer in transaction mode, their transactions share a few server
connections: a prepared statement cached or named per connection would collide
there ("already exists" / "does not exist"), so this is where that shows.
"""

import asyncio
from collections.abc import AsyncIterator
from uuid import uuid4

import httpx
import pytest

from tests.conftest import DatabaseUrls
from todo.config import Settings
from todo.db import Database
from todo.main import create_app

WORKERS = 2
USERS = 12
TASKS_PER_USER = 5


@pytest.fixture
async def worker_clients(
    database_urls: DatabaseUrls, empty_tables: None
) -> AsyncIterator[list[httpx.AsyncClient]]:
    settings = Settings(database_url=database_urls.app)
    databases = [Database(settings.database_url, settings) for _ in range(WORKERS)]
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(settings, database=database)),
            base_url="http://testserver",
        )
        for database in databases
    ]
    yield clients
    for client, database in zip(clients, databases, strict=True):
        await client.aclose()
        await database.dispose()


async def one_users_session(client: httpx.AsyncClient, other: httpx.AsyncClient) -> list[str]:
    """A user's run of requests, spread over both workers; returns the final titles."""
    headers = {"X-User-ID": str(uuid4())}
    ids = []
    for number in range(TASKS_PER_USER):
        created = await client.post("/api/tasks", json={"title": f"t{number}"}, headers=headers)
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    for task_id in ids:
        toggled = await other.patch(f"/api/tasks/{task_id}/complete", headers=headers)
        assert toggled.status_code == 200, toggled.text
        assert toggled.json()["status"] == "completed"
        renamed = await client.put(
            f"/api/tasks/{task_id}", json={"title": f"done {task_id[:8]}"}, headers=headers
        )
        assert renamed.status_code == 200, renamed.text
    deleted = await other.delete(f"/api/tasks/{ids[0]}", headers=headers)
    assert deleted.status_code == 204, deleted.text
    listed = await client.get("/api/tasks?status=completed", headers=headers)
    assert listed.status_code == 200, listed.text
    return sorted(task["title"] for task in listed.json())


async def test_concurrent_load_from_two_workers(worker_clients: list[httpx.AsyncClient]) -> None:
    first, second = worker_clients
    results = await asyncio.gather(
        *(
            one_users_session(first, second) if user % 2 else one_users_session(second, first)
            for user in range(USERS)
        )
    )

    assert all(len(titles) == TASKS_PER_USER - 1 for titles in results)
    assert all(all(title.startswith("done ") for title in titles) for titles in results)
    ready = await asyncio.gather(*(client.get("/health/ready") for client in worker_clients))
    assert [response.status_code for response in ready] == [200] * WORKERS
