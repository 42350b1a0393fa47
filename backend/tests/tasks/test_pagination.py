"""Keyset pagination: every task exactly once, newest first, across any number of pages."""

import random
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

import httpx
import pytest

from tests.helpers import assert_problem, create_task, session
from todo.db import Database
from todo.db.types import utcnow
from todo.tasks.cursor import Cursor, encode_cursor
from todo.tasks.models import Task
from todo.tasks.positions import spread
from todo.users.service import ensure_user


async def _seed(database: Database, user_id: str, count: int) -> list[Task]:
    """`count` tasks, many sharing a created_at, so that the id must break ties."""
    owner = UUID(user_id)
    start = utcnow() - timedelta(days=1)
    rng = random.Random(7)
    tasks = [
        Task(
            id=uuid4(),
            user_id=owner,
            title=f"task {i}",
            status=rng.choice(["pending", "completed"]),
            created_at=start + timedelta(seconds=i // 3),
            updated_at=start + timedelta(seconds=i // 3),
            position=spread(1, i, count),
        )
        for i in range(count)
    ]
    await ensure_user(database, owner)
    async with session(database) as orm:
        orm.add_all(tasks)
        await orm.commit()
    return sorted(tasks, key=lambda task: (task.created_at, task.id), reverse=True)


def _next_link(response: httpx.Response) -> str | None:
    link: str | None = response.headers.get("link")
    if link is None:
        return None
    target, relation = link.split(";", 1)
    assert relation.strip() == 'rel="next"'
    assert target.startswith("<")
    assert target.endswith(">")
    return target[1:-1]


async def _walk(
    client: httpx.AsyncClient, headers: dict[str, str], url: str
) -> list[list[dict[str, Any]]]:
    pages = []
    next_url: str | None = url
    while next_url is not None:
        response = await client.get(next_url, headers=headers)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        next_url = _next_link(response)
    return pages


async def test_walking_1050_tasks_sees_each_once_in_order(
    client: httpx.AsyncClient, database: Database, headers: dict[str, str], user_id: str
) -> None:
    expected = await _seed(database, user_id, 1050)
    pages = await _walk(client, headers, "/api/tasks")
    assert [len(page) for page in pages] == [100] * 10 + [50]
    seen = [task["id"] for page in pages for task in page]
    assert seen == [str(task.id) for task in expected]


@pytest.mark.parametrize("limit", [1, 7, 1000])
async def test_page_size_is_respected(
    client: httpx.AsyncClient, database: Database, headers: dict[str, str], user_id: str, limit: int
) -> None:
    expected = await _seed(database, user_id, 1050 if limit == 1000 else 20)
    pages = await _walk(client, headers, f"/api/tasks?limit={limit}")
    assert all(len(page) == limit for page in pages[:-1])
    assert 1 <= len(pages[-1]) <= limit
    assert [task["id"] for page in pages for task in page] == [str(t.id) for t in expected]


async def test_next_link_keeps_the_other_query_parameters(
    client: httpx.AsyncClient, database: Database, headers: dict[str, str], user_id: str
) -> None:
    expected = [t for t in await _seed(database, user_id, 300) if t.status == "completed"]
    first = await client.get("/api/tasks?status=completed&limit=25", headers=headers)
    link = _next_link(first)
    assert link is not None
    query = parse_qs(urlsplit(link).query)
    assert query["status"] == ["completed"]
    assert query["limit"] == ["25"]
    assert len(query["cursor"]) == 1
    pages = await _walk(client, headers, "/api/tasks?status=completed&limit=25")
    assert [task["id"] for page in pages for task in page] == [str(t.id) for t in expected]


async def test_exactly_one_full_page_has_no_next_link(
    client: httpx.AsyncClient, database: Database, headers: dict[str, str], user_id: str
) -> None:
    await _seed(database, user_id, 10)
    response = await client.get("/api/tasks?limit=10", headers=headers)
    assert len(response.json()) == 10
    assert "link" not in response.headers


async def test_new_tasks_do_not_shift_later_pages(
    client: httpx.AsyncClient, database: Database, headers: dict[str, str], user_id: str
) -> None:
    expected = await _seed(database, user_id, 30)
    first = await client.get("/api/tasks?limit=10", headers=headers)
    await create_task(client, headers, title="arrived between pages")
    link = _next_link(first)
    assert link is not None
    second = await client.get(link, headers=headers)
    assert [task["id"] for task in second.json()] == [str(t.id) for t in expected[10:20]]


async def test_cursor_of_another_user_reveals_nothing(
    client: httpx.AsyncClient, database: Database, headers: dict[str, str], user_id: str
) -> None:
    await _seed(database, user_id, 5)
    first = await client.get("/api/tasks?limit=2", headers=headers)
    link = _next_link(first)
    assert link is not None
    stranger = {"X-User-ID": str(uuid4())}
    assert (await client.get(link, headers=stranger)).json() == []


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "garbage",
        "!!!",
        "MS4xMi5ub3RoZXg",  # a well-formed token holding a bad id
        encode_cursor(Cursor(utcnow(), uuid4())) + "x",
        "MS45OTk5OTk5OTk5OTk5OTk5OTk5OTk5OS4wMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMA",
    ],
)
async def test_bad_cursor_is_a_422(
    client: httpx.AsyncClient, headers: dict[str, str], cursor: str
) -> None:
    response = await client.get("/api/tasks", params={"cursor": cursor}, headers=headers)
    body = assert_problem(response, 422)
    assert body["errors"][0]["loc"] == ["query", "cursor"]


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=-1", "limit=ten", "status=done"])
async def test_bad_query_parameters_are_a_422(
    client: httpx.AsyncClient, headers: dict[str, str], query: str
) -> None:
    response = await client.get(f"/api/tasks?{query}", headers=headers)
    body = assert_problem(response, 422)
    assert body["errors"][0]["loc"][0] == "query"
