"""Users are created on their first request, once, however many arrive at once."""

import asyncio
from uuid import UUID

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlmodel import col

from tests.helpers import session
from todo.db import Database
from todo.users.models import User


async def _users(database: Database, user_id: str) -> list[User]:
    async with session(database) as orm:
        return list((await orm.scalars(select(User).where(col(User.id) == UUID(user_id)))).all())


async def test_first_request_creates_the_user(
    client: httpx.AsyncClient, database: Database, headers: dict[str, str], user_id: str
) -> None:
    assert await _users(database, user_id) == []
    response = await client.get("/api/tasks", headers=headers)
    assert response.status_code == 200
    [user] = await _users(database, user_id)
    assert user.email == f"{user_id}@placeholder.local"
    assert user.created_at.tzinfo is not None


async def test_concurrent_first_requests_create_one_user(
    client: httpx.AsyncClient, database: Database, headers: dict[str, str], user_id: str
) -> None:
    requests = [
        client.post("/api/tasks", json={"title": f"t{i}"}, headers=headers) for i in range(10)
    ]
    requests += [client.get("/api/tasks", headers=headers) for _ in range(10)]
    responses = await asyncio.gather(*requests)
    assert sorted({response.status_code for response in responses}) == [200, 201]
    assert len(await _users(database, user_id)) == 1
    async with session(database) as orm:
        assert await orm.scalar(select(func.count()).select_from(User)) == 1


async def test_racing_apps_with_cold_caches_create_one_user(
    app: FastAPI,
    client: httpx.AsyncClient,
    database: Database,
    headers: dict[str, str],
    user_id: str,
) -> None:
    # Each round forgets what it knows, so every request races on the upsert.
    for _ in range(3):
        app.state.users.forget()
        responses = await asyncio.gather(
            *(client.get("/api/tasks", headers=headers) for _ in range(8))
        )
        assert {response.status_code for response in responses} == {200}
    assert len(await _users(database, user_id)) == 1
