"""Statements on SQLite, through SQLAlchemy's connection to aiosqlite.

The embedded database has no round trips to save, so SQLAlchemy runs the
statements as they are (it caches their compilation); a single statement is a
transaction of its own, as on PostgreSQL.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable
from sqlalchemy.sql.elements import ClauseElement

from todo.db.notices import Notices
from todo.db.outages import DatabaseUnavailableError, Outage, as_service_error
from todo.db.statements import Params, Row, StatementListener

logger = logging.getLogger("todo.db")


class SQLiteRunner:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        acquire_timeout: float,
        listeners: list[StatementListener],
        notices: Notices,
    ) -> None:
        self._engine = engine
        self._acquire_timeout = acquire_timeout
        self._listeners = listeners
        self._notices = notices

    async def fetch(
        self, statement: Executable, params: Params | None, *, repeatable: bool
    ) -> Sequence[Row]:
        async with self.transaction() as transaction:
            return await transaction.fetch(statement, params)

    @asynccontextmanager
    async def transaction(
        self, *, lock_timeout: float | None = None
    ) -> AsyncIterator["SQLiteTransaction"]:
        """`lock_timeout` is PostgreSQL's: SQLite's writers wait up to its busy timeout."""
        connection = self._engine.connect()
        try:
            async with asyncio.timeout(self._acquire_timeout):
                await connection.start()
        except Exception as error:
            logger.warning("no database connection within %.2f s: %r", self._acquire_timeout, error)
            raise DatabaseUnavailableError(Outage.UNREACHABLE) from error
        commit_sent = False
        try:
            await connection.begin()
            transaction = SQLiteTransaction(connection, self._listeners)
            try:
                yield transaction
            except BaseException:
                # One that cannot roll back is discarded when it is given back.
                with contextlib.suppress(Exception):
                    self._announce("ROLLBACK")
                    await connection.rollback()
                raise
            self._announce("COMMIT")
            commit_sent = True
            await connection.commit()
            for user_id in transaction.changed_users:
                self._notices.publish(user_id)
        except Exception as error:
            failure = as_service_error(error, commit_sent=commit_sent)
            if failure is None:
                raise
            raise failure from error
        finally:
            await _release(connection)

    def _announce(self, sql: str) -> None:
        for listener in self._listeners:
            listener(sql)


class SQLiteTransaction:
    writes_in_with = False

    def __init__(self, connection: AsyncConnection, listeners: list[StatementListener]) -> None:
        self._connection = connection
        self._listeners = listeners
        # Whose waiters to wake once this commits.
        self.changed_users: set[UUID] = set()

    def atomic(self) -> AbstractAsyncContextManager["SQLiteTransaction"]:
        return contextlib.nullcontext(self)

    def changed(self, user_id: UUID) -> None:
        self.changed_users.add(user_id)

    async def fetch(
        self, statement: Executable, params: Params | None = None, *, repeatable: bool | None = None
    ) -> Sequence[Row]:
        self._announce(statement)
        result = await self._connection.execute(statement, dict(params or {}))
        return result.all() if result.returns_rows else []

    async def run_many(self, statement: Executable, params: Sequence[Params]) -> None:
        if params:
            self._announce(statement)
            await self._connection.execute(statement, [dict(each) for each in params])

    def _announce(self, statement: Executable) -> None:
        if self._listeners:
            assert isinstance(statement, ClauseElement)
            sql = str(statement.compile(dialect=self._connection.dialect))
            for listener in self._listeners:
                listener(sql)


async def _release(connection: AsyncConnection) -> None:
    """Close `connection` (rolling back what is open); one that cannot is discarded."""
    try:
        await connection.close()
    except Exception as error:
        logger.warning("discarding a connection that failed to roll back: %r", error)
        await connection.invalidate()
