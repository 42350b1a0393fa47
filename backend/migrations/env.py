"""Alembic's entry point: migrations run on the app's own async engine.

`alembic upgrade head` connects to DATABASE_URL_DIRECT when it is set (Neon's
pooled endpoint runs PgBouncer in transaction mode, no place for DDL), else to
DATABASE_URL. A caller that already holds a connection (the tests) passes it in
`config.attributes["connection"]`.
"""

import asyncio
import logging.config

from alembic import context
from sqlalchemy.engine import Connection

from todo import tables as _tables  # noqa: F401  (registers every table)
from todo.config import get_settings
from todo.db import Database
from todo.db.metadata import metadata
from todo.db.migrate import context_options

config = context.config
if config.config_file_name is not None and config.attributes.get("connection") is None:
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        **context_options(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_on_settings_database() -> None:
    settings = get_settings()
    database = Database(settings.database_url_direct or settings.database_url, settings)
    try:
        async with database.engine.connect() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await database.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: run them on a database")

given_connection = config.attributes.get("connection")
if given_connection is not None:
    run_migrations(given_connection)
else:
    asyncio.run(run_migrations_on_settings_database())
