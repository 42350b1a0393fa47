import sqlite3
import time
from pathlib import Path

import httpx

from todo.config import Settings
from todo.db import Database
from todo.db.migrate import upgrade
from todo.main import create_app

BUSY_TIMEOUT = 0.3


# SQLite needs no server, so this runs whichever databases the run covers.
async def test_a_write_locked_out_beyond_the_busy_timeout_is_a_503(
    tmp_path: Path, headers: dict[str, str]
) -> None:
    path = tmp_path / "todo.db"
    settings = Settings(database_url=f"sqlite:///{path}", database_command_timeout=BUSY_TIMEOUT)
    database = Database(settings.database_url, settings)
    await upgrade(database.engine)
    transport = httpx.ASGITransport(app=create_app(settings, database=database))
    other_writer = sqlite3.connect(path, isolation_level=None)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            before = await client.post("/api/tasks", json={"title": "a"}, headers=headers)

            other_writer.execute("BEGIN IMMEDIATE")
            started = time.monotonic()
            locked_out = await client.post("/api/tasks", json={"title": "b"}, headers=headers)
            elapsed = time.monotonic() - started
            other_writer.execute("ROLLBACK")

            after = await client.post("/api/tasks", json={"title": "c"}, headers=headers)
    finally:
        other_writer.close()
        await database.dispose()

    assert before.status_code == 201
    assert locked_out.status_code == 503
    assert locked_out.headers["retry-after"] == "2"
    assert locked_out.json()["title"] == "Database unavailable"
    assert "locked" in locked_out.json()["detail"]
    assert BUSY_TIMEOUT <= elapsed < BUSY_TIMEOUT + 1.0
    assert after.status_code == 201
