import logging
import re
from typing import Any

import pytest
from sqlalchemy import event, text

from tests.conftest import DatabaseUrls
from tests.environment import only_on
from todo.config import Settings
from todo.db import Database, async_database_url, uses_transaction_pooling
from todo.dburl import parse_database_url

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


@pytest.mark.parametrize(
    ("url", "mode", "expected"),
    [
        (NEON, "auto", False),
        (NEON.replace("ep-x-123.", "ep-x-123-pooler."), "auto", True),
        (NEON.replace("ep-x-123.", "ep-x-123-pooler."), "session", False),
        ("postgresql://u@127.0.0.1:6432/db", "transaction", True),
        ("sqlite:///todo.db", "transaction", False),
    ],
)
def test_transaction_pooling_is_assumed_for_neon_poolers_or_when_told(
    url: str, mode: str, expected: bool
) -> None:
    settings = Settings(database_url=url, database_pool_mode=mode)
    assert uses_transaction_pooling(parse_database_url(url), settings) is expected


async def asyncpg_connect_arguments(database: Database) -> dict[str, Any]:
    """What the engine hands `asyncpg.connect()` for a new connection."""
    captured: dict[str, Any] = {}

    @event.listens_for(database.engine.sync_engine, "do_connect")
    def _capture(_dialect: Any, _record: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        captured.update(kwargs)

    async with database.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    return captured


@only_on("postgresql")
async def test_under_transaction_pooling_nothing_is_cached_or_named_twice(
    database_urls: DatabaseUrls,
) -> None:
    settings = Settings(database_url=database_urls.app, database_pool_mode="transaction")
    database = Database(database_urls.app, settings)
    try:
        arguments = await asyncpg_connect_arguments(database)
    finally:
        await database.dispose()

    # PgBouncer gives each transaction whichever server connection is free: a
    # statement cached by name on one is missing on the next, or clashes there.
    assert arguments["statement_cache_size"] == 0
    assert arguments["prepared_statement_cache_size"] == 0
    names = {arguments["prepared_statement_name_func"]() for _ in range(100)}
    assert len(names) == 100
    assert all(re.fullmatch(r"__asyncpg_[0-9a-f]{32}__", name) for name in names)
    # PgBouncer refuses startup parameters it does not track (jit, ...).
    assert "server_settings" not in arguments


@only_on("postgresql")
async def test_a_direct_connection_keeps_asyncpgs_statement_cache(
    database_urls: DatabaseUrls,
) -> None:
    settings = Settings(database_url=database_urls.direct, database_pool_mode="session")
    database = Database(database_urls.direct, settings)
    try:
        arguments = await asyncpg_connect_arguments(database)
    finally:
        await database.dispose()

    assert "statement_cache_size" not in arguments
    assert "prepared_statement_name_func" not in arguments
    assert arguments["timeout"] == settings.database_connect_timeout
    assert arguments["command_timeout"] == settings.database_command_timeout
