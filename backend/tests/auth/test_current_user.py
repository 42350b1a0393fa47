"""The X-User-ID header: who is calling, checked before anything else."""

import httpx
import pytest

from tests.helpers import assert_problem

SOME_TASK = "/api/tasks/6f1c3c1e-0000-4000-8000-000000000000"
OPERATIONS = [
    ("GET", "/api/tasks", None),
    ("POST", "/api/tasks", {"title": "x"}),
    ("GET", SOME_TASK, None),
    ("PUT", SOME_TASK, {"title": "x"}),
    ("PATCH", SOME_TASK + "/complete", None),
    ("DELETE", SOME_TASK, None),
]
BAD_HEADERS = [
    pytest.param(None, id="missing"),
    pytest.param("", id="empty"),
    pytest.param("   ", id="blank"),
    pytest.param("not-a-uuid", id="garbage"),
    pytest.param("123e4567e89b12d3a456426614174000", id="no-hyphens"),
    pytest.param("{123e4567-e89b-12d3-a456-426614174000}", id="braces"),
    pytest.param("urn:uuid:123e4567-e89b-12d3-a456-426614174000", id="urn"),
    pytest.param("123e4567-e89b-12d3-a456-42661417400", id="short"),
    pytest.param("123e4567-e89b-12d3-a456-4266141740000", id="long"),
    pytest.param("g23e4567-e89b-12d3-a456-426614174000", id="non-hex"),
]


@pytest.mark.parametrize(("method", "path", "body"), OPERATIONS)
@pytest.mark.parametrize("user_header", BAD_HEADERS)
async def test_bad_user_header_is_a_400_on_every_task_operation(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, str] | None,
    user_header: str | None,
) -> None:
    headers = {} if user_header is None else {"X-User-ID": user_header}
    response = await client.request(method, path, json=body, headers=headers)
    problem = assert_problem(response, 400)
    assert "X-User-ID" in problem["detail"]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"title": ""}', "application/json"),
        (b'{"unknown": 1}', "application/json"),
        (b"{broken", "application/json"),
        (b'{"title": "x"}', "text/plain"),
    ],
)
async def test_user_header_is_checked_before_the_body(
    client: httpx.AsyncClient, content: bytes, content_type: str
) -> None:
    response = await client.post(
        "/api/tasks", content=content, headers={"Content-Type": content_type}
    )
    assert_problem(response, 400)


async def test_user_header_is_checked_before_the_path(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/tasks/not-a-uuid")
    assert_problem(response, 400)


async def test_user_header_is_checked_before_the_query(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/tasks?limit=0", headers={"X-User-ID": "nope"})
    assert_problem(response, 400)


async def test_any_letter_case_is_one_user_and_comes_back_lowercase(
    client: httpx.AsyncClient,
) -> None:
    upper = {"X-User-ID": "ABCDEF01-2345-4678-9ABC-DEF012345678"}
    lower = {"X-User-ID": "abcdef01-2345-4678-9abc-def012345678"}
    created = await client.post("/api/tasks", json={"title": "x"}, headers=upper)
    assert created.status_code == 201
    assert created.json()["user_id"] == "abcdef01-2345-4678-9abc-def012345678"
    listed = await client.get("/api/tasks", headers=lower)
    assert [task["id"] for task in listed.json()] == [created.json()["id"]]
