"""Engine and sessions for whichever database `DATABASE_URL` names."""

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import Depends, Request
from sqlalchemy import event, exc, text
from sqlalchemy.engine import URL
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from todo.config import Settings
from todo.dbsqlite import configure_sqlite
from todo.dburl import DatabaseTarget, parse_database_url
from todo.outages import DatabaseUnavailableError, Outage, as_service_error
from todo.replay import mark_replayable

KNOWN_USERS_LIMIT = 100_000
# A pooled connection gets this long to answer a ping before it is replaced.
# Behind PgBouncer a ping may queue for a server connection, and a busy pool is
# no sign of a dead connection: there it gets the connect timeout instead.
PING_TIMEOUT_SECONDS = 0.5
# Beyond the connect timeout, what taking a connection may spend on waiting for
# the pool and pinging: a request never waits longer than the two together.
ACQUIRE_GRACE_SECONDS = 0.5

COMMIT_SENT = "todo.commit_sent"

logger = logging.getLogger("todo.db")


class _CommitTrackingSession(Session):
    """A Session that notes when it has asked the database to commit."""


@event.listens_for(_CommitTrackingSession, "before_commit")
def _note_commit(session: Session) -> None:
    # Flush first, so that from here on a failure can only be the COMMIT itself.
    session.flush()
    session.info[COMMIT_SENT] = True


@event.listens_for(_CommitTrackingSession, "after_commit")
def _note_commit_done(session: Session) -> None:
    # Acknowledged: a later failure in the same request is about later work.
    session.info.pop(COMMIT_SENT, None)


def async_database_url(raw_url: str) -> URL:
    """The URL with the async driver this service ships for its database."""
    return parse_database_url(raw_url).url


def uses_transaction_pooling(target: DatabaseTarget, settings: Settings) -> bool:
    if target.backend != "postgresql":
        return False
    if settings.database_pool_mode == "auto":
        return target.is_pooler
    return settings.database_pool_mode == "transaction"


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid4().hex}__"


def _connect_timeout(target: DatabaseTarget, settings: Settings) -> float:
    return target.connect_timeout or settings.database_connect_timeout


def _create_postgres_engine(target: DatabaseTarget, settings: Settings) -> AsyncEngine:
    pooled = uses_transaction_pooling(target, settings)
    connect_args: dict[str, Any] = {
        "timeout": _connect_timeout(target, settings),
        "command_timeout": settings.database_command_timeout,
        **target.connect_args,
    }
    if pooled:
        # PgBouncer hands each transaction whichever server connection is free:
        # a statement prepared under a name in one transaction is missing (or
        # taken) in the next, so nothing is cached and every name is unique.
        connect_args.update(
            prepared_statement_cache_size=0,
            statement_cache_size=0,
            prepared_statement_name_func=_unique_statement_name,
        )
    engine = create_async_engine(
        target.url,
        connect_args=connect_args,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_recycle=settings.database_pool_recycle,
        pool_timeout=connect_args["timeout"],
        # SQLAlchemy's own pre-ping has no time limit of its own; ours below has.
        pool_pre_ping=False,
    )
    if settings.database_pool_pre_ping:
        _ping_on_checkout(engine, connect_args["timeout"] if pooled else PING_TIMEOUT_SECONDS)
    return engine


def _ping_on_checkout(engine: AsyncEngine, timeout: float) -> None:
    """Replace a pooled connection that does not answer a ping within the limit.

    Neon drops connections when a compute suspends, restarts or resizes; the
    pool finds out here, before a request uses one, and connects afresh.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _fresh(_dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        record.info["fresh"] = True

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping(
        dbapi_connection: DBAPIConnection,
        record: ConnectionPoolEntry,
        _proxy: PoolProxiedConnection,
    ) -> None:
        if record.info.pop("fresh", False):
            return
        try:
            # A simple-protocol query: no prepared statement, safe through PgBouncer.
            dbapi_connection.run_async(
                lambda connection: connection.execute("SELECT 1", timeout=timeout)
            )
        except Exception as error:
            # Close it here and now: the pool's own close is polite and waits for
            # an answer that, from a vanished server, never comes.
            dbapi_connection.driver_connection.terminate()
            # The pool discards the connection and makes a new one.
            raise exc.DisconnectionError(f"pre-ping failed: {error!r}") from error


class Database:
    """One engine, its session factory, and the users known to exist in it."""

    def __init__(self, raw_url: str, settings: Settings | None = None) -> None:
        settings = settings or Settings()
        target = parse_database_url(raw_url)
        if target.unhonoured:
            logger.warning(
                "database URL: ignoring %s: asyncpg has no equivalent",
                ", ".join(target.unhonoured),
            )
        if target.backend == "postgresql":
            self.engine = _create_postgres_engine(target, settings)
        else:
            self.engine = create_async_engine(target.url)
            configure_sqlite(self.engine, busy_timeout=settings.database_command_timeout)
        self.acquire_timeout = _connect_timeout(target, settings) + ACQUIRE_GRACE_SECONDS
        self.transaction_pooling = uses_transaction_pooling(target, settings)
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=_CommitTrackingSession
        )
        # Users this process has already made sure of, so that only a user's
        # first request pays for the upsert.
        self.known_users: set[UUID] = set()

    def remember_user(self, user_id: UUID) -> None:
        if len(self.known_users) >= KNOWN_USERS_LIMIT:
            self.known_users.clear()
        self.known_users.add(user_id)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def connect(self, session: AsyncSession) -> None:
        """Give `session` its connection now, or fail within `acquire_timeout`.

        Taking the connection up front bounds the one step that can hang while
        the database is away, and any failure here is safe to report as "not
        done": nothing has been sent yet.
        """
        try:
            async with asyncio.timeout(self.acquire_timeout):
                await session.connection()
        except Exception as error:
            logger.warning("no database connection within %.2f s: %r", self.acquire_timeout, error)
            outage = Outage.TIMED_OUT if isinstance(error, TimeoutError) else Outage.UNREACHABLE
            raise DatabaseUnavailableError(outage) from error

    async def ping(self) -> None:
        """Run `SELECT 1` within `acquire_timeout`, or raise DatabaseUnavailableError."""
        async with self.sessionmaker() as session:
            await self.connect(session)
            try:
                async with asyncio.timeout(self.acquire_timeout):
                    await session.execute(text("SELECT 1"))
            except Exception as error:
                failure = as_service_error(error)
                if failure is None:
                    raise
                raise failure from error

    async def dispose(self) -> None:
        await self.engine.dispose()


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    database = get_database(request)
    async with database.sessionmaker() as session:
        await database.connect(session)
        try:
            yield session
        except Exception as error:
            failure = as_service_error(error, commit_sent=session.info.get(COMMIT_SENT, False))
            if failure is None:
                raise
            if getattr(failure, "outage", None) is Outage.CONNECTION_LOST:
                mark_replayable(request.scope)
            raise failure from error


DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
