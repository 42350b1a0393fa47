"""PostgreSQL through asyncpg, as Neon serves it: TLS, PgBouncer, dropped connections."""

from typing import Any
from uuid import uuid4

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from todo.config import Settings
from todo.db.postgres_pool import PostgresPool
from todo.db.urls import DatabaseTarget

# A pooled connection gets this long to answer a ping before it is replaced.
# Behind PgBouncer a ping may queue for a server connection, and a busy pool is
# no sign of a dead connection: there it gets the connect timeout instead.
PING_TIMEOUT_SECONDS = 0.5

# How much sooner than the client the server gives up on a statement.
SERVER_TIMEOUT_FIRST_SECONDS = 0.5

LISTENER_APPLICATION_NAME = "todo-change-notices"

# Arguments of SQLAlchemy's asyncpg dialect, not of asyncpg.connect().
_DIALECT_ONLY = ("prepared_statement_cache_size", "prepared_statement_name_func")


def uses_transaction_pooling(target: DatabaseTarget, settings: Settings) -> bool:
    if target.backend != "postgresql":
        return False
    if settings.database_pool_mode == "auto":
        return target.is_pooler
    return settings.database_pool_mode == "transaction"


def client_statement_timeout(target: DatabaseTarget, settings: Settings) -> float:
    """How long the client lets one statement run before it cuts the connection.

    Where the server can be given a statement timeout of its own (not behind
    PgBouncer), the client waits a little longer, so that the server, which
    knows whether the statement was done, gives up first.
    """
    if uses_transaction_pooling(target, settings):
        return settings.database_command_timeout
    return settings.database_command_timeout + SERVER_TIMEOUT_FIRST_SECONDS


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid4().hex}__"


def connect_timeout(target: DatabaseTarget, settings: Settings) -> float:
    return target.connect_timeout or settings.database_connect_timeout


def connect_arguments(target: DatabaseTarget, settings: Settings) -> dict[str, Any]:
    """What every connection to `target` is opened with, beside its URL."""
    connect_args: dict[str, Any] = {
        "timeout": connect_timeout(target, settings),
        "command_timeout": client_statement_timeout(target, settings),
        **target.connect_args,
    }
    if uses_transaction_pooling(target, settings):
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
    return connect_args


def create_postgres_engine(target: DatabaseTarget, settings: Settings) -> AsyncEngine:
    """SQLAlchemy's engine, for migrations and the tests' ORM sessions.

    Unpooled: the service's statements run on `PostgresPool`'s connections,
    and this one keeps no idle server connection of its own.
    """
    return create_async_engine(
        target.url, connect_args=connect_arguments(target, settings), poolclass=NullPool
    )


def create_listener_connect_kwargs(target: DatabaseTarget, settings: Settings) -> dict[str, Any]:
    """How the change-notice listener connects: as the pool would, in session mode.

    Its URL is the direct one (DATABASE_URL_DIRECT) when set: a LISTEN needs a
    session of its own, which PgBouncer in transaction mode does not give.
    """
    _, url_kwargs = target.url.get_dialect()().create_connect_args(target.url)
    session = settings.model_copy(update={"database_pool_mode": "session"})
    connect_kwargs = {**url_kwargs, **connect_arguments(target, session)}
    for name in _DIALECT_ONLY:
        connect_kwargs.pop(name, None)
    # No statement timeout: the connection mostly waits.
    connect_kwargs["server_settings"] = {
        **target.connect_args.get("server_settings", {}),
        # How an operator (or a test) tells it from the pool's connections.
        "application_name": LISTENER_APPLICATION_NAME,
    }
    connect_kwargs.pop("command_timeout", None)
    return connect_kwargs


def create_postgres_pool(
    engine: AsyncEngine, target: DatabaseTarget, settings: Settings
) -> PostgresPool:
    """The pool the service's statements run on, connecting as `engine` would."""
    _, url_kwargs = engine.dialect.create_connect_args(engine.url)
    connect_kwargs = {**url_kwargs, **connect_arguments(target, settings)}
    for name in _DIALECT_ONLY:
        connect_kwargs.pop(name, None)
    # The runner bounds each statement itself (todo.db.deadlines), with one timer
    # for all, rather than asyncpg with one for each protocol step.
    connect_kwargs.pop("command_timeout", None)
    ping_timeout = (
        connect_kwargs["timeout"]
        if uses_transaction_pooling(target, settings)
        else PING_TIMEOUT_SECONDS
    )
    return PostgresPool(
        connect_kwargs,
        size=settings.database_pool_size + settings.database_max_overflow,
        kept=settings.database_pool_size,
        recycle_seconds=settings.database_pool_recycle,
        ping_timeout=ping_timeout if settings.database_pool_pre_ping else None,
        ping_idle_seconds=settings.database_pool_ping_idle_seconds,
    )
