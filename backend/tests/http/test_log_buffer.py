"""The buffered log handler: bounded in time and size, warnings at once, nothing lost."""

import asyncio
import contextlib
import io
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from tests.helpers import free_port
from tests.test_shutdown import PATIENCE, Server
from todo.config import BACKEND_DIR, Settings
from todo.db import Database
from todo.db.migrate import upgrade
from todo.http.log_buffer import BufferedStreamHandler


class Recorder(io.StringIO):
    """A stream that counts its writes and lets a test wait for one."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.written = threading.Event()

    def write(self, text: str) -> int:
        self.writes += 1
        count = super().write(text)
        self.written.set()
        return count


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"test.log_buffer.{id(handler)}")
    logger.propagate = False
    logger.handlers = [handler]
    logger.setLevel(logging.DEBUG)
    return logger


def test_lines_wait_in_the_buffer_and_go_out_together() -> None:
    stream = Recorder()
    handler = BufferedStreamHandler(stream, interval=60)
    logger = _logger(handler)

    for number in range(3):
        logger.info("request %d", number)
    assert stream.getvalue() == ""

    handler.flush()
    assert stream.getvalue() == "request 0\nrequest 1\nrequest 2\n"
    assert stream.writes == 1
    handler.close()


def test_an_idle_process_writes_its_lines_within_the_interval() -> None:
    stream = Recorder()
    handler = BufferedStreamHandler(stream, interval=0.2)
    logger = _logger(handler)

    started = time.monotonic()
    logger.info("the last request before a lull")
    assert stream.written.wait(timeout=5)

    assert stream.getvalue() == "the last request before a lull\n"
    assert time.monotonic() - started < 2
    handler.close()


def test_a_warning_is_written_at_once_after_the_lines_before_it() -> None:
    stream = Recorder()
    handler = BufferedStreamHandler(stream, interval=60)
    logger = _logger(handler)

    logger.info("first")
    logger.warning("something is wrong")

    assert stream.getvalue() == "first\nsomething is wrong\n"
    logger.error("worse")
    assert stream.getvalue().endswith("something is wrong\nworse\n")
    handler.close()


def test_a_full_buffer_is_written_without_waiting() -> None:
    stream = Recorder()
    handler = BufferedStreamHandler(stream, interval=60, max_records=5)
    logger = _logger(handler)

    for number in range(20):
        logger.info("line %02d of a burst", number)

    # Never more than the bound waits: a burst goes out in a few writes, in order.
    assert len(stream.getvalue().splitlines()) >= 20 - 5
    assert 1 < stream.writes < 20
    handler.flush()
    assert stream.getvalue().splitlines() == [f"line {n:02d} of a burst" for n in range(20)]
    handler.close()


def test_closing_writes_what_is_left_and_stops_the_flusher() -> None:
    stream = Recorder()
    handler = BufferedStreamHandler(stream, interval=0.05)
    logger = _logger(handler)
    logger.info("the last line")

    handler.close()

    assert stream.getvalue() == "the last line\n"
    flusher = handler._flusher
    assert flusher is not None
    flusher.join(timeout=5)
    assert not flusher.is_alive()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """`make serve`'s command on a throwaway port and SQLite file, rate limited on a dead Redis.

    The rate limiter logs a warning on the first request that finds Redis unreachable.
    """
    url = f"sqlite:///{tmp_path}/todo.db"
    database = Database(url, Settings(database_url=url))
    try:
        await upgrade(database.engine)
    finally:
        await database.dispose()
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "uvicorn", "todo.main:create_app", "--factory"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "2"),
        *("--no-access-log", "--timeout-graceful-shutdown", "20"),
        cwd=BACKEND_DIR,
        env={
            **os.environ,
            "DATABASE_URL": url,
            "RATE_LIMIT": "100/s",
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        },
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    server = Server(process, port)
    try:
        async with asyncio.timeout(PATIENCE):
            await server.read_log_until("Application startup complete", 2)
        yield server
    finally:
        # The workers share the stderr pipe: the wait ends once all of them have gone.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(PATIENCE):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


async def _seen_after(server: Server, text: str) -> float:
    """Seconds until a line containing `text` is written."""
    started = time.monotonic()
    async with asyncio.timeout(PATIENCE):
        await server.read_log_until(text, 1)
    return time.monotonic() - started


async def test_a_served_line_is_written_within_a_second_while_idle(server: Server) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        response = await client.get("/health", headers={"X-Request-ID": "idle-probe"})
    assert response.status_code == 200

    # One second of buffering, plus slack for a busy machine.
    assert await _seen_after(server, "request_id=idle-probe") < 2.5


async def test_a_warning_is_written_at_once_in_a_served_process(server: Server) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        response = await client.get("/api/tasks", headers={"X-User-ID": str(uuid4())})
    assert response.status_code == 200

    assert await _seen_after(server, "Redis unreachable") < 0.5


def test_a_message_says_what_its_arguments_were_when_it_was_logged() -> None:
    stream = Recorder()
    handler = BufferedStreamHandler(stream, interval=60)
    logger = _logger(handler)
    pending = ["first"]

    logger.info("pending: %s", pending)
    pending.append("second")
    handler.flush()

    assert stream.getvalue() == "pending: ['first']\n"
    handler.close()
