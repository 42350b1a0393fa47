"""The database goes away, drops connections, or loses an answer: the service copes.

The app reaches PostgreSQL (or PgBouncer) through a TCP proxy the test breaks;
see tests/tcp_proxy.py for the faults.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from tests.conftest import DatabaseUrls
from tests.environment import TEST_POSTGRES_ADMIN_URL, only_on
from tests.helpers import session
from tests.postgres import admin_connection, terminate_backends
from tests.tcp_proxy import TcpProxy
from todo.config import Settings
from todo.db import Database
from todo.main import create_app
from todo.tasks.models import Task

CONNECT_TIMEOUT = 1.0
# The bound: a request fails within the connect timeout plus a second.
DEADLINE = CONNECT_TIMEOUT + 1.0

pytestmark = only_on("postgresql")


@dataclass
class ProxiedService:
    client: httpx.AsyncClient
    database: Database
    proxy: TcpProxy
    headers: dict[str, str]

    async def create(self, title: str = "Buy milk") -> httpx.Response:
        return await self.client.post("/api/tasks", json={"title": title}, headers=self.headers)

    async def timed(self, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = await self.client.request(method, path, headers=self.headers, **kwargs)
        return response, time.monotonic() - started


def fault_settings(url: str, **overrides: Any) -> Settings:
    options: dict[str, Any] = {
        "database_connect_timeout": CONNECT_TIMEOUT,
        "database_command_timeout": 2.0,
        "database_pool_size": 2,
        "database_max_overflow": 0,
        **overrides,
    }
    return Settings(database_url=url, **options)


async def proxied_service(
    proxy: TcpProxy, database_urls: DatabaseUrls, headers: dict[str, str], **overrides: Any
) -> ProxiedService:
    url = (
        make_url(database_urls.app)
        .set(host="127.0.0.1", port=proxy.port)
        .render_as_string(hide_password=False)
    )
    settings = fault_settings(url, **overrides)
    database = Database(url, settings)
    transport = httpx.ASGITransport(
        app=create_app(settings, database=database), raise_app_exceptions=False
    )
    client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    return ProxiedService(client, database, proxy, headers)


@pytest.fixture
async def proxy(database_urls: DatabaseUrls) -> AsyncIterator[TcpProxy]:
    target = make_url(database_urls.app)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture
async def service(
    proxy: TcpProxy, database_urls: DatabaseUrls, headers: dict[str, str], empty_tables: None
) -> AsyncIterator[ProxiedService]:
    service = await proxied_service(proxy, database_urls, headers)
    yield service
    await service.client.aclose()
    await service.database.dispose()


async def count_tasks(database: Database) -> int:
    async with session(database) as orm:
        return int(await orm.scalar(select(func.count()).select_from(Task)) or 0)


def assert_unavailable(response: httpx.Response, elapsed: float | None = None) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "2"
    assert response.json()["type"] == "urn:todo:problem:database-unavailable"
    if elapsed is not None:
        assert elapsed < DEADLINE


def on_statement(
    database: Database, contains: str, action: Callable[[], None], times: int = 1
) -> list[str]:
    """Call `action` just before the first `times` statements containing `contains` are sent."""
    seen: list[str] = []

    def before(statement: str) -> None:
        if contains in " ".join(statement.upper().split()):
            seen.append(statement)
            if len(seen) <= times:
                action()

    database.listeners.append(before)
    return seen


def commit_point(database: Database) -> str:
    """The statement whose sending commits a task's INSERT: itself, unless in a transaction."""
    return "COMMIT" if database.single_writes_in_transaction else "INSERT INTO TASKS"


async def test_refused_connections_fail_fast_and_recover_on_the_next_request(
    service: ProxiedService,
) -> None:
    assert (await service.create()).status_code == 201
    await service.proxy.cut()

    # The POST may be sent on the pooled connection before its reset is seen
    # (no ping within DATABASE_POOL_PING_IDLE_SECONDS of its last use): then
    # its fate is unknown to the service, though nothing reached the database.
    response, elapsed = await service.timed("POST", "/api/tasks", json={"title": "Lost"})
    assert response.status_code == 503, response.text
    assert response.json()["type"] in {
        "urn:todo:problem:database-unavailable",
        "urn:todo:problem:write-outcome-unknown",
    }
    assert elapsed < DEADLINE
    for method, path in [("GET", "/api/tasks"), ("GET", "/health/ready")]:
        response, elapsed = await service.timed(method, path)
        assert_unavailable(response, elapsed)

    await service.proxy.restore()
    assert (await service.create("Back")).status_code == 201
    listed = await service.client.get("/api/tasks", headers=service.headers)
    assert [task["title"] for task in listed.json()] == ["Back", "Buy milk"]


