"""SIGTERM drains: requests in flight finish, then the pool closes; no write or log line is lost.

This starts the real server, as `make serve` does (several uvicorn workers), on a
free loopback port, and catches it with writes in flight: each request has sent
its headers, and the app has started on it (uvicorn answers `100 Continue` only
when the app asks for the body), but its body is only sent after SIGTERM.
"""

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col

from tests.conftest import DatabaseUrls
from tests.helpers import free_port, session
from todo.config import BACKEND_DIR
from todo.db import Database
from todo.tasks.models import Task

WORKERS = 2
IN_FLIGHT = 6
# Only against hanging: starting workers on a busy machine can take a while.
PATIENCE = 60


class Server:
    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port
        self.log: list[str] = []

    async def read_log_until(self, text: str, count: int) -> None:
        assert self.process.stderr is not None
        while sum(text in line for line in self.log) < count:
            line = await self.process.stderr.readline()
            assert line, "the server exited; its log:\n" + "".join(self.log)
            self.log.append(line.decode())


@pytest.fixture
async def server(database_urls: DatabaseUrls, database: Database) -> AsyncIterator[Server]:
    port = free_port()
    # The serving command of `make serve`.
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "uvicorn", "todo.main:create_app", "--factory"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)),
        *("--no-access-log", "--timeout-graceful-shutdown", "20"),
        cwd=BACKEND_DIR,
        env={**os.environ, "DATABASE_URL": database_urls.app},
        stderr=asyncio.subprocess.PIPE,
    )
    server = Server(process, port)
    try:
        async with asyncio.timeout(PATIENCE):
            await server.read_log_until("Application startup complete", WORKERS)
        yield server
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def start_write(
    port: int, user_id: UUID, title: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """Send a POST's headers and wait until the app asks for its body."""
    body = f'{{"title": "{title}"}}'.encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /api/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"X-User-ID: {user_id}\r\nContent-Length: {len(body)}\r\n".encode()
        + b"Expect: 100-continue\r\n\r\n"
    )
    await writer.drain()
    assert await reader.readline() == b"HTTP/1.1 100 Continue\r\n"
    assert await reader.readline() == b"\r\n"
    return reader, writer, body


async def finish_write(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes
) -> tuple[int, str]:
    writer.write(body)
    await writer.drain()
    status_line = await reader.readline()
    headers = {}
    while (line := await reader.readline()) != b"\r\n":
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    payload = await reader.readexactly(int(headers["content-length"]))
    writer.close()
    return int(status_line.split()[1]), payload.decode()


async def test_sigterm_lets_writes_in_flight_finish_and_loses_none(
    server: Server, database: Database, empty_tables: None
) -> None:
    user_id = uuid4()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        warm_up = await client.post(
            "/api/tasks", json={"title": "before"}, headers={"X-User-ID": str(user_id)}
        )
    assert warm_up.status_code == 201

    in_flight = [
        await start_write(server.port, user_id, f"in flight {n}") for n in range(IN_FLIGHT)
    ]
    server.process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(PATIENCE):
        # Every worker has stopped accepting and is draining before any body is sent.
        await server.read_log_until("Shutting down", WORKERS)
        responses = await asyncio.gather(*(finish_write(*request) for request in in_flight))
        exit_code = await server.process.wait()
        await server.read_log_until("Finished server process", WORKERS)

    assert [status for status, _ in responses] == [201] * IN_FLIGHT, responses
    assert exit_code == 0
    assert "Application shutdown complete" in "".join(server.log)
    # Every request's access line is out, though lines wait in a buffer for up to a second.
    access = [line for line in server.log if "logger=todo.access" in line]
    assert len(access) == 1 + IN_FLIGHT, server.log
    acknowledged = {UUID(json.loads(payload)["id"]) for _, payload in responses}
    async with session(database) as orm:
        statement = select(col(Task.id)).where(col(Task.user_id) == user_id)
        stored = set((await orm.scalars(statement)).all())
    assert acknowledged < stored
    assert len(stored) == IN_FLIGHT + 1
