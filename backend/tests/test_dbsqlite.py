import sqlite3
import time

import httpx
from sqlalchemy.engine import make_url

from tests.conftest import DatabaseUrls
from tests.environment import only_on
from todo.config import Settings
from todo.db import Database
from todo.main import create_app

BUSY_TIMEOUT = 0.3


@only_on("sqlite")
async def test_a_write_locked_out_beyond_the_busy_timeout_is_a_503(
    database_urls: DatabaseUrls, headers: dict[str, str], empty_tables: None
) -> None:
    settings = Settings(database_url=database_urls.app, database_command_timeout=BUSY_TIMEOUT)
    database = Database(settings.database_url, settings)
    transport = httpx.ASGITransport(app=create_app(settings, database=database))
    path = make_url(database_urls.app).database or ""
    other_writer = sqlite3.connect(path, isolation_level=None)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (
                await client.post("/api/tasks", json={"title": "a"}, headers=headers)
            ).status_code == 201

            other_writer.execute("BEGIN IMMEDIATE")
            started = time.monotonic()
            locked_out = await client.post("/api/tasks", json={"title": "b"}, headers=headers)
            elapsed = time.monotonic() - started
            other_writer.execute("ROLLBACK")

            after = await client.post("/api/tasks", json={"title": "c"}, headers=headers)
    finally:
        other_writer.close()
        await database.dispose()

    assert locked_out.status_code == 503
    assert locked_out.headers["retry-after"] == "2"
    assert locked_out.json()["title"] == "Database unavailable"
    assert "locked" in locked_out.json()["detail"]
    assert BUSY_TIMEOUT <= elapsed < BUSY_TIMEOUT + 1.0
    assert after.status_code == 201
