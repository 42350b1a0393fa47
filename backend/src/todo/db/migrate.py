"""Alembic, as the app and its tests use it: options and programmatic upgrades."""

from functools import partial
from typing import Any, Literal

from alembic import command
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.sql.sqltypes import AutoString

from todo.config import BACKEND_DIR
from todo.db.types import UTCDateTime

ALEMBIC_INI = BACKEND_DIR / "alembic.ini"


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Spell the project's column types so that a generated migration imports cleanly."""
    if type_ != "type":
        return False
    if isinstance(obj, UTCDateTime):
        autogen_context.imports.add("from todo.db.types import UTCDateTime")
        return "UTCDateTime()"
    if isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def context_options(dialect_name: str) -> dict[str, Any]:
    return {
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        "render_as_batch": dialect_name == "sqlite",
        "compare_type": True,
        "compare_server_default": True,
        "render_item": render_item,
        "include_object": partial(_exists_on, dialect_name),
    }


def _exists_on(
    dialect_name: str, item: Any, _name: str | None, kind: str, _reflected: bool, _other: Any
) -> bool:
    """Whether the schema has `item` on this database: an index marked
    `info={"postgresql_only": True}` (a trigram index, say) exists on PostgreSQL only."""
    if kind == "index" and dialect_name != "postgresql":
        return not getattr(item, "info", {}).get("postgresql_only", False)
    return True


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config(ALEMBIC_INI)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), revision))
