"""The live stream over a real socket: served processes, as `make serve` runs them.

Each test starts uvicorn (the Makefile's UVICORN_FLAGS) on a free loopback port
and the suite's database (a throwaway one on PostgreSQL, migrated), and reads
`GET /api/tasks/stream` with httpx as a browser's EventSource would: the
catch-up, `ready`, one `changes` event per write, the heartbeats, the server's
own end of the stream (maximum age, token expiry, SIGTERM), the refusals that
come before any event, and, on PostgreSQL, a write on one server reaching a
stream on another, also after the listening connection is killed.
"""

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import jwt
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import DatabaseUrls
from tests.db.test_server_restart import (
    PATIENCE,
    service_environment,
    stop_process_group,
    wait_until_ready,
)
from tests.environment import only_on
from tests.helpers import assert_problem, free_port
from tests.postgres import admin_connection
from todo.config import BACKEND_DIR
from todo.db import Database
from todo.db.postgres import LISTENER_APPLICATION_NAME

HEARTBEAT_SECONDS = 0.5
# How long a test waits for an event it expects (they come in milliseconds).
EVENT_WITHIN = 5.0
GRACEFUL_SHUTDOWN_SECONDS = 20
INVALID_CURSOR = "urn:todo:problem:invalid-cursor"
CURSOR_EXPIRED = "urn:todo:problem:sync-cursor-expired"
TOO_MANY_STREAMS = "urn:todo:problem:too-many-streams"
JWT_SECRET = "a test secret of at least thirty-two bytes"
MAX_STREAMS = 2
# The JWT server's SYNC_STREAM_MAX_SECONDS: a token expiring sooner ends its stream first.
STREAM_MAX_SECONDS = 4.0

Change = dict[str, Any]


# The Server-Sent Events wire format ------------------------------------------------


@dataclass
class Message:
    """One block of lines up to a blank line: an event, or a comment (a heartbeat)."""

    event: str | None = None
    id: str | None = None
    data: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    # time.monotonic() when the blank line ending it was read.
    at: float = 0.0

    @property
    def is_heartbeat(self) -> bool:
        return self.event is None and not self.data and self.comments == ["heartbeat"]

    def json(self) -> dict[str, Any]:
        value = json.loads("\n".join(self.data))
        assert isinstance(value, dict), self
        return value

    @property
    def changes(self) -> list[Change]:
        assert self.event == "changes", self
        changes = self.json()["changes"]
        assert isinstance(changes, list)
        return changes


