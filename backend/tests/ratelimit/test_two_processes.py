"""Two real server processes on loopback, one Redis: one limit per user."""

import asyncio
import contextlib
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import httpx
from fastapi import FastAPI

from todo.db import Database

BACKEND_DIR = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 60


@contextlib.asynccontextmanager
async def _server(env: dict[str, str]) -> AsyncIterator[str]:
    """Uvicorn on a socket bound here, so the port is ours before it starts."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        "todo.main:create_app",
        "--factory",
        "--fd",
        str(sock.fileno()),
        "--no-access-log",
        cwd=BACKEND_DIR,
        env={**os.environ, **env},
        pass_fds=[sock.fileno()],
    )
    sock.close()
    base_url = f"http://127.0.0.1:{port}"
    try:
        await _until_ready(base_url, process)
        yield base_url
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _until_ready(base_url: str, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    async with httpx.AsyncClient(base_url=base_url) as client:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise AssertionError(f"the server exited with {process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/health")).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise AssertionError("the server did not start")


async def test_two_server_processes_share_each_users_bucket_through_redis(
    app: FastAPI, database: Database, database_url: str, redis_url: str, redis_prefix: str
) -> None:
    env = {
        "DATABASE_URL": database_url,
        "RATE_LIMIT": "1/m burst 4",
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": redis_prefix,
        "LOG_LEVEL": "WARNING",
    }
    headers = {"X-User-ID": str(uuid4())}
    async with _server(env) as one, _server(env) as two, httpx.AsyncClient() as client:
        responses = [
            await client.get(f"{base_url}/api/tasks", headers=headers)
            for base_url in (one, two, one, two, one, two)
        ]

    assert [response.status_code for response in responses] == [200, 200, 200, 200, 429, 429]
    # Each process saw the other's requests: the count ran down across both.
    assert [response.headers["RateLimit"].split(";")[1] for response in responses] == [
        "r=3",
        "r=2",
        "r=1",
        "r=0",
        "r=0",
        "r=0",
    ]
    assert "Retry-After" in responses[4].headers