async def test_a_silent_database_fails_requests_within_the_connect_timeout(
    proxy: TcpProxy, database_urls: DatabaseUrls, headers: dict[str, str], empty_tables: None
) -> None:
    # Only a ping finds a silent connection before a statement is sent on it, so
    # every checkout pings here. By default a connection given back less than
    # DATABASE_POOL_PING_IDLE_SECONDS ago is trusted: a request on it is bounded
    # by the command timeout instead.
    service = await proxied_service(
        proxy, database_urls, headers, database_pool_ping_idle_seconds=0
    )
    try:
        assert (await service.create()).status_code == 201
        service.proxy.blackhole()

        # The pooled connection stops answering its ping; a new one never completes.
        for method, path in [
            ("POST", "/api/tasks"),
            ("GET", "/api/tasks"),
            ("GET", "/health/ready"),
        ]:
            response, elapsed = await service.timed(method, path, json={"title": "Lost"})
            assert_unavailable(response, elapsed)

        await service.proxy.restore()
        assert (await service.create("Back")).status_code == 201
        # No connection was stranded by the requests given up on.
        assert service.database.pool_checked_out() == 0
    finally:
        await service.client.aclose()
        await service.database.dispose()


async def test_the_service_starts_and_waits_while_the_database_is_down(
    proxy: TcpProxy, database_urls: DatabaseUrls, headers: dict[str, str], empty_tables: None
) -> None:
    await proxy.cut()
    service = await proxied_service(proxy, database_urls, headers)
    try:
        response, elapsed = await service.timed("GET", "/health")
        assert response.status_code == 200
        response, elapsed = await service.timed("GET", "/health/ready")
        assert_unavailable(response, elapsed)

        await proxy.restore()
        response, _ = await service.timed("GET", "/health/ready")
        assert response.json() == {"status": "ok", "database": "ok"}
        assert (await service.create()).status_code == 201
    finally:
        await service.client.aclose()
        await service.database.dispose()


async def test_liveness_never_opens_a_connection(service: ProxiedService) -> None:
    for _ in range(3):
        assert (await service.client.get("/health")).status_code == 200
    assert service.proxy.accepted == 0


async def test_connections_killed_under_the_pool_are_replaced(
    service: ProxiedService, database_urls: DatabaseUrls
) -> None:
    assert (await service.create()).status_code == 201
    database_name = make_url(database_urls.app).database or ""
    assert await terminate_backends(TEST_POSTGRES_ADMIN_URL, database_name) >= 1

    # A write, so nothing replays it: the pool itself must hand out a live connection.
    assert (await service.create("After the kill")).status_code == 201
    assert await count_tasks(service.database) == 2


async def test_a_read_whose_connection_drops_is_run_again(service: ProxiedService) -> None:
    assert (await service.create()).status_code == 201
    reads = on_statement(service.database, "SELECT", service.proxy.drop_connections)

    response = await service.client.get("/api/tasks", headers=service.headers)

    assert response.status_code == 200
    assert [task["title"] for task in response.json()] == ["Buy milk"]
    assert len(reads) == 2


async def test_a_new_users_upsert_whose_connection_drops_is_run_again(
    service: ProxiedService,
) -> None:
    upserts = on_statement(service.database, "INSERT INTO USERS", service.proxy.drop_connections)

    # The user's first request upserts their row: repeatable, so a drop is invisible.
    response = await service.client.get("/api/tasks", headers={"X-User-ID": str(uuid4())})

    assert response.status_code == 200, response.text
    assert response.json() == []
    assert len(upserts) == 2


async def test_a_write_whose_connection_drops_is_not_replayed(
    service: ProxiedService,
) -> None:
    assert (await service.create()).status_code == 201
    inserts = on_statement(service.database, "INSERT INTO TASKS", service.proxy.drop_connections)

    response = await service.create("Dropped")

    assert len(inserts) == 1
    assert_write_failed(response, service.database)
    assert await count_tasks(service.database) == 1


