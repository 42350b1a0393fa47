"""Manual order: positions, POST /api/tasks/{id}/move, and the list's sort orders."""

import asyncio
import random
from typing import Any
from uuid import uuid4

import httpx
import pytest

from todo.tasks.positions import MAX_LENGTH, between, first_position, spread

Headers = dict[str, str]


async def _create(client: httpx.AsyncClient, headers: Headers, title: str) -> dict[str, Any]:
    response = await client.post("/api/tasks", json={"title": title}, headers=headers)
    assert response.status_code == 201
    task: dict[str, Any] = response.json()
    return task


async def _move(
    client: httpx.AsyncClient, headers: Headers, task: str, after: str | None, **extra: str
) -> httpx.Response:
    return await client.post(
        f"/api/tasks/{task}/move", json={"after": after}, headers={**headers, **extra}
    )


async def _in_order(client: httpx.AsyncClient, headers: Headers) -> list[dict[str, Any]]:
    response = await client.get(
        "/api/tasks", params={"sort": "position", "limit": 1000}, headers=headers
    )
    assert response.status_code == 200
    tasks: list[dict[str, Any]] = response.json()
    # The order is the positions' plain string order, as a client would sort them.
    assert [task["position"] for task in tasks] == sorted(task["position"] for task in tasks)
    return tasks


async def _titles(client: httpx.AsyncClient, headers: Headers) -> list[str]:
    return [task["title"] for task in await _in_order(client, headers)]


async def test_a_new_task_goes_first(client: httpx.AsyncClient, headers: Headers) -> None:
    for title in ("a", "b", "c"):
        await _create(client, headers, title)

    assert await _titles(client, headers) == ["c", "b", "a"]


