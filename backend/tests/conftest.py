"""Fixtures: every test runs once on SQLite and once on PostgreSQL.

`TEST_DATABASES` (comma-separated: sqlite, postgresql) picks the engines;
`TEST_POSTGRES_URL` names a server where the suite may create and drop its own
databases.
"""

import os
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from todo.config import Settings
from todo.db import Database
from todo.main import create_app

TEST_DATABASES = os.environ.get("TEST_DATABASES", "sqlite,postgresql").split(",")
TEST_POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _postgres_url(database_name: str) -> str:
    base, _, _ = TEST_POSTGRES_URL.rpartition("/")
    return f"{base}/{database_name}"


@pytest.fixture(scope="session", params=TEST_DATABASES)
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("sqlite") / "todo.db"
        yield f"sqlite:///{path}"
        return
    name = f"todo_test_{uuid4().hex[:12]}"
    admin = await asyncpg.connect(TEST_POSTGRES_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield _postgres_url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.create_schema()
    yield database
    await database.dispose()


@pytest.fixture
async def app(database: Database, database_url: str) -> AsyncIterator[FastAPI]:
    yield create_app(Settings(database_url=database_url), database=database)
    # Each test starts from empty tables.
    async with database.engine.begin() as connection:
        if database.dialect == "postgresql":
            await connection.execute(text("TRUNCATE users, tasks, idempotency_keys"))
        else:
            await connection.execute(text("DELETE FROM tasks"))
            await connection.execute(text("DELETE FROM users"))
            await connection.execute(text("DELETE FROM idempotency_keys"))
    database.known_users.clear()


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
