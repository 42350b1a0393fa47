"""Writes that race: each one counts, none is lost, none is a 500."""

import asyncio

import httpx

from tests.helpers import create_task, parse_timestamp


async def test_concurrent_toggles_each_flip_the_task_once(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    task = await create_task(client, headers)
    path = f"/api/tasks/{task['id']}/complete"
    for toggles in (7, 10):
        before = (await client.get(f"/api/tasks/{task['id']}", headers=headers)).json()
        responses = await asyncio.gather(
            *(client.patch(path, headers=headers) for _ in range(toggles))
        )
        assert {response.status_code for response in responses} == {200}
        # Each toggle saw a different state: as many of each as a serial run.
        statuses = sorted(response.json()["status"] for response in responses)
        assert statuses.count("completed") in {toggles // 2, (toggles + 1) // 2}
        after = (await client.get(f"/api/tasks/{task['id']}", headers=headers)).json()
        flipped = {"pending": "completed", "completed": "pending"}
        expected = before["status"] if toggles % 2 == 0 else flipped[before["status"]]
        assert after["status"] == expected
        stamps = sorted(parse_timestamp(response.json()["updated_at"]) for response in responses)
        assert len(set(stamps)) == toggles
        assert stamps[0] > parse_timestamp(before["updated_at"])
        assert parse_timestamp(after["updated_at"]) == stamps[-1]


async def test_concurrent_creates_all_land(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    responses = await asyncio.gather(
        *(client.post("/api/tasks", json={"title": f"t{i}"}, headers=headers) for i in range(25))
    )
    assert {response.status_code for response in responses} == {201}
    listed = await client.get("/api/tasks", headers=headers)
    assert {task["title"] for task in listed.json()} == {f"t{i}" for i in range(25)}


async def test_concurrent_updates_and_deletes_never_500(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    task = await create_task(client, headers)
    path = f"/api/tasks/{task['id']}"
    requests = [client.put(path, json={"title": f"v{i}"}, headers=headers) for i in range(8)]
    requests.append(client.delete(path, headers=headers))
    requests += [client.patch(path + "/complete", headers=headers) for _ in range(4)]
    responses = await asyncio.gather(*requests)
    assert {response.status_code for response in responses} <= {200, 204, 404}
    assert (await client.get(path, headers=headers)).status_code == 404
