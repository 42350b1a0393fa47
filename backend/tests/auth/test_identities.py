"""Token subjects become this service's users: one user per (issuer, subject)."""

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlmodel import col

from tests.auth.issuer import ISSUER, SigningKey, bearer, claims
from tests.helpers import session
from todo.db import Database
from todo.users.models import User, UserIdentity
from todo.users.service import user_for_identity


async def _create_task(
    client: httpx.AsyncClient, token: str, title: str = "Buy milk"
) -> dict[str, Any]:
    response = await client.post("/api/tasks", json={"title": title}, headers=bearer(token))
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


async def _count(database: Database, model: type[User] | type[UserIdentity]) -> int:
    async with session(database) as orm:
        return (await orm.scalar(select(func.count()).select_from(model))) or 0


async def test_a_subject_keeps_its_user_across_requests_and_processes(
    jwt_app: FastAPI, jwt_client: httpx.AsyncClient, signing_key: SigningKey, database: Database
) -> None:
    token = signing_key.sign(claims("better-auth-user-QeUuAJnj"))
    first = await _create_task(jwt_client, token)
    # Another process knows nothing of this one's cache.
    jwt_app.state.users.forget()
    second = await _create_task(jwt_client, signing_key.sign(claims("better-auth-user-QeUuAJnj")))

    assert first["user_id"] == second["user_id"]
    listed = await jwt_client.get("/api/tasks", headers=bearer(token))
    assert {task["id"] for task in listed.json()} == {first["id"], second["id"]}
    async with session(database) as orm:
        link = await orm.scalar(select(UserIdentity))
    assert link is not None
    assert (link.issuer, link.subject) == (ISSUER, "better-auth-user-QeUuAJnj")
    assert str(link.user_id) == first["user_id"]


async def test_one_subject_cannot_reach_another_subjects_tasks(
    jwt_client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    alice = signing_key.sign(claims("alice"))
    bob = signing_key.sign(claims("bob"))
    task = await _create_task(jwt_client, alice)

    assert (
        await jwt_client.get(f"/api/tasks/{task['id']}", headers=bearer(bob))
    ).status_code == 404
    assert (await jwt_client.get("/api/tasks", headers=bearer(bob))).json() == []
    deleted = await jwt_client.delete(f"/api/tasks/{task['id']}", headers=bearer(bob))
    assert deleted.status_code == 404
    assert (
        await jwt_client.get(f"/api/tasks/{task['id']}", headers=bearer(alice))
    ).status_code == 200


async def test_the_same_subject_at_two_issuers_is_two_users(
    database: Database, app: object
) -> None:
    # `app` empties the tables afterwards.
    here = await user_for_identity(database, "https://auth.example", "user-1")
    there = await user_for_identity(database, "https://other.example", "user-1")
    again = await user_for_identity(database, "https://auth.example", "user-1")

    assert here != there
    assert here == again
    assert await _count(database, User) == 2


async def test_concurrent_first_requests_of_a_subject_make_one_user(
    jwt_client: httpx.AsyncClient, signing_key: SigningKey, database: Database
) -> None:
    token = signing_key.sign(claims("newcomer"))

    tasks = await asyncio.gather(
        *(_create_task(jwt_client, token, f"task {number}") for number in range(20))
    )

    assert len({task["user_id"] for task in tasks}) == 1
    assert await _count(database, User) == 1
    assert await _count(database, UserIdentity) == 1


async def test_concurrent_links_of_a_subject_agree_on_one_user(
    database: Database, app: object
) -> None:
    async def link() -> object:
        return await user_for_identity(database, ISSUER, "racer")

    user_ids = await asyncio.gather(*(link() for _ in range(20)))

    assert len(set(user_ids)) == 1
    async with session(database) as orm:
        users = (await orm.scalars(select(col(User.id)))).all()
    assert users == [user_ids[0]]
