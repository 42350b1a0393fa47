"""Fixtures: every test that uses the database runs once on SQLite and once on PostgreSQL.

The environment variables that choose the servers are in `tests/environment.py`.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.environment import TEST_DATABASES, TEST_POSTGRES_ADMIN_URL, TEST_POSTGRES_URL
from tests.postgres import admin_connection, with_database
from todo.config import Settings
from todo.db import Database
from todo.db.migrate import upgrade
from todo.main import create_app


@dataclass(frozen=True)
class DatabaseUrls:
    app: str
    direct: str

    @property
    def backend(self) -> str:
        return "sqlite" if self.app.startswith("sqlite") else "postgresql"


@pytest.fixture(scope="session", params=TEST_DATABASES)
async def database_urls(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DatabaseUrls]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("sqlite") / "todo.db"
        yield DatabaseUrls(f"sqlite:///{path}", f"sqlite:///{path}")
        return
    name = f"todo_test_{uuid4().hex[:12]}"
    admin = await admin_connection(TEST_POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield DatabaseUrls(
            with_database(TEST_POSTGRES_URL, name), with_database(TEST_POSTGRES_ADMIN_URL, name)
        )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
def database_url(database_urls: DatabaseUrls) -> str:
    return database_urls.app


@pytest.fixture(scope="session")
async def database(database_urls: DatabaseUrls) -> AsyncIterator[Database]:
    # The schema is the migrations' (once per test database), as in production.
    migrator = Database(database_urls.direct, Settings(database_url=database_urls.direct))
    try:
        await upgrade(migrator.engine)
    finally:
        await migrator.dispose()
    database = Database(
        database_urls.app,
        Settings(database_url=database_urls.app, database_url_direct=database_urls.direct),
    )
    yield database
    await database.dispose()


@pytest.fixture
async def empty_tables(database: Database) -> AsyncIterator[None]:
    """Each test starts from empty tables: this empties them after it."""
    yield
    async with database.engine.begin() as connection:
        if database.dialect == "postgresql":
            await connection.execute(
                text("TRUNCATE users, tasks, user_identities, idempotency_keys")
            )
        else:
            await connection.execute(text("DELETE FROM tasks"))
            await connection.execute(text("DELETE FROM user_identities"))
            await connection.execute(text("DELETE FROM users"))
            await connection.execute(text("DELETE FROM idempotency_keys"))


@pytest.fixture
def app(database: Database, database_url: str, empty_tables: None) -> FastAPI:
    return create_app(Settings(database_url=database_url), database=database)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def user_id() -> str:
    return str(uuid4())


@pytest.fixture
def headers(user_id: str) -> dict[str, str]:
    return {"X-User-ID": user_id}
