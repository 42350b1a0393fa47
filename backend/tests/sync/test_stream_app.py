"""The change stream inside one app: what it holds while idle, its metrics, its ends.

These drive the ASGI app directly, so a test reads the stream's messages as
they are sent; the stream over a real socket, across processes, is in
test_stream_served.py.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from tests.conftest import DatabaseUrls
from todo.config import Settings
from todo.db import Database
from todo.main import create_app

HEARTBEAT = 0.2


class OpenStream:
    """One GET of the stream, sent straight to the app, its body read as it comes."""

    def __init__(self, app: FastAPI, headers: dict[str, str], path: str = "/api/tasks/stream"):
        self.status: int | None = None
        self.body = b""
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._disconnect = asyncio.Event()
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        self.task = asyncio.create_task(app(scope, self._receive, self._send))

    async def _receive(self) -> dict[str, Any]:
        if not hasattr(self, "_requested"):
            self._requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._disconnect.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self._chunks.put_nowait(message.get("body", b""))
            if not message.get("more_body", False):
                self._chunks.put_nowait(None)

    async def read_until(self, marker: bytes, within: float = 5) -> bytes:
        async with asyncio.timeout(within):
            while marker not in self.body:
                chunk = await self._chunks.get()
                assert chunk is not None, f"the stream ended before {marker!r}: {self.body!r}"
                self.body += chunk
        return self.body

    async def until_end(self, within: float) -> bytes:
        async with asyncio.timeout(within):
            while (chunk := await self._chunks.get()) is not None:
                self.body += chunk
            await self.task
        return self.body

    async def close(self) -> None:
        self._disconnect.set()
        async with asyncio.timeout(5):
            await self.task


async def _until(condition: Callable[[], bool], within: float = 5) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110  (a pool count, no event to wait on)
            await asyncio.sleep(0.01)


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def _app(database: Database, database_url: str, **settings: Any) -> FastAPI:
    settings = {"sync_heartbeat_seconds": HEARTBEAT, **settings}
    return create_app(Settings(database_url=database_url, **settings), database=database)


async def test_idle_streams_hold_no_database_connection(
    app: FastAPI, database_urls: DatabaseUrls, headers: dict[str, str]
) -> None:
    settings = Settings(
        database_url=database_urls.app,
        database_url_direct=database_urls.direct,
        database_pool_size=2,
        sync_heartbeat_seconds=30,
    )
    small_pool = Database(database_urls.app, settings)
    sync_app = create_app(settings, database=small_pool)
    streams = [OpenStream(sync_app, headers) for _ in range(5)]
    try:
        for stream in streams:
            await stream.read_until(b"event: ready")
        # More streams than the pool has connections, all waiting: none is lent
        # out (once any recheck the listener's start set off is over), and a
        # request gets one at once.
        await _until(lambda: not small_pool.pool_checked_out())
        async with served(sync_app) as client, asyncio.timeout(5):
            response = await client.post("/api/tasks", json={"title": "a"}, headers=headers)
        assert response.status_code == 201
        for stream in streams:
            await stream.read_until(b'"title":"a"')
    finally:
        for stream in streams:
            await stream.close()
        await small_pool.dispose()


async def test_closing_the_streams_ends_them_at_once(
    app: FastAPI, database: Database, database_url: str, headers: dict[str, str]
) -> None:
    sync_app = _app(database, database_url, sync_heartbeat_seconds=30)
    stream = OpenStream(sync_app, headers)
    await stream.read_until(b"event: ready")
    started = time.monotonic()

    sync_app.state.streams.close()
    body = await stream.until_end(within=5)

    assert time.monotonic() - started < 1
    assert stream.status == 200
    assert body.endswith(b"\n\n")


async def test_the_stream_ends_after_its_maximum_age(
    app: FastAPI, database: Database, database_url: str, headers: dict[str, str]
) -> None:
    sync_app = _app(database, database_url, sync_stream_max_seconds=1)
    started = time.monotonic()
    stream = OpenStream(sync_app, headers)

    body = await stream.until_end(within=5)

    # Up to a tenth early, at random.
    assert 0.85 <= time.monotonic() - started < 3
    assert b"event: ready" in body


async def test_streams_beyond_the_limit_are_refused_with_retry_after(
    app: FastAPI, database: Database, database_url: str, headers: dict[str, str]
) -> None:
    sync_app = _app(database, database_url, sync_max_streams=1)
    first = OpenStream(sync_app, headers)
    try:
        await first.read_until(b"event: ready")
        async with served(sync_app) as client:
            refused = await client.get("/api/tasks/stream", headers=headers)
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "urn:todo:problem:too-many-streams"
        assert int(refused.headers["Retry-After"]) > 0
    finally:
        await first.close()


async def test_sync_metrics_count_streams_and_events(
    app: FastAPI, database: Database, database_url: str, headers: dict[str, str]
) -> None:
    sync_app = _app(database, database_url, metrics_enabled=True)
    stream = OpenStream(sync_app, headers)
    try:
        await stream.read_until(b"event: ready")
        async with served(sync_app) as client:
            await client.post("/api/tasks", json={"title": "a"}, headers=headers)
            await stream.read_until(b'"title":"a"')
            during = (await client.get("/metrics")).text
        await stream.close()
        async with served(sync_app) as client:
            after = (await client.get("/metrics")).text
    finally:
        await stream.close()

    assert "sync_streams_open 1.0" in during
    assert "sync_events_total 1.0" in during
    assert "sync_streams_open 0.0" in after
    if database.dialect == "postgresql":
        # The create's notice, heard back on the listening connection (the suite's
        # database is shared, so others may have been heard before).
        assert _value(during, "sync_notices_received_total") >= 1
    # Exposed (other tests may have cut the shared database's listener).
    assert _value(after, "sync_listener_reconnects_total") >= 0


def _value(exposition: str, name: str) -> float:
    [line] = [line for line in exposition.splitlines() if line.startswith(f"{name} ")]
    return float(line.split()[1])


async def test_a_browser_on_another_origin_may_resume_with_last_event_id(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options(
        "/api/tasks/stream",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "last-event-id,x-user-id",
        },
    )

    assert response.status_code == 200
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "last-event-id" in allowed
