"""Reaching the test PostgreSQL server directly, around the app."""

from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from todo.db.urls import parse_database_url


def with_database(url: str, name: str) -> str:
    """`url` (with its query parameters) naming database `name` instead."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def admin_connection(url: str) -> Any:
    """A plain asyncpg connection, with the URL's libpq parameters translated."""
    return await asyncpg.connect(**parse_database_url(url).asyncpg_connect_kwargs())


async def terminate_backends(admin_url: str, database_name: str) -> int:
    """Kill every server process connected to `database_name`, as Neon's suspend does.

    Returns once they have exited (a 5 s bound), so their clients have been told.
    """
    admin = await admin_connection(admin_url)
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            database_name,
        )
    finally:
        await admin.close()
    return int(killed)