async def sse_messages(response: httpx.Response) -> AsyncIterator[Message]:
    """The messages of an event stream, each complete (a body never ends inside one)."""
    message = Message()
    started = False
    async for line in response.aiter_lines():
        if line == "":
            if started:
                message.at = time.monotonic()
                yield message
            message, started = Message(), False
            continue
        started = True
        if line.startswith(":"):
            message.comments.append(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            message.data.append(value)
        elif name == "event":
            message.event = value
        elif name == "id":
            message.id = value
        else:
            raise AssertionError(f"a line this stream should not send: {line!r}")
    assert not started, f"the body ended inside a message: {message}"


class Stream:
    """An open event stream, read in the background as it arrives."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self._ended = False
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in sse_messages(self.response):
                self._queue.put_nowait(message)
        finally:
            self._queue.put_nowait(None)

    async def next_message(self, within: float = EVENT_WITHIN) -> Message:
        """The next message, heartbeats included."""
        assert not self._ended, "the stream has ended"
        try:
            message = await asyncio.wait_for(self._queue.get(), within)
        except TimeoutError:
            raise AssertionError(f"nothing came within {within:.1f} s") from None
        if message is None:
            self._ended = True
            await self.reader  # raises what ended it, if it was no clean end
            raise AssertionError("the stream ended")
        return message

    async def next_event(self, within: float = EVENT_WITHIN) -> Message:
        """The next event, past any heartbeats."""
        deadline = time.monotonic() + within
        while True:
            message = await self.next_message(max(deadline - time.monotonic(), 0))
            if not message.is_heartbeat:
                return message

    async def catch_up(self) -> tuple[list[Message], Message]:
        """The `changes` events before `ready`, and `ready`."""
        caught_up: list[Message] = []
        while (message := await self.next_event()).event != "ready":
            assert message.event == "changes", message
            assert message.id, message
            caught_up.append(message)
        # Its id, if it has one, is its cursor: an EventSource resumes from there.
        assert message.id in (None, message.json()["cursor"]), message
        return caught_up, message

    async def quiet_for_heartbeats(self, count: int) -> list[Message]:
        """Read until `count` heartbeats came; what came meanwhile besides them."""
        others: list[Message] = []
        seen = 0
        while seen < count:
            message = await self.next_message()
            if message.is_heartbeat:
                seen += 1
            else:
                others.append(message)
        return others

    async def until_end(self, within: float) -> list[Message]:
        """Every message until the server ends the body, which must be a clean end."""
        messages: list[Message] = []
        deadline = time.monotonic() + within
        while True:
            assert not self._ended, "the stream has ended"
            try:
                message = await asyncio.wait_for(
                    self._queue.get(), max(deadline - time.monotonic(), 0)
                )
            except TimeoutError:
                raise AssertionError(f"the stream did not end within {within:.1f} s") from None
            if message is None:
                self._ended = True
                # A reset or an incomplete chunked body raises here.
                await self.reader
                return messages
            messages.append(message)


class StreamRefusedError(AssertionError):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.status_code} {response.text}")
        self.response = response


@contextlib.asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, headers: dict[str, str], **params: str
) -> AsyncIterator[Stream]:
    """The stream, its headers checked; closing it hangs up, as a closed browser tab does."""
    async with client.stream(
        "GET", "/api/tasks/stream", headers=headers, params=params
    ) as response:
        if response.status_code != 200:
            await response.aread()
            raise StreamRefusedError(response)
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        stream = Stream(response)
        try:
            yield stream
        finally:
            stream.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await stream.reader


async def enter_stream_when_room(
    exit_stack: contextlib.AsyncExitStack, client: httpx.AsyncClient, headers: dict[str, str]
) -> Stream:
    """A stream, once the server has room (it counts a closed one out when it sees it go)."""
    deadline = time.monotonic() + EVENT_WITHIN
    while True:
        try:
            return await exit_stack.enter_async_context(open_stream(client, headers))
        except StreamRefusedError as refused:
            assert_problem(refused.response, 503)
            assert time.monotonic() < deadline, "closed streams still hold their room"
            await asyncio.sleep(0.05)


async def refused_stream(
    client: httpx.AsyncClient, headers: dict[str, str], status: int, **params: str
) -> tuple[httpx.Response, dict[str, Any]]:
    """A stream request answered with an ordinary problem document instead of events."""
    async with (
        asyncio.timeout(EVENT_WITHIN),
        client.stream("GET", "/api/tasks/stream", headers=headers, params=params) as response,
    ):
        await response.aread()
    return response, assert_problem(response, status)


# Served processes -----------------------------------------------------------------


@dataclass
class Served:
    process: asyncio.subprocess.Process
    base_url: str
    log_file: Path

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def client(self) -> httpx.AsyncClient:
        # Reads wait out the longest heartbeat a test sets.
        return httpx.AsyncClient(base_url=self.base_url, timeout=PATIENCE)


class Servers:
    """`make serve`'s command on the test database, with settings of a test's own."""

    def __init__(self, database_urls: DatabaseUrls, folder: Path) -> None:
        self._urls = database_urls
        self._folder = folder
        self._started: list[Served] = []

    async def start(self, workers: int = 1, **settings: str) -> Served:
        port = free_port()
        log_file = self._folder / f"server-{port}.log"
        environment = {**service_environment(self._urls.app), **settings}
        if self._urls.backend == "postgresql":
            # As in production: the LISTEN goes to the direct endpoint.
            environment["DATABASE_URL_DIRECT"] = self._urls.direct
            # And through PgBouncer (`make test-pgbouncer`), as the suite's own app connects.
            if "DATABASE_POOL_MODE" in os.environ:
                environment["DATABASE_POOL_MODE"] = os.environ["DATABASE_POOL_MODE"]
        with log_file.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "uvicorn", "todo.main:create_app", "--factory"),
                *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
                "--no-access-log",
                *("--timeout-graceful-shutdown", str(GRACEFUL_SHUTDOWN_SECONDS)),
                cwd=BACKEND_DIR,
                env=environment,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        served = Served(process, f"http://127.0.0.1:{port}", log_file)
        self._started.append(served)
        async with served.client() as client:
            try:
                await wait_until_ready(client, process)
            except (AssertionError, TimeoutError) as error:
                raise AssertionError(
                    f"the server did not start; its log:\n{served.log()}"
                ) from error
        return served

    async def stop(self) -> None:
        await asyncio.gather(*(stop_process_group(served.process) for served in self._started))


@pytest.fixture
async def servers(
    database_urls: DatabaseUrls, database: Database, empty_tables: None, tmp_path: Path
) -> AsyncIterator[Servers]:
    """Servers of one test, stopped after it (before its rows are emptied)."""
    started = Servers(database_urls, tmp_path)
    yield started
    await started.stop()


# A served process takes seconds to start on a busy machine: the tests that
# can share one do (each with users of its own; `empty_tables` empties the
# tables after each test while the server runs on).


@pytest.fixture(scope="module")
async def module_servers(
    database_urls: DatabaseUrls, database: Database, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Servers]:
    started = Servers(database_urls, tmp_path_factory.mktemp("servers"))
    yield started
    await started.stop()


@pytest.fixture(scope="module")
async def header_server(module_servers: Servers) -> Served:
    """Header mode, heartbeats every half second, two streams at most."""
    return await module_servers.start(
        SYNC_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS), SYNC_MAX_STREAMS=str(MAX_STREAMS)
    )


@pytest.fixture(scope="module")
async def jwt_server(module_servers: Servers) -> Served:
    """JWT mode, heartbeats every half second, streams ended after a few seconds."""
    return await module_servers.start(
        AUTH_MODE="jwt",
        AUTH_JWT_SECRET=JWT_SECRET,
        SYNC_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS),
        SYNC_STREAM_MAX_SECONDS=str(STREAM_MAX_SECONDS),
    )


def bearer_for(subject: str, expires: int) -> dict[str, str]:
    token = jwt.encode({"sub": subject, "exp": expires}, JWT_SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Writer:
    """One user's writes over HTTP, each returned as the change a stream should carry."""

    client: httpx.AsyncClient
    headers: dict[str, str]

    async def create(self, title: str) -> Change:
        response = await self.client.post("/api/tasks", json={"title": title}, headers=self.headers)
        assert response.status_code == 201, response.text
        return {"op": "upsert", "task": response.json()}

    async def update(self, task_id: str, **fields: Any) -> Change:
        response = await self.client.put(f"/api/tasks/{task_id}", json=fields, headers=self.headers)
        assert response.status_code == 200, response.text
        return {"op": "upsert", "task": response.json()}

    async def toggle(self, task_id: str) -> Change:
        response = await self.client.patch(f"/api/tasks/{task_id}/complete", headers=self.headers)
        assert response.status_code == 200, response.text
        return {"op": "upsert", "task": response.json()}

    async def delete(self, task_id: str) -> Change:
        response = await self.client.delete(f"/api/tasks/{task_id}", headers=self.headers)
        assert response.status_code == 204, response.text
        return {"op": "delete", "id": task_id}

    async def tasks(self) -> dict[str, dict[str, Any]]:
        response = await self.client.get("/api/tasks", headers=self.headers)
        assert response.status_code == 200, response.text
        assert "link" not in response.headers, "more tasks than one page"
        return {task["id"]: task for task in response.json()}


def task_id_of(change: Change) -> str:
    return str(change["task"]["id"] if change["op"] == "upsert" else change["id"])


def latest_per_task(writes: list[Change]) -> list[Change]:
    """What a feed carries for these writes: each task once, latest state, in write order."""
    latest = {task_id_of(change): change for change in writes}
    order = sorted(
        latest,
        key=lambda task_id: max(
            number for number, change in enumerate(writes) if task_id_of(change) == task_id
        ),
    )
    return [latest[task_id] for task_id in order]


def apply(replica: dict[str, dict[str, Any]], changes: list[Change]) -> None:
    for change in changes:
        if change["op"] == "upsert":
            replica[change["task"]["id"]] = change["task"]
        else:
            assert change["op"] == "delete", change
            replica.pop(change["id"], None)


def new_user() -> dict[str, str]:
    return {"X-User-ID": str(uuid4())}


# The tests ---------------------------------------------------------------------------


async def test_each_write_is_one_event_and_a_reconnect_resumes_after_the_last_id(
    header_server: Served, empty_tables: None
) -> None:
    server = header_server
    headers = new_user()
    async with server.client() as client:
        writer = Writer(client, headers)
        first = await writer.create("first")
        second = await writer.create("second")
        gone = await writer.create("deleted before the snapshot")
        await writer.delete(task_id_of(gone))
        replica: dict[str, dict[str, Any]] = {}
        first_id, second_id = task_id_of(first), task_id_of(second)

        async with open_stream(client, headers) as stream:
            caught_up, ready = await stream.catch_up()
            # The snapshot: the live tasks, no tombstone of one the client never had.
            assert [change for event in caught_up for change in event.changes] == [first, second]
            snapshot_cursor = ready.json()["cursor"]
            assert caught_up[-1].id == snapshot_cursor
            for event in caught_up:
                apply(replica, event.changes)

            live_ids = []
            third = await writer.create("third")
            for write in (
                third,
                await writer.update(first_id, title="first, renamed"),
                await writer.toggle(second_id),
                await writer.delete(first_id),
            ):
                event = await stream.next_event()
                assert event.event == "changes", event
                assert event.changes == [write], event
                assert event.id is not None, event
                live_ids.append(event.id)
                apply(replica, event.changes)
            # Nothing more: no event came twice, by the time the stream has
            # rechecked the database at a heartbeat (the second ends the first's read).
            assert await stream.quiet_for_heartbeats(2) == []
        assert len(set(live_ids)) == len(live_ids)
        assert replica == await writer.tasks()

        # Disconnected: writes the client misses.
        third_id = task_id_of(third)
        missed = [await writer.create("made while away")]
        missed += [
            await writer.toggle(task_id_of(missed[0])),
            await writer.update(second_id, description="while away"),
            await writer.delete(third_id),
        ]
        brief = await writer.create("made and deleted while away")
        missed += [brief, await writer.delete(task_id_of(brief))]

        # Last-Event-ID wins over an older `since`, as an EventSource sends both.
        resumed_headers = {**headers, "Last-Event-ID": live_ids[-1]}
        async with open_stream(client, resumed_headers, since=snapshot_cursor) as stream:
            caught_up, ready = await stream.catch_up()
            received = [change for event in caught_up for change in event.changes]
            assert received == latest_per_task(missed)
            apply(replica, received)
            assert replica == await writer.tasks()
            resumed_cursor = ready.json()["cursor"]

            # Live again after the catch-up.
            after = await writer.create("after the reconnect")
            event = await stream.next_event()
            assert event.changes == [after]
            apply(replica, event.changes)
            assert event.id is not None
            last_id = event.id
        assert replica == await writer.tasks()

        # From the last id, nothing to catch up: `ready` at once.
        async with open_stream(client, {**headers, "Last-Event-ID": last_id}) as stream:
            caught_up, _ = await stream.catch_up()
            assert caught_up == []
        # `since` alone works as Last-Event-ID does.
        async with open_stream(client, headers, since=resumed_cursor) as stream:
            caught_up, _ = await stream.catch_up()
            assert [change for event in caught_up for change in event.changes] == [after]


async def test_an_idle_stream_has_heartbeats_and_ends_after_its_maximum_age(
    jwt_server: Served, empty_tables: None
) -> None:
    headers = bearer_for("idle", int(time.time()) + 600)
    async with jwt_server.client() as client, open_stream(client, headers) as stream:
        opened = time.monotonic()
        caught_up, _ = await stream.catch_up()
        assert caught_up == []
        rest = await stream.until_end(within=STREAM_MAX_SECONDS + EVENT_WITHIN)
        ended = time.monotonic()

    assert all(message.is_heartbeat for message in rest), rest
    # A heartbeat every half second, until the stream's time is up.
    assert len(rest) >= STREAM_MAX_SECONDS / HEARTBEAT_SECONDS / 2, rest
    arrivals = [opened] + [message.at for message in rest]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert max(gaps) < HEARTBEAT_SECONDS * 3, gaps
    assert STREAM_MAX_SECONDS - 0.5 < ended - opened < STREAM_MAX_SECONDS + 2, ended - opened


async def test_a_stream_ends_when_its_token_expires_and_none_starts_without_one(
    jwt_server: Served, empty_tables: None
) -> None:
    async with jwt_server.client() as client:
        _, problem = await refused_stream(client, {}, 401)
        assert "token" in problem["detail"].lower(), problem

        expires = int(time.time()) + 2
        async with open_stream(client, bearer_for("expiring", expires)) as stream:
            await stream.catch_up()
            await stream.until_end(within=PATIENCE)
            ended = time.time()
    # At the token's expiry, before the stream's maximum age (at least 2 s later).
    assert expires - 0.5 < ended < expires + 1.5, ended - expires


async def test_refusals_come_as_problems_before_any_event_and_streams_are_limited(
    header_server: Served, empty_tables: None
) -> None:
    alice, bob = new_user(), new_user()
    async with header_server.client() as client:
        for headers, params in (
            ({**alice, "Last-Event-ID": "garbage"}, {}),
            (alice, {"since": "garbage"}),
            # The length of a cursor, not one this API issued.
            ({**alice, "Last-Event-ID": "!" * 32}, {}),
        ):
            _, problem = await refused_stream(client, headers, 400, **params)
            assert problem["type"] == INVALID_CURSOR, problem

        # Alice's cursor, offered by Bob, who has as many changes and more:
        # only the user it was issued to tells it apart.
        await Writer(client, alice).create("alice's")
        feed = await client.get("/api/tasks/changes", headers=alice)
        assert feed.status_code == 200, feed.text
        alices_cursor = feed.json()["cursor"]
        for _ in range(2):
            await Writer(client, bob).create("bob's")
        for headers, params in (
            ({**bob, "Last-Event-ID": alices_cursor}, {}),
            (bob, {"since": alices_cursor}),
        ):
            _, problem = await refused_stream(client, headers, 410, **params)
            assert problem["type"] == CURSOR_EXPIRED, problem

        # MAX_STREAMS on the one worker; the refusals above took no room.
        async with contextlib.AsyncExitStack() as kept:
            for _ in range(MAX_STREAMS - 1):
                await (await enter_stream_when_room(kept, client, alice)).catch_up()
            async with contextlib.AsyncExitStack() as closed:
                await (await enter_stream_when_room(closed, client, bob)).catch_up()
                response, problem = await refused_stream(client, new_user(), 503)
                assert problem["type"] == TOO_MANY_STREAMS, problem
                assert int(response.headers["retry-after"]) > 0
            # Hung up: its room is back.
            async with contextlib.AsyncExitStack() as again:
                await (await enter_stream_when_room(again, client, bob)).catch_up()


@only_on("postgresql")
async def test_a_write_on_one_server_reaches_a_stream_on_another(
    header_server: Served, servers: Servers, database_urls: DatabaseUrls
) -> None:
    # B's heartbeats far apart: what arrives within a second, or a few, came by a notice.
    heartbeat = 10.0
    a, b = header_server, await servers.start(SYNC_HEARTBEAT_SECONDS=str(heartbeat))
    headers = new_user()
    database_name = make_url(database_urls.direct).database
    admin = await admin_connection(database_urls.direct)
    listeners_query = (
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2"
    )

    async def listeners() -> set[int]:
        rows = await admin.fetch(listeners_query, database_name, LISTENER_APPLICATION_NAME)
        return {row["pid"] for row in rows}

    async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
        deadline = time.monotonic() + EVENT_WITHIN
        while not await condition():
            assert time.monotonic() < deadline, what
            await asyncio.sleep(0.05)

    async def both_listen() -> bool:
        return len(await listeners()) >= 2

    try:
        await until(both_listen, "both servers listen")
        async with a.client() as client_a, b.client() as client_b:
            writer = Writer(client_a, headers)
            async with open_stream(client_b, headers) as stream:
                await stream.catch_up()
                for write in ("create", "toggle"):
                    if write == "create":
                        change = await writer.create("made on A")
                    else:
                        change = await writer.toggle(task_id_of(change))
                    answered = time.monotonic()
                    event = await stream.next_event(within=heartbeat / 2)
                    assert event.changes == [change]
                    assert event.at - answered < 1.0, f"{write}: {event.at - answered:.3f} s"

                # Every listening connection of both servers, killed.
                # In the select list, not the WHERE: only the rows it keeps are killed.
                rows = await admin.fetch(
                    "SELECT pid, pg_terminate_backend(pid, 5000) AS gone FROM pg_stat_activity "
                    "WHERE datname = $1 AND application_name = $2",
                    database_name,
                    LISTENER_APPLICATION_NAME,
                )
                killed = {row["pid"] for row in rows if row["gone"]}
                assert len(killed) >= 2, rows
                # Made at once, while B may not listen yet: B's stream reads it when
                # the listener is back (before the next heartbeat's recheck).
                change = await writer.update(task_id_of(change), title="after the kill")
                answered = time.monotonic()
                event = await stream.next_event(within=heartbeat / 2)
                assert event.changes == [change]
                assert event.at - answered < EVENT_WITHIN

                async def replaced() -> bool:
                    return len((await listeners()) - killed) >= len(killed)

                await until(replaced, "every killed listener is replaced")
                # And the new connections carry notices: again within a second.
                change = await writer.toggle(task_id_of(change))
                answered = time.monotonic()
                event = await stream.next_event(within=heartbeat / 2)
                assert event.changes == [change]
                assert event.at - answered < 1.0, (
                    f"after the reconnect: {event.at - answered:.3f} s"
                )
    finally:
        await admin.close()
    assert "the listening connection was lost" in b.log()


async def test_sigterm_ends_open_streams_at_once_and_the_server_exits(servers: Servers) -> None:
    # Two workers, as `make serve` runs, with its graceful-shutdown timeout.
    server = await servers.start(workers=2, SYNC_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS))
    async with server.client() as client, contextlib.AsyncExitStack() as streams:
        opened = [
            await streams.enter_async_context(open_stream(client, new_user())) for _ in range(4)
        ]
        for stream in opened:
            await stream.catch_up()

        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        for stream in opened:
            # A clean end of the body: no reset, no incomplete chunked read.
            rest = await stream.until_end(within=PATIENCE)
            assert all(message.is_heartbeat for message in rest), rest
        streams_ended = time.monotonic() - signalled
        async with asyncio.timeout(PATIENCE):
            exit_code = await server.process.wait()
        exited = time.monotonic() - signalled

    log = server.log()
    assert streams_ended < 5, f"{streams_ended:.1f} s\n{log}"
    assert exited < 5, f"{exited:.1f} s (graceful timeout {GRACEFUL_SHUTDOWN_SECONDS} s)\n{log}"
    assert exit_code == 0, log
    assert "graceful shutdown exceeded" not in log
    assert "Traceback" not in log, log
