"""The migrations own the schema: they build exactly the models' tables, and undo them."""

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest
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
