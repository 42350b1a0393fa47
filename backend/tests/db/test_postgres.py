import asyncio
import re
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from tests.conftest import DatabaseUrls
from tests.environment import only_on
from todo.config import Settings
from todo.db import Database, planned_each_time
from todo.db.postgres import (
    SERVER_TIMEOUT_FIRST_SECONDS,
    client_statement_timeout,
    uses_transaction_pooling,
)
from todo.db.postgres_pool import ping_due
from todo.db.urls import parse_database_url

NEON = "postgresql://u:p@ep-x-123.eu-central-1.aws.neon.tech/db?sslmode=require"


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


async def connect_arguments(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the service's pool hands `asyncpg.connect()` for a new connection, and
    what the engine (migrations, the tests' sessions) hands SQLAlchemy's dialect.
    """
    pool: dict[str, Any] = {}
    engine: dict[str, Any] = {}
    connect = asyncpg.connect

    async def capture(*args: Any, **kwargs: Any) -> Any:
        if not pool:
            # The pool's first connection (the engine's, later, connects through here too).
            pool.update(kwargs)
        return await connect(*args, **kwargs)

    monkeypatch.setattr(asyncpg, "connect", capture)
    await database.fetch(text("SELECT 1"))

    @event.listens_for(database.engine.sync_engine, "do_connect")
    def _capture(_dialect: Any, _record: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        engine.update(kwargs)

    async with database.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    return pool, engine


@only_on("postgresql")
async def test_under_transaction_pooling_nothing_is_cached_or_named_twice(
    database_urls: DatabaseUrls, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=database_urls.app, database_pool_mode="transaction")
    database = Database(database_urls.app, settings)
    try:
        pool, engine = await connect_arguments(database, monkeypatch)
    finally:
        await database.dispose()

    # PgBouncer gives each transaction whichever server connection is free: a
    # statement cached by name on one is missing on the next, or clashes there.
    assert pool["statement_cache_size"] == engine["statement_cache_size"] == 0
    assert engine["prepared_statement_cache_size"] == 0
    names = {engine["prepared_statement_name_func"]() for _ in range(100)}
    assert len(names) == 100
    assert all(re.fullmatch(r"__asyncpg_[0-9a-f]{32}__", name) for name in names)
    # PgBouncer refuses startup parameters it does not track (jit, ...).
    assert "server_settings" not in pool
    assert "server_settings" not in engine
    # Those two are SQLAlchemy's; asyncpg itself would refuse them.
    assert "prepared_statement_cache_size" not in pool
    assert "prepared_statement_name_func" not in pool


@only_on("postgresql")
async def test_under_transaction_pooling_a_read_runs_alone_and_a_write_in_a_transaction(
    database_urls: DatabaseUrls,
) -> None:
    # Behind PgBouncer (`make test-pgbouncer`) more reads run at once than it has server
    # connections, each its own statement: a Bind that reached another server connection
    # than its Parse would fail, or answer another statement's question.
    settings = Settings(database_url=database_urls.app, database_pool_mode="transaction")
    database = Database(database_urls.app, settings)
    sent: list[str] = []
    database.listeners.append(sent.append)
    try:
        answers = await asyncio.gather(
            *(
                database.fetch(
                    text(f"SELECT CAST(:value AS integer) + {n}"), {"value": n}, repeatable=True
                )
                for n in range(200)
            )
        )
        assert answers == [[(2 * n,)] for n in range(200)]
        # Each read alone; the runner announces every statement it sends, BEGIN aside.
        assert sorted(sent) == sorted(f"SELECT CAST($1 AS integer) + {n}" for n in range(200))

        sent.clear()
        assert await database.fetch(text("SELECT 1"), repeatable=False) == [(1,)]
        assert sent == ["SELECT 1", "COMMIT"]
    finally:
        await database.dispose()


@only_on("postgresql")
async def test_a_direct_connection_keeps_asyncpgs_statement_cache(
    database_urls: DatabaseUrls, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=database_urls.direct, database_pool_mode="session")
    database = Database(database_urls.direct, settings)
    try:
        pool, engine = await connect_arguments(database, monkeypatch)
    finally:
        await database.dispose()

    url = make_url(database_urls.direct)
    assert (pool["host"], pool["port"], pool["database"]) == (url.host, url.port, url.database)
    for arguments in (pool, engine):
        assert "statement_cache_size" not in arguments
        assert "prepared_statement_name_func" not in arguments
        assert arguments["timeout"] == settings.database_connect_timeout
        # The server's statement timeout fires first, so a cut-off write never lands later.
        assert arguments["server_settings"]["statement_timeout"] == "10000"
    assert engine["command_timeout"] == (
        settings.database_command_timeout + SERVER_TIMEOUT_FIRST_SECONDS
    )
    # The pool's statements are bounded by the runner, by the same limit (todo.db.deadlines).
    assert "command_timeout" not in pool
    assert client_statement_timeout(parse_database_url(database_urls.direct), settings) == (
        settings.database_command_timeout + SERVER_TIMEOUT_FIRST_SECONDS
    )


@only_on("postgresql")
async def test_a_statement_planned_each_time_is_never_kept_for_a_generic_plan(
    database_urls: DatabaseUrls,
) -> None:
    # With the statement cache of a direct connection, PostgreSQL settles a kept
    # statement on a generic plan after five executions; one planned each time is
    # sent unnamed and planned for its values every time.
    settings = Settings(database_url=database_urls.direct, database_pool_mode="session")
    database = Database(database_urls.direct, settings)
    kept = text("SELECT CAST(:value AS integer) + 1")
    planned = planned_each_time(text("SELECT CAST(:value AS integer) + 2"))
    try:
        async with database.transaction() as transaction:
            for value in range(8):
                assert await transaction.fetch(kept, {"value": value}) == [(value + 1,)]
                assert await transaction.fetch(planned, {"value": value}) == [(value + 2,)]
            for value in range(8):
                assert await database.fetch(planned, {"value": value}) == [(value + 2,)]
            prepared = await transaction.fetch(
                text("SELECT statement, generic_plans FROM pg_prepared_statements")
            )
    finally:
        await database.dispose()

    plans: dict[str, int] = dict(prepared)  # type: ignore[arg-type]
    assert plans["SELECT CAST($1 AS integer) + 1"] >= 1
    assert not [statement for statement in plans if "+ 2" in statement]


def test_a_connection_is_pinged_unless_it_was_just_fresh_or_just_given_back() -> None:
    # Never given back: fresh.
    assert not ping_due(None, now=100.0, idle_seconds=0.5)
    assert not ping_due(99.8, now=100.0, idle_seconds=0.5)
    assert ping_due(99.5, now=100.0, idle_seconds=0.5)
    assert ping_due(100.0, now=100.0, idle_seconds=0)
