"""Single statements straight on the pool's asyncpg connections: the hot paths.

A task operation on PostgreSQL is one statement. Run through an `AsyncSession`
it also costs a session, a greenlet hop per call, SQLAlchemy's result
machinery and, for a write, BEGIN and COMMIT round trips: several times the
statement itself (`make bench-profile`). Here the statement runs on the
asyncpg connection that SQLAlchemy's pool lends, so the pool, its checkout
ping, the request's deadline and the outage rules (`todo.outages`) are the
same ones every other path uses.

On a direct connection each statement commits on its own (autocommit), in
one round trip. Behind PgBouncer in transaction mode the statement runs in a
transaction instead: there asyncpg's prepare and execute could otherwise land
on different server connections.
"""

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import asyncpg
from sqlalchemy.pool import PoolProxiedConnection

from todo.outages import DatabaseUnavailableError, Outage, as_service_error

# Called with each statement's SQL just before it is sent: the fault-injection
# tests cut connections at exact points through it, as they do through
# SQLAlchemy's `before_cursor_execute` on the session paths.
StatementListener = Callable[[str], None]


class ConnectionPool(Protocol):
    async def checkout(self) -> PoolProxiedConnection: ...
    async def checkin(
        self, connection: PoolProxiedConnection, *, discard: bool = False
    ) -> None: ...


class DirectStatements:
    """Runs one statement per call on a pooled asyncpg connection."""

    def __init__(self, pool: ConnectionPool, *, in_transaction: bool) -> None:
        self._pool = pool
        # Behind PgBouncer in transaction mode: BEGIN and COMMIT around each statement.
        self.in_transaction = in_transaction
        self.listeners: list[StatementListener] = []

    async def fetch(
        self, sql: str, *args: Any, repeatable: bool = True
    ) -> Sequence[asyncpg.Record]:
        """The statement's rows.

        `repeatable`: running the statement twice is the same as once (a read,
        an upsert that does nothing the second time). Such a statement whose
        connection drops is run once more, on a fresh one. Any other statement
        (a write) is never repeated here, and when its connection drops after
        it may have committed the failure says the outcome is unknown.
        """
        try:
            return await self._run(sql, args, write=not repeatable)
        except DatabaseUnavailableError as error:
            if not repeatable or error.outage is not Outage.CONNECTION_LOST:
                raise
        return await self._run(sql, args, write=False)

    async def fetchrow(
        self, sql: str, *args: Any, repeatable: bool = True
    ) -> asyncpg.Record | None:
        rows = await self.fetch(sql, *args, repeatable=repeatable)
        return rows[0] if rows else None

    async def _run(
        self, sql: str, args: tuple[Any, ...], *, write: bool
    ) -> Sequence[asyncpg.Record]:
        proxied = await self._pool.checkout()
        connection: asyncpg.Connection = proxied.driver_connection
        # Whether a failure from here on may come after the change was
        # committed: in autocommit the statement is its own commit.
        in_doubt = write and not self.in_transaction
        # A database failure or a cancellation may leave the connection mid-statement.
        abandoned = False
        try:
            for listener in self.listeners:
                listener(sql)
            if not self.in_transaction:
                rows: Sequence[asyncpg.Record] = await connection.fetch(sql, *args)
                return rows
            transaction = connection.transaction()
            await transaction.start()
            try:
                rows = await connection.fetch(sql, *args)
            except BaseException:
                # A connection that cannot roll back is discarded below.
                with contextlib.suppress(Exception):
                    await transaction.rollback()
                raise
            in_doubt = write
            for listener in self.listeners:
                listener("COMMIT")
            await transaction.commit()
            return rows
        except BaseException as error:
            failure = as_service_error(error, commit_sent=in_doubt)
            abandoned = failure is not None or isinstance(error, asyncio.CancelledError)
            if failure is None:
                raise
            raise failure from error
        finally:
            # Lost, cut off mid-statement or stuck in a transaction: never back to the pool.
            discard = abandoned or connection.is_closed() or connection.is_in_transaction()
            await self._pool.checkin(proxied, discard=discard)
