"""The database `DATABASE_URL` names: where every statement of the service runs."""

import asyncio
import logging
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.sql import Executable

from todo.config import Settings
from todo.db.notices import NoticeListener, Notices
from todo.db.outages import as_service_error
from todo.db.postgres import (
    client_statement_timeout,
    connect_timeout,
    create_listener_connect_kwargs,
    create_postgres_engine,
    create_postgres_pool,
    uses_transaction_pooling,
)
from todo.db.postgres_runner import PostgresRunner
from todo.db.sqlite import configure_sqlite
from todo.db.sqlite_runner import SQLiteRunner
from todo.db.statements import Params, Row, Runner, StatementListener, is_read
from todo.db.urls import DatabaseTarget, parse_database_url

# Beyond the connect timeout, what taking a connection may spend on waiting for
# the pool and pinging: a request never waits longer than the two together.
ACQUIRE_GRACE_SECONDS = 0.5

_PING = text("SELECT 1")

logger = logging.getLogger("todo.db")


def async_database_url(raw_url: str) -> URL:
    """The URL with the async driver this service ships for its database."""
    return parse_database_url(raw_url).url


class Database:
    """The one way statements reach the database, and an engine beside it.

    `fetch` runs a single statement as a transaction of its own; `transaction`
    holds one connection for several. Both are a `Runner`, so a service's
    operation runs unchanged on its own or inside a larger transaction (an
    Idempotency-Key's). A database failure leaves either as a 503 problem
    (todo.db.outages); anything else propagates unchanged.
    """

    def __init__(self, raw_url: str, settings: Settings | None = None) -> None:
        settings = settings or Settings()
        target = parse_database_url(raw_url)
        if target.unhonoured:
            logger.warning(
                "database URL: ignoring %s: asyncpg has no equivalent",
                ", ".join(target.unhonoured),
            )
        self.acquire_timeout = connect_timeout(target, settings) + ACQUIRE_GRACE_SECONDS
        # Called with each statement's SQL just before it is sent (see StatementListener).
        self.listeners: list[StatementListener] = []
        self._runner: PostgresRunner | SQLiteRunner
        # Who waits for a user's next change in this process (todo.db.notices).
        self.notices = Notices()
        self._listener: NoticeListener | None = None
        self._listen_refused = False
        # SQLAlchemy's engine: SQLite's statements run on it; on PostgreSQL it
        # serves migrations and the tests' ORM sessions, and the service's
        # statements run on the runner's own pool.
        if target.backend == "postgresql":
            self.engine = create_postgres_engine(target, settings)
            self._runner = PostgresRunner(
                create_postgres_pool(self.engine, target, settings),
                self.engine.dialect,
                acquire_timeout=self.acquire_timeout,
                statement_timeout=client_statement_timeout(target, settings),
                writes_in_transaction=uses_transaction_pooling(target, settings),
                listeners=self.listeners,
            )
            self._listener = self._notice_listener(target, settings)
        else:
            self.engine = create_async_engine(target.url)
            configure_sqlite(self.engine, busy_timeout=settings.database_command_timeout)
            self._runner = SQLiteRunner(
                self.engine,
                acquire_timeout=self.acquire_timeout,
                listeners=self.listeners,
                notices=self.notices,
            )

    def _notice_listener(self, target: DatabaseTarget, settings: Settings) -> NoticeListener | None:
        """The LISTEN connection: on DATABASE_URL_DIRECT when set (a session, never pooled)."""
        if settings.database_url_direct:
            listen_target = parse_database_url(settings.database_url_direct)
        elif uses_transaction_pooling(target, settings):
            # A LISTEN through PgBouncer in transaction mode hears nothing reliably;
            # said when the service starts (`start_listening`).
            self._listen_refused = True
            return None
        else:
            listen_target = target
        listener = NoticeListener(
            self.notices, create_listener_connect_kwargs(listen_target, settings)
        )
        self.notices.on_subscribe = listener.subscribed
        self.notices.on_idle = listener.idle
        return listener

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def writes_in_with(self) -> bool:
        """Whether one statement may write to several tables (a data-modifying WITH)."""
        return isinstance(self._runner, PostgresRunner)

    @property
    def single_writes_in_transaction(self) -> bool:
        """Whether a single write runs between BEGIN and COMMIT (PgBouncer, SQLite)."""
        return not isinstance(self._runner, PostgresRunner) or self._runner.writes_in_transaction

    async def fetch(
        self, statement: Executable, params: Params | None = None, *, repeatable: bool | None = None
    ) -> Sequence[Row]:
        """The rows of `statement`, run as a transaction of its own (see `Runner`)."""
        if repeatable is None:
            repeatable = is_read(statement)
        return await self._runner.fetch(statement, params, repeatable=repeatable)

    async def run_many(self, statement: Executable, params: Sequence[Params]) -> None:
        async with self.atomic() as transaction:
            await transaction.run_many(statement, params)

    def transaction(
        self, *, lock_timeout: float | None = None
    ) -> AbstractAsyncContextManager[Runner]:
        """A transaction on one connection, committed when the block ends without error.

        `lock_timeout`: on PostgreSQL, how long a statement in it may wait for
        a row lock before failing (see todo.db.outages.is_lock_timeout).
        """
        return self._runner.transaction(lock_timeout=lock_timeout)

    def atomic(self) -> AbstractAsyncContextManager[Runner]:
        """Several statements as one transaction: here a new one (see `Runner.atomic`)."""
        return self._runner.transaction()

    def changed(self, user_id: UUID) -> None:
        # Outside a transaction, what changed is committed already.
        if not self.writes_in_with:
            self.notices.publish(user_id)

    def start_listening(self) -> None:
        """Take in change notices (PostgreSQL; SQLite has no other processes).

        At startup; else the first subscription starts it.
        """
        if self._listen_refused:
            logger.warning(
                "DATABASE_URL is a transaction-pooling endpoint and DATABASE_URL_DIRECT is not "
                "set: live sync hears of other workers' writes only at each heartbeat"
            )
        if self._listener is not None:
            self._listener.start()

    @property
    def listener(self) -> NoticeListener | None:
        return self._listener

    async def ping(self) -> None:
        """Run `SELECT 1` within `acquire_timeout`, or raise DatabaseUnavailableError."""
        try:
            async with asyncio.timeout(self.acquire_timeout):
                await self.fetch(_PING)
        except TimeoutError as error:
            failure = as_service_error(error)
            assert failure is not None, "a timeout is an outage"
            raise failure from error

    def pool_checked_out(self) -> int | None:
        """Connections lent out of this process's pool right now, if the pool counts them."""
        if isinstance(self._runner, PostgresRunner):
            return self._runner.checked_out
        checked_out: Any = getattr(self.engine.pool, "checkedout", None)
        return int(checked_out()) if callable(checked_out) else None

    async def dispose(self) -> None:
        """Close the pool's connections (once those lent out are back) and the engine's."""
        if self._listener is not None:
            await self._listener.stop()
        if isinstance(self._runner, PostgresRunner):
            await self._runner.close()
        await self.engine.dispose()
