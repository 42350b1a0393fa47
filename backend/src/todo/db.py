"""Engine and sessions for whichever database `DATABASE_URL` names."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import SQLModel

from todo.auth.base import Subject

SQLITE_BUSY_TIMEOUT_MS = 30_000
KNOWN_USERS_LIMIT = 100_000

_POSTGRES_NAMES = {"postgres", "postgresql"}


def async_database_url(raw_url: str) -> URL:
    """The URL with the async driver this service ships for its database.

    Providers hand out `postgresql://...` (or `postgres://...`) and people write
    `sqlite:///file.db`; both are accepted as they are.
    """
    url = make_url(raw_url)
    backend = url.drivername.split("+", 1)[0]
    if backend in _POSTGRES_NAMES:
        return url.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    raise ValueError(f"unsupported database {backend!r}: use a postgresql:// or sqlite:// URL")


def _configure_sqlite(engine: AsyncEngine) -> None:
    database = engine.url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin,
        # so a transaction covers its reads too.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        # Concurrent writers wait for the lock instead of failing with
        # "database is locked".
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")


class Database:
    """One engine, its session factory, and the users known to exist in it."""

    def __init__(self, raw_url: str) -> None:
        url = async_database_url(raw_url)
        options: dict[str, Any] = {}
        if url.get_backend_name() == "postgresql":
            options.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine = create_async_engine(url, **options)
        if url.get_backend_name() == "sqlite":
            _configure_sqlite(self.engine)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # Users this process has already made sure of, so that only a user's
        # first request pays for the upsert.
        self.known_users: set[UUID] = set()
        # The same for token subjects, with the user each is linked to.
        self.known_identities: dict[Subject, UUID] = {}

    def remember_user(self, user_id: UUID) -> None:
        if len(self.known_users) >= KNOWN_USERS_LIMIT:
            self.known_users.clear()
        self.known_users.add(user_id)

    def remember_identity(self, subject: Subject, user_id: UUID) -> None:
        if len(self.known_identities) >= KNOWN_USERS_LIMIT:
            self.known_identities.clear()
        self.known_identities[subject] = user_id

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def create_schema(self) -> None:
        async with self.engine.begin() as connection:
            await connection.run_sync(SQLModel.metadata.create_all)

    async def dispose(self) -> None:
        await self.engine.dispose()


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_database(request).sessionmaker() as session:
        yield session


DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
