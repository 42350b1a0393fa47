"""Each rule on a task's fields, at and past its boundary, on create and update."""

from typing import Any

import httpx
import pytest

from tests.helpers import assert_problem, create_task

VALID_TITLES = [
    pytest.param("x", "x", id="one-char"),
    pytest.param("t" * 200, "t" * 200, id="200-chars"),
    pytest.param("  padded\t ", "padded", id="trimmed"),
    pytest.param(" " + "t" * 200 + "\n", "t" * 200, id="200-after-trim"),
    pytest.param("Überweisung 💸 日本", "Überweisung 💸 日本", id="unicode"),
    pytest.param("😀" * 200, "😀" * 200, id="200-astral-chars"),
]
INVALID_TITLES = [
    pytest.param("", id="empty"),
    pytest.param("   \t\n", id="blank"),
    pytest.param("t" * 201, id="201-chars"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\nb", id="newline"),
    pytest.param("a\tb", id="tab"),
    pytest.param("a\x1bb", id="escape"),
    pytest.param("a\x7fb", id="delete"),
    pytest.param("a\x85b", id="c1-control"),
    pytest.param(None, id="null"),
    pytest.param(5, id="number"),
    pytest.param(["x"], id="list"),
]
VALID_DESCRIPTIONS = [
    pytest.param(None, id="null"),
    pytest.param("", id="empty"),
    pytest.param("d" * 2000, id="2000-chars"),
    pytest.param("line one\nline two\ttabbed", id="multiline"),
]
INVALID_DESCRIPTIONS = [
    pytest.param("d" * 2001, id="2001-chars"),
    pytest.param("a\x00b", id="nul"),
    pytest.param(3, id="number"),
]


async def _post_raw(client: httpx.AsyncClient, headers: dict[str, str], raw: str) -> httpx.Response:
    return await client.post(
        "/api/tasks",
        content=raw.encode(),
        headers={**headers, "Content-Type": "application/json"},
    )


def _pointers(problem: dict[str, Any]) -> set[str]:
    return {error["pointer"] for error in problem["errors"]}


@pytest.mark.parametrize(("title", "stored"), VALID_TITLES)
async def test_valid_titles_are_stored_trimmed(
    client: httpx.AsyncClient, headers: dict[str, str], title: str, stored: str
) -> None:
    task = await create_task(client, headers, title=title)
    assert task["title"] == stored
    fetched = await client.get(f"/api/tasks/{task['id']}", headers=headers)
    assert fetched.json()["title"] == stored


@pytest.mark.parametrize("title", INVALID_TITLES)
async def test_invalid_titles_are_refused(
    client: httpx.AsyncClient, headers: dict[str, str], title: object
) -> None:
    response = await client.post("/api/tasks", json={"title": title}, headers=headers)
    assert _pointers(assert_problem(response, 422)) == {"#/title"}
    assert (await client.get("/api/tasks", headers=headers)).json() == []


@pytest.mark.parametrize("title", INVALID_TITLES)
async def test_invalid_titles_are_refused_on_update(
    client: httpx.AsyncClient, headers: dict[str, str], title: object
) -> None:
    task = await create_task(client, headers, title="Before")
    response = await client.put(f"/api/tasks/{task['id']}", json={"title": title}, headers=headers)
    assert _pointers(assert_problem(response, 422)) == {"#/title"}
    assert (await client.get(f"/api/tasks/{task['id']}", headers=headers)).json() == task


@pytest.mark.parametrize("description", VALID_DESCRIPTIONS)
async def test_valid_descriptions_round_trip(
    client: httpx.AsyncClient, headers: dict[str, str], description: str | None
) -> None:
    task = await create_task(client, headers, description=description)
    assert task["description"] == description
    fetched = await client.get(f"/api/tasks/{task['id']}", headers=headers)
    assert fetched.json()["description"] == description


@pytest.mark.parametrize("description", INVALID_DESCRIPTIONS)
async def test_invalid_descriptions_are_refused(
    client: httpx.AsyncClient, headers: dict[str, str], description: object
) -> None:
    response = await client.post(
        "/api/tasks", json={"title": "x", "description": description}, headers=headers
    )
    assert _pointers(assert_problem(response, 422)) == {"#/description"}


@pytest.mark.parametrize(
    ("field", "raw_value"),
    [
        ("title", r'"\ud800"'),
        ("title", r'"ok \udfff"'),
        ("description", r'"\ud83d alone"'),
    ],
)
async def test_unpaired_surrogates_are_refused(
    client: httpx.AsyncClient, headers: dict[str, str], field: str, raw_value: str
) -> None:
    other = '"title": "fine", ' if field == "description" else ""
    response = await _post_raw(client, headers, f'{{{other}"{field}": {raw_value}}}')
    assert _pointers(assert_problem(response, 422)) == {f"#/{field}"}
    assert (await client.get("/api/tasks", headers=headers)).json() == []


async def test_surrogate_pairs_written_as_escapes_are_fine(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await _post_raw(client, headers, r'{"title": "\ud83d\ude00"}')
    assert response.status_code == 201
    assert response.json()["title"] == "😀"


async def test_unpaired_surrogate_in_a_field_name_is_a_problem_not_a_crash(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await _post_raw(client, headers, r'{"title": "x", "\ud800": 1}')
    assert_problem(response, 422)
    response.content.decode("utf-8")


@pytest.mark.parametrize("status", ["pending", "completed"])
async def test_status_can_be_set_on_create(
    client: httpx.AsyncClient, headers: dict[str, str], status: str
) -> None:
    assert (await create_task(client, headers, status=status))["status"] == status


@pytest.mark.parametrize("status", ["done", "PENDING", "", None, 1])
async def test_invalid_status_is_refused(
    client: httpx.AsyncClient, headers: dict[str, str], status: object
) -> None:
    response = await client.post(
        "/api/tasks", json={"title": "x", "status": status}, headers=headers
    )
    assert _pointers(assert_problem(response, 422)) == {"#/status"}


@pytest.mark.parametrize(
    "field", ["id", "user_id", "created_at", "updated_at", "owner", "completed"]
)
async def test_server_fields_and_unknown_fields_are_refused(
    client: httpx.AsyncClient, headers: dict[str, str], field: str
) -> None:
    value = "6f1c3c1e-0000-4000-8000-000000000000"
    response = await client.post("/api/tasks", json={"title": "x", field: value}, headers=headers)
    assert _pointers(assert_problem(response, 422)) == {f"#/{field}"}
    task = await create_task(client, headers)
    response = await client.put(f"/api/tasks/{task['id']}", json={field: value}, headers=headers)
    assert _pointers(assert_problem(response, 422)) == {f"#/{field}"}
    assert (await client.get(f"/api/tasks/{task['id']}", headers=headers)).json() == task


async def test_title_is_required_on_create(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.post("/api/tasks", json={"description": "no title"}, headers=headers)
    assert _pointers(assert_problem(response, 422)) == {"#/title"}


@pytest.mark.parametrize("body", [[], "title", 1, None])
async def test_body_must_be_an_object(
    client: httpx.AsyncClient, headers: dict[str, str], body: object
) -> None:
    response = await client.post("/api/tasks", json=body, headers=headers)
    assert_problem(response, 422)


async def test_missing_body_is_refused(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.post("/api/tasks", headers=headers)
    assert_problem(response, 422)


async def test_empty_update_is_refused(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    task = await create_task(client, headers)
    response = await client.put(f"/api/tasks/{task['id']}", json={}, headers=headers)
    assert_problem(response, 422)
    assert (await client.get(f"/api/tasks/{task['id']}", headers=headers)).json() == task


@pytest.mark.parametrize("field", ["status", "title"])
async def test_null_cannot_clear_a_required_field(
    client: httpx.AsyncClient, headers: dict[str, str], field: str
) -> None:
    task = await create_task(client, headers)
    response = await client.put(f"/api/tasks/{task['id']}", json={field: None}, headers=headers)
    assert _pointers(assert_problem(response, 422)) == {f"#/{field}"}
