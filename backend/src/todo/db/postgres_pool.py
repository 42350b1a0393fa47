"""asyncpg's own pool, with the checks a connection gets before it is lent.

A connection older than the recycle age is closed and replaced; one idle for
longer than the ping interval answers `SELECT 1` in time or is replaced (see
`ping_due`); one the server closed is reconnected by asyncpg itself. Nothing
is reset when a connection comes back: statements leave no session state, and
the runner terminates one still in a transaction (todo.db.postgres_runner).
"""

import contextlib
import json
import sys
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
    """Up to `size` connections, opened when first needed and kept.

    The asyncpg pool is made on first use, inside the event loop that uses it,
    and made again after `close`.
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
        self._pool: asyncpg.Pool | None = None

    async def acquire(self) -> asyncpg.Connection:
        """A live connection (asyncpg's proxy for it), fresh or checked."""
        pool = self._pool or await self._open()
        while True:
            connection = await pool.acquire()
            try:
                if await self._usable(connection):
                    return connection
            except BaseException:
                _cut(connection)
                raise

    async def release(self, connection: asyncpg.Connection, *, discard: bool) -> None:
        """Back to the pool, or closed and cut off (`discard`: it may be mid-statement)."""
        try:
            lost = connection.is_closed() or connection.is_in_transaction()
        except asyncpg.InterfaceError:
            # asyncpg already took it back: the server ended it while it was lent.
            return
        pool = self._pool
        assert pool is not None, "lent by this pool, which closes only once all are back"
        if discard or lost:
            # Closed here and now: a polite close would wait for a server that may be gone.
            connection.terminate()
        elif self._kept < self.size and self._kept < pool.get_size():
            with contextlib.suppress(Exception):
                # An overflow: asyncpg cuts a close that fails short.
                await connection.close(timeout=CLOSE_TIMEOUT_SECONDS)
        else:
            await pool.release(connection)

    def open_connections(self) -> int:
        return 0 if self._pool is None else int(self._pool.get_size())

    async def close(self) -> None:
        """Close every connection, waiting for those lent out to come back."""
        pool = self._pool
        if pool is None:
            return
        try:
            await pool.close()
        finally:
            self._pool = None

    async def _open(self) -> asyncpg.Pool:
        pool = asyncpg.create_pool(
            **self._connect_kwargs,
            # No connection before the first request: the service starts while the
            # database is down, and liveness never opens one.
            min_size=0,
            max_size=self.size,
            # Kept however long they idle or however many statements they ran:
            # age alone retires a connection (`recycle_seconds`).
            max_inactive_connection_lifetime=0,
            max_queries=sys.maxsize,
            connection_class=PooledConnection,
            init=_connected,
            reset=_returned,
        )
        # With min_size=0 this connects nothing, so it finishes without yielding
        # and no second caller can find the pool half made.
        await pool
        self._pool = pool
        return pool

    async def _usable(self, connection: asyncpg.Connection) -> bool:
        now = time.monotonic()
        if 0 <= self._recycle_seconds < now - connection.connected_at:
            with contextlib.suppress(Exception):
                # Healthy, only old: a polite close, which asyncpg cuts short on failure.
                await connection.close(timeout=CLOSE_TIMEOUT_SECONDS)
            return False
        if self._ping_timeout is None or not ping_due(
            connection.returned_at, now, self._ping_idle_seconds
        ):
            return True
        try:
            # A simple-protocol query: no prepared statement, safe through PgBouncer.
            await connection.execute("SELECT 1", timeout=self._ping_timeout)
        except Exception:
            # Neon drops connections when a compute suspends, restarts or
            # resizes; found out here, before a request uses one. Cut off, not
            # closed: a polite close waits for an answer that may never come.
            _cut(connection)
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


async def _returned(connection: PooledConnection) -> None:
    # In place of asyncpg's reset query: nothing to reset, one round trip saved.
    connection.returned_at = time.monotonic()


def _cut(connection: asyncpg.Connection) -> None:
    """Terminate a lent connection, unless asyncpg already took it back (it then has none)."""
    with contextlib.suppress(asyncpg.InterfaceError):
        connection.terminate()
