"""The migrations own the schema: they build exactly the models' tables, and undo them."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from tests.conftest import DatabaseUrls
from tests.environment import TEST_POSTGRES_ADMIN_URL
from tests.postgres import admin_connection, with_database
from todo import tables as _tables  # noqa: F401  (registers every table)
from todo.config import Settings
from todo.db import Database
from todo.db.metadata import metadata
from todo.db.migrate import context_options, downgrade, upgrade
from todo.db.types import UTCDateTime

_USERS = sa.table(
    "users",
    sa.column("id", sa.Uuid()),
    sa.column("email", sa.String()),
    sa.column("created_at", UTCDateTime()),
)
# The tasks table as revision 0006 leaves it (the columns a row needs).
_TASKS_0006 = sa.table(
    "tasks",
    *(sa.column(name, sa.String()) for name in ("title", "title_key", "status")),
    sa.column("id", sa.Uuid()),
    sa.column("user_id", sa.Uuid()),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
)


def schema_differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts=context_options(connection.dialect.name))
    return list(compare_metadata(context, metadata))


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_the_migrated_schema_matches_the_models(database: Database) -> None:
    async with database.engine.connect() as connection:
        differences = await connection.run_sync(schema_differences)

    assert differences == []


@pytest.fixture
async def empty_database(database_urls: DatabaseUrls, tmp_path: Path) -> AsyncIterator[Database]:
    if database_urls.backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.db'}"
        database = Database(url, Settings(database_url=url))
        yield database
        await database.dispose()
        return
    name = f"todo_test_{uuid4().hex[:12]}"
    admin = await admin_connection(TEST_POSTGRES_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(TEST_POSTGRES_ADMIN_URL, name)
    database = Database(url, Settings(database_url=url))
    try:
        yield database
    finally:
        await database.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_upgrade_downgrade_and_upgrade_again(empty_database: Database) -> None:
    engine = empty_database.engine

    await upgrade(engine)
    async with engine.connect() as connection:
        assert await connection.run_sync(table_names) == {"alembic_version", *metadata.tables}

    await downgrade(engine, "base")
    async with engine.connect() as connection:
        assert await connection.run_sync(table_names) == {"alembic_version"}

    await upgrade(engine)
    async with engine.connect() as connection:
        assert await connection.run_sync(table_names) == {"alembic_version", *metadata.tables}
        assert await connection.run_sync(schema_differences) == []


async def test_existing_tasks_get_positions_in_todays_order(empty_database: Database) -> None:
    engine = empty_database.engine
    await upgrade(engine, "0006")
    user = uuid4()
    titles = {"oldest": "2026-01-01", "middle": "2026-02-01", "newest": "2026-03-01"}
    async with engine.begin() as connection:
        await connection.execute(
            sa.insert(_USERS),
            {
                "id": user,
                "email": f"{user}@example.com",
                "created_at": datetime(2026, 1, 1, tzinfo=UTC),
            },
        )
        for title, day in titles.items():
            at = datetime.fromisoformat(day).replace(tzinfo=UTC)
            await connection.execute(
                sa.insert(_TASKS_0006),
                {
                    "id": uuid4(),
                    "user_id": user,
                    "title": title,
                    "title_key": title,
                    "status": "pending",
                    "created_at": at,
                    "updated_at": at,
                },
            )

    await upgrade(engine)

    async with engine.connect() as connection:
        rows = (await connection.execute(sa.text("SELECT title, position FROM tasks"))).all()
    in_order = [title for title, _ in sorted(rows, key=lambda row: row[1])]
    assert in_order == ["newest", "middle", "oldest"]
