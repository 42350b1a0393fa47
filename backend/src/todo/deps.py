"""What a route or an HTTP helper may ask for by type, as FastAPI dependencies."""

from typing import Annotated

from fastapi import Depends, Request

from todo.config import Settings
from todo.db import Database


def database_of(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    # `async`, though it awaits nothing: FastAPI runs a plain `def` dependency
    # in its thread pool, a thread handoff on every request.
    return database_of(request)


DatabaseDep = Annotated[Database, Depends(get_database)]