async def test_a_move_places_the_task_right_after_another_or_first(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    a, b, c = [await _create(client, headers, title) for title in "abc"]  # order: c b a

    moved = await _move(client, headers, c["id"], a["id"])
    assert moved.status_code == 200
    assert moved.headers["ETag"] == '"2"'
    assert moved.json()["position"] != c["position"]
    assert await _titles(client, headers) == ["b", "a", "c"]

    assert (await _move(client, headers, a["id"], None)).status_code == 200
    assert await _titles(client, headers) == ["a", "b", "c"]

    assert (await _move(client, headers, b["id"], a["id"])).status_code == 200
    assert await _titles(client, headers) == ["a", "b", "c"]

    # And a task created later still goes first.
    await _create(client, headers, "d")
    assert await _titles(client, headers) == ["d", "a", "b", "c"]


async def test_a_move_honours_if_match(client: httpx.AsyncClient, headers: Headers) -> None:
    a = await _create(client, headers, "a")

    stale = await _move(client, headers, a["id"], None, **{"If-Match": '"7"'})
    assert stale.status_code == 412
    fresh = await _move(client, headers, a["id"], None, **{"If-Match": '"1"'})
    assert fresh.status_code == 200


async def test_moves_of_unknown_foreign_or_self_are_refused(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    a = await _create(client, headers, "a")
    theirs = await _create(client, {"X-User-ID": str(uuid4())}, "theirs")
    gone = await _create(client, headers, "gone")
    await client.delete(f"/api/tasks/{gone['id']}", headers=headers)

    for task, after in (
        (str(uuid4()), a["id"]),
        (a["id"], str(uuid4())),
        (theirs["id"], a["id"]),
        (a["id"], theirs["id"]),
        (a["id"], gone["id"]),
        (gone["id"], None),
    ):
        response = await _move(client, headers, task, after)
        assert response.status_code == 404, (task, after)
        assert response.json()["type"] == "urn:todo:problem:task-not-found"

    itself = await _move(client, headers, a["id"], a["id"])
    assert itself.status_code == 422
    assert itself.headers["content-type"] == "application/problem+json"
    for body in ({}, {"after": "x"}, {"after": None, "before": None}):
        response = await client.post(f"/api/tasks/{a['id']}/move", json=body, headers=headers)
        assert response.status_code == 422, body


async def test_positions_stay_short_however_often_a_gap_is_split(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    a, x, y = [await _create(client, headers, title) for title in ("a", "x", "y")]
    await _move(client, headers, a["id"], None)
    cursor = (await client.get("/api/tasks/changes", headers=headers)).json()["cursor"]

    # Each move lands between `a` and the task moved just before: the gap halves.
    for number in range(300):
        moving = (x, y)[number % 2]
        assert (await _move(client, headers, moving["id"], a["id"])).status_code == 200

    tasks = await _in_order(client, headers)
    # The last move (y after a) wins the place right after a.
    assert [task["title"] for task in tasks] == ["a", "y", "x"]
    assert max(len(task["position"]) for task in tasks) <= 64
    # The rebalancing wrote `a` too, as changes in the feed.
    feed = (
        await client.get("/api/tasks/changes", params={"since": cursor}, headers=headers)
    ).json()
    assert {change["task"]["title"] for change in feed["changes"]} == {"a", "x", "y"}


def test_ten_thousand_splits_of_one_gap_never_pass_the_limit() -> None:
    """The rule the service applies, on its own: split, and spread past MAX_LENGTH."""
    change = 10
    order = [first_position(change), spread(change, 1, 3)]
    low, high = order
    for _ in range(10_000):
        change += 1
        new = between(low, high)
        if len(new) > MAX_LENGTH:
            low, new = spread(change, 0, 2), spread(change, 1, 2)
        assert low < new
        assert len(new) <= 64
        high = new


@pytest.mark.parametrize("sort", ["-created_at", "created_at", "-updated_at", "position"])
async def test_every_sort_pages_to_the_end_with_its_own_cursor(
    client: httpx.AsyncClient, headers: Headers, sort: str
) -> None:
    tasks = [await _create(client, headers, f"t{number}") for number in range(7)]
    await client.put(f"/api/tasks/{tasks[2]['id']}", json={"title": "t2!"}, headers=headers)
    await _move(client, headers, tasks[0]["id"], None)

    whole = (await client.get("/api/tasks", params={"sort": sort}, headers=headers)).json()
    paged: list[dict[str, Any]] = []
    url: str | None = f"/api/tasks?sort={sort}&limit=3"
    while url is not None:
        response = await client.get(url, headers=headers)
        assert response.status_code == 200
        paged += response.json()
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None

    assert paged == whole
    assert len(whole) == 7
    key, reverse = sort.lstrip("-"), sort.startswith("-")
    assert [t[key] for t in whole] == sorted((t[key] for t in whole), reverse=reverse)
    if sort == "-updated_at":
        assert whole[0]["title"] == "t0"  # moved last
    if sort == "-created_at":
        # The default, today's order.
        assert whole == (await client.get("/api/tasks", headers=headers)).json()


@pytest.mark.parametrize(
    ("made_for", "used_with"),
    [
        ("-created_at", "created_at"),
        ("created_at", "-created_at"),
        ("-updated_at", "position"),
        ("position", "-updated_at"),
    ],
)
async def test_a_cursor_from_another_sort_is_refused(
    client: httpx.AsyncClient, headers: Headers, made_for: str, used_with: str
) -> None:
    for number in range(3):
        await _create(client, headers, f"t{number}")
    first = await client.get("/api/tasks", params={"sort": made_for, "limit": 1}, headers=headers)
    link = first.headers["Link"]
    cursor = link[link.index("cursor=") + len("cursor=") : link.index(">")]

    response = await client.get(
        "/api/tasks", params={"sort": used_with, "cursor": cursor}, headers=headers
    )

    assert response.status_code == 400
    assert response.json()["type"] == "urn:todo:problem:cursor-sort-mismatch"


async def test_an_unknown_sort_is_a_422(client: httpx.AsyncClient, headers: Headers) -> None:
    response = await client.get("/api/tasks", params={"sort": "title"}, headers=headers)
    assert response.status_code == 422


async def test_concurrent_moves_keep_every_task_in_a_place_of_its_own(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    tasks = [await _create(client, headers, f"t{number}") for number in range(8)]
    ids = [task["id"] for task in tasks]
    rng = random.Random(7)
    moves = []
    for _ in range(40):
        task, after = rng.sample(ids, 2)
        moves.append(_move(client, headers, task, after if rng.random() < 0.8 else None))

    responses = await asyncio.gather(*moves)

    assert {response.status_code for response in responses} == {200}
    final = await _in_order(client, headers)
    assert sorted(task["id"] for task in final) == sorted(ids)
    assert len({task["position"] for task in final}) == len(ids)
