"""The service's PostgreSQL connections, and the checks one gets before it is lent.

A connection older than the recycle age is closed and replaced; one idle for
longer than the ping interval answers `SELECT 1` in time or is replaced (see
`ping_due`); one the server closed is replaced. Nothing is reset when a
connection comes back: statements leave no session state, and one still in a
transaction is cut off.
"""

import asyncio
import contextlib
import json
import time
from typing import Any

import asyncpg

# A connection's `close()` gets this long to say goodbye before it is cut.
CLOSE_TIMEOUT_SECONDS = 0.5


class PooledConnection(asyncpg.Connection):  # type: ignore[misc]
    """An asyncpg connection that knows when it connected and when it came back."""

    connected_at: float = 0.0
    # None until its first return: a fresh connection just answered.
    returned_at: float | None = None


def ping_due(returned_at: float | None, now: float, idle_seconds: float) -> bool:
    """Whether a pooled connection should be pinged before it is lent again.

    Not a fresh one, nor one given back less than `idle_seconds` ago: it just
    answered. Under load that is nearly every checkout, so most requests skip
    the ping's round trip; after a lull (when Neon may have suspended the
    compute) the first use pings. A connection whose server has closed it is
    known without a ping: asyncpg saw the socket close.
    """
    return returned_at is not None and now - returned_at >= idle_seconds


class PostgresPool:
    """Up to `size` asyncpg connections, opened when first needed and kept.

    Deliberately small: the runner's turns (todo.db.postgres_runner) already
    bound how many are lent at once and keep the waiters in order, so lending
    is taking the most recently returned idle connection, and giving back is
    putting it there again, with no await on either path. asyncpg's own pool
    would add a proxy around every call and a task per release.
    """

    def __init__(
        self,
        connect_kwargs: dict[str, Any],
        *,
        size: int,
        kept: int,
        recycle_seconds: float,
        ping_timeout: float | None,
        ping_idle_seconds: float,
    ) -> None:
        self.size = size
        self._connect_kwargs = connect_kwargs
        # Beyond `kept` open connections, one that comes back is closed (an overflow).
        self._kept = kept
        self._recycle_seconds = recycle_seconds
        # None: no ping (DATABASE_POOL_PRE_PING=false).
        self._ping_timeout = ping_timeout
        self._ping_idle_seconds = ping_idle_seconds
        # Most recently returned last: it is the likeliest to be alive and warm.
        self._idle: list[PooledConnection] = []
        # Open or opening, idle or lent.
        self._open = 0
        self._closing = False
        self._all_back = asyncio.Event()

    def acquire_now(self) -> asyncpg.Connection | None:
        """An idle connection that needs no check before it is lent, if there is one.

        The common case under load, and the cheap one: no await, no timer.
        """
        now = time.monotonic()
        while self._idle:
            connection = self._idle[-1]
            if connection.is_closed():
                # The server ended it while it sat here (a restart, pg_terminate_backend).
                self._drop(self._idle.pop(), cut=False)
                continue
            if self._needs_check(connection, now):
                return None
            return self._idle.pop()
        return None

    async def acquire(self) -> asyncpg.Connection:
        """A live connection, checked or fresh."""
        while self._idle:
            connection = self._idle.pop()
            try:
                usable = await self._usable(connection)
            except BaseException:
                self._drop(connection, cut=True)
                raise
            if usable:
                return connection
            # `_usable` closed it.
            self._drop(connection, cut=False)
        self._open += 1
        try:
            connection = await asyncpg.connect(
                **self._connect_kwargs, connection_class=PooledConnection
            )
        except BaseException:
            self._count_out()
            raise
        try:
            await _connected(connection)
        except BaseException:
            self._drop(connection, cut=True)
            raise
        return connection

    async def release(self, connection: asyncpg.Connection, *, discard: bool) -> None:
        """Back to the pool, or closed and cut off (`discard`: it may be mid-statement)."""
        assert isinstance(connection, PooledConnection)
        lost = connection.is_closed() or connection.is_in_transaction()
        if discard or lost:
            # Cut here and now: a polite close would wait for a server that may be gone.
            self._drop(connection, cut=True)
        elif self._closing or self._open > self._kept:
            # An overflow, or the pool is closing: a polite close, cut short on failure.
            self._drop(connection, cut=False)
            with contextlib.suppress(Exception):
                await connection.close(timeout=CLOSE_TIMEOUT_SECONDS)
        else:
            connection.returned_at = time.monotonic()
            self._idle.append(connection)

    @property
    def lent(self) -> int:
        """Connections lent out (or being opened for a lender) right now."""
        return self._open - len(self._idle)

    async def close(self) -> None:
        """Close every connection, waiting for those lent out to come back."""
        self._closing = True
        try:
            idle, self._idle = self._idle, []
            for connection in idle:
                self._drop(connection, cut=False)
                with contextlib.suppress(Exception):
                    await connection.close(timeout=CLOSE_TIMEOUT_SECONDS)
            while self._open:
                self._all_back.clear()
                await self._all_back.wait()
        finally:
            self._closing = False

    def _too_old(self, connection: PooledConnection, now: float) -> bool:
        return 0 <= self._recycle_seconds < now - connection.connected_at

    def _ping_due(self, connection: PooledConnection, now: float) -> bool:
        return self._ping_timeout is not None and ping_due(
            connection.returned_at, now, self._ping_idle_seconds
        )

    def _needs_check(self, connection: PooledConnection, now: float) -> bool:
        return self._too_old(connection, now) or self._ping_due(connection, now)

    def _drop(self, connection: asyncpg.Connection, *, cut: bool) -> None:
        """Count `connection` out of the pool, and `cut` it off (else the caller closes it)."""
        self._count_out()
        if cut:
            connection.terminate()

    def _count_out(self) -> None:
        self._open -= 1
        if self._open == 0:
            self._all_back.set()

    async def _usable(self, connection: PooledConnection) -> bool:
        """Whether an idle connection may be lent; one that may not is closed."""
        if connection.is_closed():
            # The server ended it while it sat here (a restart, pg_terminate_backend).
            return False
        now = time.monotonic()
        if self._too_old(connection, now):
            with contextlib.suppress(Exception):
                # Healthy, only old: a polite close, which asyncpg cuts short on failure.
                await connection.close(timeout=CLOSE_TIMEOUT_SECONDS)
            return False
        if not self._ping_due(connection, now):
            return True
        try:
            # A simple-protocol query: no prepared statement, safe through PgBouncer.
            await connection.execute("SELECT 1", timeout=self._ping_timeout)
        except Exception:
            # Neon drops connections when a compute suspends, restarts or
            # resizes; found out here, before a request uses one. Cut off, not
            # closed: a polite close waits for an answer that may never come.
            connection.terminate()
            return False
        return True


async def _connected(connection: PooledConnection) -> None:
    connection.connected_at = time.monotonic()
    # JSON in and out as SQLAlchemy's asyncpg dialect sets it up on its own
    # connections, which the compiled statements count on (todo.db.statements):
    # parsed by the driver, sent as the serialized text.
    await connection.set_type_codec(
        "json", encoder=str.encode, decoder=_json_decoded, schema="pg_catalog", format="binary"
    )


def _json_decoded(value: bytes) -> Any:
    return json.loads(value.decode())
