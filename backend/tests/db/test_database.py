import logging
from uuid import uuid4

import httpx
import pytest

from todo.db import Database
from todo.db.database import async_database_url

NEON = "postgresql://u:p@ep-x-123.eu-central-1.aws.neon.tech/db?sslmode=require"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db.example.com/app", "postgresql+asyncpg://u:***@db.example.com/app"),
        (
            "postgres://u:p@db.example.com:6543/app",
            "postgresql+asyncpg://u:***@db.example.com:6543/app",
        ),
        ("postgresql+asyncpg://u@h/app", "postgresql+asyncpg://u@h/app"),
        ("postgresql+psycopg2://u@h/app", "postgresql+asyncpg://u@h/app"),
        ("sqlite:///var/todo.db", "sqlite+aiosqlite:///var/todo.db"),
        ("sqlite+aiosqlite:////tmp/todo.db", "sqlite+aiosqlite:////tmp/todo.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ],
)
def test_plain_urls_get_the_async_driver(given: str, expected: str) -> None:
    assert str(async_database_url(given)) == expected


def test_unsupported_database_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="mysql"):
        async_database_url("mysql://u@h/app")


async def test_what_the_url_asks_for_and_cannot_get_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="todo.db"):
        database = Database(NEON + "&channel_binding=require&keepalives_idle=30")
    await database.dispose()

    warnings = [record.getMessage() for record in caplog.records]
    assert warnings == [
        "database URL: ignoring channel_binding=require, keepalives_idle=30: "
        "asyncpg has no equivalent"
    ]
    assert "u:p" not in caplog.text


async def test_a_connection_that_cannot_roll_back_is_discarded_and_the_answer_kept(
    client: httpx.AsyncClient, database: Database, headers: dict[str, str]
) -> None:
    # As after the server dropped a connection in the middle of a statement.
    def refuse_rollback(sql: str) -> None:
        if sql == "ROLLBACK":
            raise RuntimeError("cannot switch state; another operation is in progress")

    database.listeners.append(refuse_rollback)
    try:
        # A keyed toggle of a missing task rolls its transaction back.
        response = await client.patch(
            f"/api/tasks/{uuid4()}/complete", headers={**headers, "Idempotency-Key": "k"}
        )
    finally:
        database.listeners.remove(refuse_rollback)

    assert response.status_code == 404, response.text
    assert database.pool_checked_out() == 0
    assert (await client.get("/api/tasks", headers=headers)).status_code == 200
