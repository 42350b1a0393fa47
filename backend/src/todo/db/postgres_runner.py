"""Statements on the pool's asyncpg connections: one round trip for a single one.

The pool (todo.db.postgres_pool: its checkout ping, recycling and limits)
is handed out first come, first served within one deadline. A single statement
runs on its own (autocommit), with one exception: a write behind PgBouncer in
transaction mode runs between BEGIN and COMMIT. There the server cannot be given
a statement timeout (PgBouncer refuses startup parameters), so a write the client
gave up on could still land once its lock came free; in a transaction it cannot,
and the COMMIT is the one point after which its fate is in doubt.

Behind PgBouncer a statement needs no transaction to stay on one server
connection: asyncpg (0.21 and later) ends its Parse/Describe with Flush, not
Sync, so the server sends no ReadyForQuery until the Bind/Execute's Sync, and
PgBouncer releases a server connection only at a ReadyForQuery outside a
transaction. A read there is its two round trips rather than four.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Executable

from todo.db.deadlines import Deadlines, Watch
from todo.db.outages import DatabaseUnavailableError, Outage, as_service_error
from todo.db.postgres_pool import PostgresPool
from todo.db.statements import (
    CompiledStatement,
    Params,
    Row,
    StatementCache,
    StatementListener,
)
from todo.db.turns import Turns

logger = logging.getLogger("todo.db")

_T = TypeVar("_T")


class PostgresRunner:
    def __init__(
        self,
        pool: PostgresPool,
        dialect: Dialect,
        *,
        acquire_timeout: float,
        statement_timeout: float,
        writes_in_transaction: bool,
        listeners: list[StatementListener],
    ) -> None:
        self._pool = pool
        self._statements = StatementCache(dialect)
        self._acquire_timeout = acquire_timeout
        # Every statement, BEGIN and COMMIT is cut off past this (todo.db.deadlines).
        self._deadlines = Deadlines(statement_timeout)
        self.writes_in_transaction = writes_in_transaction
        self._listeners = listeners
        # One turn per connection the pool can lend, handed out first come,
        # first served, within one deadline (todo.db.turns): a pool that let a
        # request arriving just as a connection comes back take it ahead of those
        # already waiting had most requests take milliseconds and some seconds.
        self._turns = Turns(pool.size)

    @property
    def checked_out(self) -> int:
        return self._pool.lent

    async def close(self) -> None:
        await self._pool.close()

    async def fetch(
        self, statement: Executable, params: Params | None, *, repeatable: bool
    ) -> Sequence[Row]:
        compiled = self._statements[statement]
        arguments = compiled.arguments(params)
        for attempt in range(2):
            try:
                records = await self._run(compiled, arguments, write=not repeatable)
            except DatabaseUnavailableError as error:
                # Nothing was carried out; a statement that may run twice, or
                # was never sent, is tried once more on a fresh connection.
                retry = error.outage is Outage.CONNECTION_LOST and (repeatable or error.unsent)
                if attempt or not retry:
                    raise
                continue
            return compiled.rows(records)
        raise AssertionError("unreachable")

    async def _run(
        self, compiled: CompiledStatement, arguments: list[Any], *, write: bool
    ) -> Sequence[Row]:
        connection = await self._checkout()
        in_transaction = write and self.writes_in_transaction
        # Whether a failure from here on may come after the change was
        # committed: in autocommit the statement is its own commit.
        in_doubt = write and not in_transaction
        abandoned = False
        # The statement with its BEGIN and COMMIT: a single round of work, one limit.
        watch = self._deadlines.start(connection)
        try:
            self._announce(compiled.sql)
            if not in_transaction:
                return await self._fetch(connection, compiled, arguments)
            await connection.execute("BEGIN")
            try:
                rows = await self._fetch(connection, compiled, arguments)
            except BaseException:
                await self._roll_back(connection)
                raise
            in_doubt = write
            self._announce("COMMIT")
            await connection.execute("COMMIT")
            return rows
        except BaseException as error:
            failure, abandoned = _failure(_timed_out(watch, error), in_doubt=in_doubt)
            if failure is error:
                raise
            raise failure from error
        finally:
            self._deadlines.end(watch)
            await self._checkin(connection, abandoned=abandoned)

    async def _fetch(
        self, connection: asyncpg.Connection, compiled: CompiledStatement, arguments: list[Any]
    ) -> Sequence[Row]:
        if compiled.planned_each_time:
            # The unnamed statement: planned for these values, never kept, nothing to
            # close (behind a transaction pooler, with no statement cache, every
            # statement is sent so).
            statement = await connection.prepare(compiled.sql, name="")
            rows: Sequence[Row] = await statement.fetch(*arguments)
            return rows
        rows = await connection.fetch(compiled.sql, *arguments)
        return rows

    @asynccontextmanager
    async def transaction(
        self, *, lock_timeout: float | None = None
    ) -> AsyncIterator["PostgresTransaction"]:
        """One transaction on one connection: commits when the block ends without error.

        `lock_timeout`: how long a statement in it may wait for a row lock
        before failing with `lock_not_available` (see outages.is_lock_timeout).
        """
        begin = "BEGIN"
        if lock_timeout is not None:
            # Sent with BEGIN, in the same round trip; it ends with the transaction.
            begin += f"; SET LOCAL lock_timeout = {max(1, round(lock_timeout * 1000))}"
        connection = await self._begin(begin)
        commit_sent = False
        abandoned = False
        try:
            try:
                yield PostgresTransaction(connection, self)
            except BaseException:
                await self._roll_back(connection)
                raise
            self._announce("COMMIT")
            commit_sent = True
            await self.watched(connection, connection.execute("COMMIT"))
        except BaseException as error:
            failure, abandoned = _failure(error, in_doubt=commit_sent)
            if failure is error:
                raise
            raise failure from error
        finally:
            await self._checkin(connection, abandoned=abandoned)

    async def _begin(self, begin: str) -> asyncpg.Connection:
        """A connection with a transaction open on it; one that proves stale is replaced once."""
        for attempt in range(2):
            connection = await self._checkout()
            try:
                self._announce(begin)
                await self.watched(connection, connection.execute(begin))
            except BaseException as error:
                await self._checkin(connection, abandoned=True)
                failure, _ = _failure(error, in_doubt=False)
                if failure is error:
                    raise
                if attempt or not (
                    isinstance(failure, DatabaseUnavailableError) and failure.unsent
                ):
                    raise failure from error
                continue
            return connection
        raise AssertionError("unreachable")

    async def _roll_back(self, connection: asyncpg.Connection) -> None:
        # One that cannot is still in a transaction, and `_checkin` discards it.
        with contextlib.suppress(Exception):
            self._announce("ROLLBACK")
            await self.watched(connection, connection.execute("ROLLBACK"))

    async def watched(self, connection: asyncpg.Connection, step: Awaitable[_T]) -> _T:
        """`step` on `connection`, cut off (TimeoutError) past the statement timeout."""
        watch = self._deadlines.start(connection)
        try:
            return await step
        except BaseException as error:
            timed_out = _timed_out(watch, error)
            if timed_out is error:
                raise
            raise timed_out from error
        finally:
            self._deadlines.end(watch)

    def _announce(self, sql: str) -> None:
        for listener in self._listeners:
            listener(sql)

    async def _checkout(self) -> asyncpg.Connection:
        """A pooled connection, taken within the connect timeout and a grace."""
        deadline = asyncio.get_running_loop().time() + self._acquire_timeout
        await self._take_turn(deadline)
        try:
            connection = self._pool.acquire_now()
            if connection is None:
                async with asyncio.timeout_at(deadline):
                    connection = await self._pool.acquire()
        except BaseException as error:
            self._turns.give_back()
            if isinstance(error, Exception):
                logger.warning(
                    "no database connection within %.2f s: %r", self._acquire_timeout, error
                )
                outage = Outage.TIMED_OUT if isinstance(error, TimeoutError) else Outage.UNREACHABLE
                raise DatabaseUnavailableError(outage) from error
            raise
        return connection

    async def _checkin(self, connection: asyncpg.Connection, *, abandoned: bool) -> None:
        try:
            # Lost, cut off mid-statement or stuck in a transaction: never back to the pool.
            await self._pool.release(connection, discard=abandoned)
        finally:
            self._turns.give_back()

    async def _take_turn(self, deadline: float) -> None:
        try:
            await self._turns.take(deadline)
        except TimeoutError as error:
            logger.warning("no database connection free within %.2f s", self._acquire_timeout)
            raise DatabaseUnavailableError(Outage.NO_CONNECTION_FREE) from error


class PostgresTransaction:
    writes_in_with = True

    def __init__(self, connection: asyncpg.Connection, runner: PostgresRunner) -> None:
        self._connection = connection
        self._runner = runner

    def atomic(self) -> AbstractAsyncContextManager["PostgresTransaction"]:
        return contextlib.nullcontext(self)

    def changed(self, user_id: UUID) -> None:
        """The write's own NOTIFY tells everyone when this commits."""

    async def fetch(
        self, statement: Executable, params: Params | None = None, *, repeatable: bool | None = None
    ) -> Sequence[Row]:
        compiled = self._runner._statements[statement]
        self._runner._announce(compiled.sql)
        fetching = self._runner._fetch(self._connection, compiled, compiled.arguments(params))
        return compiled.rows(await self._runner.watched(self._connection, fetching))

    async def run_many(self, statement: Executable, params: Sequence[Params]) -> None:
        if not params:
            return
        compiled = self._runner._statements[statement]
        self._runner._announce(compiled.sql)
        await self._runner.watched(
            self._connection,
            self._connection.executemany(
                compiled.sql, [compiled.arguments(each) for each in params]
            ),
        )


def _timed_out(watch: Watch, error: BaseException) -> BaseException:
    """`error`, or a TimeoutError when it came of the watch cutting the connection off."""
    if watch.expired and isinstance(error, Exception):
        return TimeoutError(f"the statement ran longer than the limit: {error!r}")
    return error


def _failure(error: BaseException, *, in_doubt: bool) -> tuple[BaseException, bool]:
    """What to raise for `error` (a 503 problem when it is an outage, else itself),
    and whether the connection must be discarded: after an outage or a
    cancellation it may be left mid-statement.
    """
    failure = as_service_error(error, commit_sent=in_doubt)
    if failure is None:
        return error, isinstance(error, asyncio.CancelledError)
    return failure, True
