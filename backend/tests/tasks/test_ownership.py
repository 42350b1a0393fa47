"""Another user's task does not exist, for every operation, and stays untouched."""

from uuid import uuid4

import httpx

from tests.helpers import assert_problem, create_task


async def test_other_users_task_is_a_404_and_left_untouched(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    task = await create_task(client, headers, title="Mine", description="private")
    intruder = {"X-User-ID": str(uuid4())}
    path = f"/api/tasks/{task['id']}"

    responses = [
        await client.get(path, headers=intruder),
        await client.put(path, json={"title": "Stolen"}, headers=intruder),
        await client.patch(path + "/complete", headers=intruder),
        await client.delete(path, headers=intruder),
    ]
    for response in responses:
        assert_problem(response, 404)
    # The same problem as for a task that does not exist: nothing is revealed.
    assert {response.json()["type"] for response in responses} == {
        "urn:todo:problem:task-not-found"
    }

    assert (await client.get(path, headers=headers)).json() == task
    assert (await client.get("/api/tasks", headers=intruder)).json() == []


async def test_users_see_only_their_own_tasks(client: httpx.AsyncClient) -> None:
    alice, bob = {"X-User-ID": str(uuid4())}, {"X-User-ID": str(uuid4())}
    alices = {(await create_task(client, alice, title=f"a{i}"))["id"] for i in range(3)}
    bobs = {(await create_task(client, bob, title=f"b{i}"))["id"] for i in range(2)}
    assert {task["id"] for task in (await client.get("/api/tasks", headers=alice)).json()} == alices
    assert {task["id"] for task in (await client.get("/api/tasks", headers=bob)).json()} == bobs
