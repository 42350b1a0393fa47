"""PostgreSQL through asyncpg, as Neon serves it: TLS, PgBouncer, dropped connections."""

import logging
import time
from typing import Any
from uuid import uuid4

from sqlalchemy import event, exc
from sqlalchemy.engine.interfaces import DBAPIConnection, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from todo.config import Settings
from todo.db.outages import Outage, classify
from todo.db.urls import DatabaseTarget

# A pooled connection gets this long to answer a ping before it is replaced.
# Behind PgBouncer a ping may queue for a server connection, and a busy pool is
# no sign of a dead connection: there it gets the connect timeout instead.
PING_TIMEOUT_SECONDS = 0.5

# How much sooner than the client the server gives up on a statement.
SERVER_TIMEOUT_FIRST_SECONDS = 0.5

logger = logging.getLogger("todo.db")


def uses_transaction_pooling(target: DatabaseTarget, settings: Settings) -> bool:
    if target.backend != "postgresql":
        return False
    if settings.database_pool_mode == "auto":
        return target.is_pooler
    return settings.database_pool_mode == "transaction"


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid4().hex}__"


def connect_timeout(target: DatabaseTarget, settings: Settings) -> float:
    return target.connect_timeout or settings.database_connect_timeout


def create_postgres_engine(target: DatabaseTarget, settings: Settings) -> AsyncEngine:
    pooled = uses_transaction_pooling(target, settings)
    connect_args: dict[str, Any] = {
        "timeout": connect_timeout(target, settings),
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
    else:
        # A single-statement write commits itself (todo.db.statements). Given up on by
        # the client alone, it would still run once its lock came free, after
        # the request had been answered: the server gives up first instead, and
        # says so, which leaves nothing in doubt.
        timeout_ms = round(settings.database_command_timeout * 1000)
        connect_args["server_settings"] = {
            "statement_timeout": str(timeout_ms),
            **connect_args.get("server_settings", {}),
        }
        connect_args["command_timeout"] += SERVER_TIMEOUT_FIRST_SECONDS
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
        _ping_on_checkout(
            engine,
            connect_args["timeout"] if pooled else PING_TIMEOUT_SECONDS,
            idle_seconds=settings.database_pool_ping_idle_seconds,
        )

    @event.listens_for(engine.sync_engine, "handle_error")
    def _lost_is_disconnected(context: ExceptionContext) -> None:
        # asyncpg reports a backend that was shut down under a statement (Neon
        # suspending, an operator, a restart) before it notices the socket is
        # gone: tell SQLAlchemy now, so it discards the connection instead of
        # trying to roll back on it.
        if classify(context.original_exception) is Outage.CONNECTION_LOST:
            context.is_disconnect = True

    return engine


def ping_due(info: dict[str, Any], now: float, idle_seconds: float) -> bool:
    """Whether a pooled connection should be pinged before it is lent again.

    Not a fresh one, nor one given back less than `idle_seconds` ago: it just
    answered. Under load that is nearly every checkout, so most requests skip
    the ping's round trip; after a lull (when Neon may have suspended the
    compute) the first use pings. A connection whose server has closed it is
    known without a ping (see `_ping_on_checkout`).
    """
    if info.pop("fresh", False):
        return False
    returned_at: float | None = info.get("returned_at")
    return returned_at is None or now - returned_at >= idle_seconds


def _ping_on_checkout(engine: AsyncEngine, timeout: float, *, idle_seconds: float) -> None:
    """Replace a pooled connection that is closed, or does not answer a ping in time.

    Neon drops connections when a compute suspends, restarts or resizes; the
    pool finds out here, before a request uses one, and connects afresh.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _fresh(_dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        record.info["fresh"] = True

    @event.listens_for(engine.sync_engine, "checkin")
    def _returned(_dbapi_connection: DBAPIConnection | None, record: ConnectionPoolEntry) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping(
        dbapi_connection: DBAPIConnection,
        record: ConnectionPoolEntry,
        _proxy: PoolProxiedConnection,
    ) -> None:
        if dbapi_connection.driver_connection.is_closed():
            # The server ended it (a restart, pg_terminate_backend): asyncpg saw
            # the socket close while the connection sat in the pool.
            raise exc.DisconnectionError("the server closed the connection")
        if not ping_due(record.info, time.monotonic(), idle_seconds):
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
