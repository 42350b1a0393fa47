"""Engine and sessions for whichever database `DATABASE_URL` names."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Request
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import (
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from todo.auth.base import Subject
from todo.config import Settings
from todo.dbdirect import DirectStatements
from todo.dbpostgres import connect_timeout, create_postgres_engine, uses_transaction_pooling
from todo.dbsqlite import configure_sqlite
from todo.dburl import parse_database_url
from todo.outages import DatabaseUnavailableError, Outage, as_service_error

KNOWN_USERS_LIMIT = 100_000
# Beyond the connect timeout, what taking a connection may spend on waiting for
# the pool and pinging: a request never waits longer than the two together.
ACQUIRE_GRACE_SECONDS = 0.5

COMMIT_SENT = "todo.commit_sent"
CONNECTION = "todo.connection"

# Requests that change nothing: their sessions read in autocommit (see `Database.session`).
SAFE_METHODS = frozenset({"GET", "HEAD"})

logger = logging.getLogger("todo.db")


class _TrackingSession(Session):
    """A Session that notes its connection, and when it has asked to commit."""


@event.listens_for(_TrackingSession, "after_begin")
def _note_connection(session: Session, _transaction: Any, connection: Connection) -> None:
    session.info[CONNECTION] = connection


@event.listens_for(_TrackingSession, "before_commit")
def _note_commit(session: Session) -> None:
    # Flush first, so that from here on a failure can only be the COMMIT itself.
    session.flush()
    session.info[COMMIT_SENT] = True


@event.listens_for(_TrackingSession, "after_commit")
def _note_commit_done(session: Session) -> None:
    # Acknowledged: a later failure in the same request is about later work.
    session.info.pop(COMMIT_SENT, None)


def async_database_url(raw_url: str) -> URL:
    """The URL with the async driver this service ships for its database."""
    return parse_database_url(raw_url).url


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
            self.engine = create_postgres_engine(target, settings)
        else:
            self.engine = create_async_engine(target.url)
            configure_sqlite(self.engine, busy_timeout=settings.database_command_timeout)
        self.acquire_timeout = connect_timeout(target, settings) + ACQUIRE_GRACE_SECONDS
        # Whether a read may run without BEGIN and ROLLBACK (see `session`).
        self.autocommit_reads = target.backend == "postgresql" and not uses_transaction_pooling(
            target, settings
        )
        # The hot task paths' statements, on PostgreSQL only (see todo.dbdirect).
        self.direct = (
            DirectStatements(self, in_transaction=not self.autocommit_reads)
            if target.backend == "postgresql"
            else None
        )
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=_TrackingSession
        )
        # One turn per connection the pool can lend, handed out first come, first
        # served. SQLAlchemy's pool lets a request that arrives just as a
        # connection comes back take it ahead of those already waiting, who then
        # queue again: under load most requests took milliseconds and some
        # seconds. Waiting here first keeps the order, within the same bound.
        pool_size = getattr(self.engine.pool, "size", None)
        overflow = getattr(self.engine.pool, "_max_overflow", 0)
        self.turns = (
            asyncio.Semaphore(pool_size() + max(overflow, 0))
            if target.backend == "postgresql" and callable(pool_size)
            else None
        )
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

    @asynccontextmanager
    async def session(self, *, read_only: bool = False) -> AsyncIterator[AsyncSession]:
        """A session that holds its connection already, and gives it back quietly.

        Taking the connection up front bounds the one step that can hang while
        the database is away (see `acquire_timeout`), and a failure there is
        safe to report as "not done": nothing has been sent yet.

        `read_only`: the session only reads.
        On PostgreSQL it then runs in autocommit, one round trip per statement
        instead of BEGIN, the statement and ROLLBACK. Not behind PgBouncer in
        transaction mode: there the server connection may change between
        asyncpg's prepare and execute unless a transaction holds it.
        """
        # One deadline for the turn and the connection together.
        deadline = asyncio.get_running_loop().time() + self.acquire_timeout
        async with self._turn(deadline), self._session(deadline, read_only=read_only) as session:
            yield session

    async def checkout(self) -> PoolProxiedConnection:
        """A pooled driver connection, taken within the same bound as `session`'s.

        Give it back with `checkin`, whatever happens: a coroutine pair rather
        than a context manager, for the hot paths (todo.dbdirect).
        """
        deadline = asyncio.get_running_loop().time() + self.acquire_timeout
        await self._take_turn(deadline)
        try:
            async with asyncio.timeout_at(deadline):
                return await self.engine.raw_connection()
        except BaseException as error:
            self._give_turn()
            if isinstance(error, Exception):
                raise self._unreachable(error) from error
            raise

    async def checkin(self, connection: PoolProxiedConnection, *, discard: bool = False) -> None:
        """Give back what `checkout` lent; `discard` it when it must not be used again."""
        try:
            await greenlet_spawn(_give_back, connection, discard)
        finally:
            self._give_turn()

    def _unreachable(self, error: Exception) -> DatabaseUnavailableError:
        logger.warning("no database connection within %.2f s: %r", self.acquire_timeout, error)
        outage = Outage.TIMED_OUT if isinstance(error, TimeoutError) else Outage.UNREACHABLE
        return DatabaseUnavailableError(outage)

    @asynccontextmanager
    async def _turn(self, deadline: float) -> AsyncIterator[None]:
        await self._take_turn(deadline)
        try:
            yield
        finally:
            self._give_turn()

    async def _take_turn(self, deadline: float) -> None:
        if self.turns is None:
            return
        if not self.turns.locked():
            # Free now: taken without waiting, so without a timer.
            await self.turns.acquire()
            return
        try:
            async with asyncio.timeout_at(deadline):
                await self.turns.acquire()
        except TimeoutError as error:
            logger.warning("no database connection free within %.2f s", self.acquire_timeout)
            raise DatabaseUnavailableError(Outage.NO_CONNECTION_FREE) from error

    def _give_turn(self) -> None:
        if self.turns is not None:
            self.turns.release()

    @asynccontextmanager
    async def _session(self, deadline: float, *, read_only: bool) -> AsyncIterator[AsyncSession]:
        session = self.sessionmaker()
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    if read_only and self.autocommit_reads:
                        await session.connection(
                            execution_options={"isolation_level": "AUTOCOMMIT"}
                        )
                    else:
                        await session.connection()
            except Exception as error:
                raise self._unreachable(error) from error
            yield session
        finally:
            await _release(session)

    async def ping(self) -> None:
        """Run `SELECT 1` within `acquire_timeout`, or raise DatabaseUnavailableError."""
        async with self.session() as session:
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


def database_of(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_database(request: Request) -> Database:
    # `async`, though it awaits nothing: FastAPI runs a plain `def` dependency
    # in its thread pool, a thread handoff on every request.
    return database_of(request)


async def _release(session: AsyncSession) -> None:
    """Close `session`; a connection that cannot even roll back is discarded.

    After the server has dropped a connection in the middle of a statement, the
    driver can still think that statement is running: rolling back then fails,
    and that failure must neither replace the request's answer nor reach the pool.
    """
    try:
        await session.close()
    except Exception as error:
        logger.warning("discarding a connection that failed to roll back: %r", error)
        connection: Connection | None = session.info.get(CONNECTION)
        if connection is not None:
            await greenlet_spawn(_discard, connection)


def _give_back(connection: PoolProxiedConnection, discard: bool) -> None:
    if discard:
        driver = connection.driver_connection
        if driver is not None:
            # Closed here and now: a polite close would wait for a server that may be gone.
            driver.terminate()
        connection.invalidate()
    connection.close()


def _discard(connection: Connection) -> None:
    connection.invalidate()
    connection.close()


@asynccontextmanager
async def request_session(
    request: Request, *, read_only: bool | None = None
) -> AsyncIterator[AsyncSession]:
    """A session for this request, whose database failures become 503 problems.

    `read_only` defaults to whether the method is safe (see `Database.session`).
    """
    if read_only is None:
        read_only = request.method in SAFE_METHODS
    async with database_of(request).session(read_only=read_only) as session:
        try:
            yield session
        except Exception as error:
            failure = as_service_error(error, commit_sent=session.info.get(COMMIT_SENT, False))
            if failure is None:
                raise
            raise failure from error


DatabaseDep = Annotated[Database, Depends(get_database)]
