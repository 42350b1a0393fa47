"""Small helpers shared by the tests."""

import asyncio
import socket
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from todo.db import Database

PROBLEM_MEDIA_TYPE = "application/problem+json"


def free_port() -> int:
    """A loopback port nothing listens on now, for a server a test starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with `status`; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    for member in ("type", "title", "detail"):
        assert isinstance(body[member], str)
        assert body[member]
    assert "Traceback" not in response.text
    return body


def parse_timestamp(value: str) -> datetime:
    """An RFC 3339 timestamp in UTC, as the API writes it."""
    assert value.endswith("Z"), value
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() is not None
    assert parsed.utcoffset() == UTC.utcoffset(None)
    return parsed


async def create_task(
    client: httpx.AsyncClient, headers: dict[str, str], **fields: Any
) -> dict[str, Any]:
    body = {"title": "A task", **fields}
    response = await client.post("/api/tasks", json=body, headers=headers)
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def session(database: Database) -> AsyncSession:
    """An ORM session on the test database, for a test to set up or inspect rows.

    The service itself never uses one; its statements run through `Database`.
    """
    return AsyncSession(database.engine, expire_on_commit=False)


async def until_a_backend_waits_on_a_lock(database: Database) -> None:
    """Return once a session on the test database (PostgreSQL) waits on a lock, within 10 s."""
    deadline = time.monotonic() + 10
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    while time.monotonic() < deadline:
        async with database.engine.connect() as connection:
            if await connection.scalar(query):
                return
        await asyncio.sleep(0.01)
    raise AssertionError("no request ever waited on a lock")
