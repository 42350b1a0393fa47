"""A client for an app with settings of its own, on the test database."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from todo.config import Settings
from todo.db import Database
from todo.main import create_app


@asynccontextmanager
async def client_with(
    database: Database, database_url: str, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=database_url, **settings), database=database)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        if app.state.limiter is not None:
            await app.state.limiter.close()