async def test_a_commit_whose_answer_is_lost_is_reported_in_doubt_and_not_replayed(
    service: ProxiedService,
) -> None:
    assert (await service.create()).status_code == 201
    inserts = on_statement(service.database, "INSERT INTO TASKS", lambda: None, times=0)
    on_statement(service.database, commit_point(service.database), service.proxy.lose_next_reply)

    response = await service.create("Committed, unacknowledged")

    assert_outcome_unknown(response)
    assert len(inserts) == 1
    # The commit did reach the database, exactly once.
    assert await count_tasks(service.database) == 2


def assert_write_failed(response: httpx.Response, database: Database) -> None:
    """A write cut off before its commit was sent: certainly not done, retry freely.

    In autocommit the statement is its own commit, so once it is sent its fate is
    unknown; in a transaction (behind PgBouncer) the COMMIT comes later.
    """
    if commit_point(database) == "COMMIT":
        assert_unavailable(response)
    else:
        assert_outcome_unknown(response)


def assert_outcome_unknown(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "urn:todo:problem:write-outcome-unknown"
    assert "retry-after" not in response.headers


async def test_a_statement_slower_than_the_command_timeout_is_cut_off(
    service: ProxiedService, database_urls: DatabaseUrls
) -> None:
    assert (await service.create()).status_code == 201
    admin = await admin_connection(database_urls.direct)
    try:
        transaction = admin.transaction()
        await transaction.start()
        await admin.execute("LOCK TABLE tasks IN EXCLUSIVE MODE")
        response, elapsed = await service.timed("POST", "/api/tasks", json={"title": "Blocked"})
        await transaction.rollback()
    finally:
        await admin.close()

    # The server cancels the statement itself, so its fate is known: not done.
    assert_unavailable(response)
    assert elapsed < 2.0 + 1.0
    assert (await service.create("Unblocked")).status_code == 201
    assert await count_tasks(service.database) == 2


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_statement_whose_answer_never_comes_is_cut_off_at_the_command_timeout(
    service: ProxiedService, method: str
) -> None:
    assert (await service.create()).status_code == 201
    # Silent from now on, both ways. The connection was given back just now, so
    # it is lent without a ping: the statement is sent and nothing answers.
    service.proxy.blackhole()

    response, elapsed = await service.timed(method, "/api/tasks", json={"title": "Unanswered"})

    if method == "GET":
        assert_unavailable(response)
    else:
        assert_write_failed(response, service.database)
    # The command timeout (2 s here, a little more where the server has its own).
    assert 2.0 <= elapsed < 2.0 + 1.0
    assert service.database.pool_checked_out() == 0
    await service.proxy.restore()
    assert (await service.create("Back")).status_code == 201


async def test_no_free_connection_in_the_pool_is_a_503(service: ProxiedService) -> None:
    # Both of the pool's connections held, each in a transaction.
    async with service.database.transaction(), service.database.transaction():
        response, elapsed = await service.timed("GET", "/api/tasks")

    assert_unavailable(response, elapsed)
    assert (await service.client.get("/api/tasks", headers=service.headers)).status_code == 200


@pytest.mark.parametrize(
    ("method", "lock"),
    [
        # The INSERT is prepared, then waits to run.
        ("POST", "EXCLUSIVE"),
        # Preparing the statement itself waits: the server dies mid-prepare.
        ("POST", "ACCESS EXCLUSIVE"),
        ("GET", "ACCESS EXCLUSIVE"),
    ],
)
async def test_a_backend_killed_in_the_middle_of_a_statement_is_a_503(
    service: ProxiedService, database_urls: DatabaseUrls, method: str, lock: str
) -> None:
    assert (await service.create()).status_code == 201
    admin = await admin_connection(database_urls.direct)
    try:
        transaction = admin.transaction()
        await transaction.start()
        await admin.execute(f"LOCK TABLE tasks IN {lock} MODE")
        blocked = asyncio.create_task(service.timed(method, "/api/tasks", json={"title": "x"}))
        # Kill whatever queues behind the lock (a replayed read queues again).
        while not blocked.done():
            await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        response, _ = await blocked
        await transaction.rollback()
    finally:
        await admin.close()

    if method == "GET":
        assert_unavailable(response)
    else:
        assert_write_failed(response, service.database)
    assert (await service.create("After")).status_code == 201
    assert await count_tasks(service.database) == 2
