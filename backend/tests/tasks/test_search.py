"""Search: `GET /api/tasks?q=`, a case-insensitive substring of the title or description."""

from typing import Any
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import text

from todo.db import Database

Headers = dict[str, str]


async def _create(client: httpx.AsyncClient, headers: Headers, title: str, **fields: Any) -> str:
    response = await client.post("/api/tasks", json={"title": title, **fields}, headers=headers)
    assert response.status_code == 201
    task_id: str = response.json()["id"]
    return task_id


async def _titles(client: httpx.AsyncClient, headers: Headers, **params: Any) -> list[str]:
    response = await client.get("/api/tasks", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [task["title"] for task in response.json()]


@pytest.mark.parametrize(
    ("stored", "query"),
    [
        ("Buy milk", "MILK"),
        ("école du soir", "ÉCOLE"),
        ("Hauptstraße 5", "STRASSE"),
        ("STRASSE", "straße"),
        ("Ünïcödé", "üNÏCÖDÉ"),
        ("ﬁle the taxes", "file"),
    ],
)
async def test_search_ignores_case_as_unicode_folds_it(
    client: httpx.AsyncClient, headers: Headers, stored: str, query: str
) -> None:
    await _create(client, headers, stored)
    await _create(client, headers, "something else")

    assert await _titles(client, headers, q=query) == [stored]


async def test_search_looks_in_the_description_too(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    await _create(client, headers, "groceries", description="Milk and BREAD")
    await _create(client, headers, "bread")
    await _create(client, headers, "other", description=None)

    assert await _titles(client, headers, q="bread") == ["bread", "groceries"]


@pytest.mark.parametrize("query", ["%", "_", "\\", "50%", "a_b", "c:\\d"])
async def test_like_wildcards_are_plain_characters(
    client: httpx.AsyncClient, headers: Headers, query: str
) -> None:
    for title in ("50% off", "a_b", "c:\\dir", "plain", "axb", "50 off"):
        await _create(client, headers, title)

    found = await _titles(client, headers, q=query)

    assert found
    assert all(query.lower() in title.lower() for title in found)
    assert "plain" not in found


async def test_search_combines_with_status_and_pagination(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    for number in range(7):
        await _create(
            client, headers, f"report {number}", status="completed" if number % 2 else "pending"
        )
    await _create(client, headers, "unrelated")

    seen: list[str] = []
    url: str | None = "/api/tasks?q=REPORT&status=pending&limit=2"
    while url is not None:
        response = await client.get(url, headers=headers)
        seen += [task["title"] for task in response.json()]
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None

    assert seen == ["report 6", "report 4", "report 2", "report 0"]


async def test_search_finds_neither_deleted_nor_other_users_tasks(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    gone = await _create(client, headers, "needle one")
    await client.delete(f"/api/tasks/{gone}", headers=headers)
    await _create(client, {"X-User-ID": str(uuid4())}, "needle two")

    assert await _titles(client, headers, q="needle") == []


async def test_an_edit_is_searchable_at_once(client: httpx.AsyncClient, headers: Headers) -> None:
    task_id = await _create(client, headers, "old name", description="first")
    await client.put(f"/api/tasks/{task_id}", json={"title": "NEW name"}, headers=headers)
    await client.put(f"/api/tasks/{task_id}", json={"description": "Zweite"}, headers=headers)

    assert await _titles(client, headers, q="new") == ["NEW name"]
    assert await _titles(client, headers, q="old") == []
    assert await _titles(client, headers, q="ZWEITE") == ["NEW name"]
    assert await _titles(client, headers, q="first") == []


@pytest.mark.parametrize("query", ["", "x" * 201, "nul\x00"])
async def test_a_query_is_1_to_200_characters_without_nul(
    client: httpx.AsyncClient, headers: Headers, query: str
) -> None:
    response = await client.get("/api/tasks", params={"q": query}, headers=headers)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_trigram_index_serves_the_search_on_postgresql(
    client: httpx.AsyncClient, database: Database, headers: Headers
) -> None:
    if database.dialect != "postgresql":
        # The index is PostgreSQL's (pg_trgm); SQLite searches the user's rows.
        assert await _titles(client, headers, q="x") == []
        return
    user = headers["X-User-ID"]
    await _create(client, headers, "seed the user")
    async with database.engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO tasks (id, user_id, title, title_key, status, created_at, updated_at,"
                " version, change, position) SELECT gen_random_uuid(), :user, 'task ' || n,"
                " 'task ' || n, 'pending', now(), now(), 1, 1, 'V' || n"
                " FROM generate_series(1, 20000) AS n"
            ),
            {"user": user},
        )
        await connection.execute(text("ANALYZE tasks"))
        plan = (
            await connection.execute(
                text(
                    "EXPLAIN SELECT id FROM tasks WHERE user_id = :user AND deleted_at IS NULL"
                    " AND (title_key LIKE :q ESCAPE '\\' OR description_key LIKE :q ESCAPE '\\')"
                    " ORDER BY created_at DESC, id DESC LIMIT 101"
                ),
                {"user": user, "q": "%k 1234%"},
            )
        ).all()
    plan_text = "\n".join(row[0] for row in plan)
    assert "ix_tasks_title_key_trgm" in plan_text, plan_text
    assert await _titles(client, headers, q="K 12345") == ["task 12345"]
