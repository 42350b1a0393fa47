"""The database server restarts and crashes under load: no 500, no write lost or doubled.

A PostgreSQL server of the test's own (tests/throwaway_postgres.py) is restarted
(`pg_ctl restart -m fast`) and crashed (`pg_ctl stop -m immediate`, then started
again, which is a crash recovery) while many clients send creates and toggles,
plain and with an Idempotency-Key, to the real service run as `make serve` runs
it (several uvicorn workers). Afterwards the database is read directly: every
acknowledged write is there, every write refused as not carried out is not, and
every keyed write was applied exactly once.
"""

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest

from tests.environment import needs_postgresql
from tests.helpers import free_port
from tests.throwaway_postgres import ThrowawayPostgres
from todo.config import BACKEND_DIR, Settings
from todo.db import Database
from todo.db.migrate import upgrade

pytestmark = needs_postgresql

UVICORN_WORKERS = 2
CLIENTS = 40
USERS = 8
# Each fault is followed by the service's recovery, then this many more 2xx
# answers from the clients before the next one, so every fault hits a busy service.
# More restarts than crashes: a fast shutdown sends each idle connection an error
# before it closes the socket, and a pooled connection lent in between (asyncpg
# has read the error, not yet the close) is the case most likely to go wrong;
# an immediate shutdown sends a notice only.
FAULTS = ["restart", "crash", "restart"] * 3
SUCCESSES_BETWEEN_FAULTS = 150
# The bound: a write succeeds again within this long of the database's return.
RECOVERY_SECONDS = 15.0
# A client's pause before trying again after a 503 or 409, as any client would
# (shorter than Retry-After, to keep the load up while the server is down).
BACKOFF_SECONDS = 0.02
# Only against hanging.
PATIENCE = 60.0

UNAVAILABLE = "urn:todo:problem:database-unavailable"
OUTCOME_UNKNOWN = "urn:todo:problem:write-outcome-unknown"
IN_FLIGHT = "urn:todo:problem:idempotency-key-in-flight"


@dataclass
class Service:
    base_url: str
    log_file: Path
    users: list[str]

    def records(self) -> Iterator[dict[str, Any]]:
        """The service's log records (it logs JSON, one record a line)."""
        for line in self.log_file.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record

    def tracebacks(self) -> dict[str, str]:
        """The traceback logged while serving each request that logged one, by request id."""
        return {
            str(record.get("request_id")): str(record["exc_info"])
            for record in self.records()
            if record.get("exc_info")
        }

    def warnings_tail(self, records: int = 10) -> str:
        """The last warnings and errors it logged (the outages it saw, the last one first)."""
        notable = [record for record in self.records() if record.get("level") != "INFO"]
        return "\n".join(
            f"{record.get('level')} {record.get('logger')}: {record.get('msg')}"
            for record in reversed(notable[-records:])
        )


def where_and_what(traceback: str) -> str:
    """The last frame of the service's own code in `traceback`, and what was raised."""
    lines = traceback.rstrip().splitlines()
    frames = [
        f"{line.strip()}: {lines[n + 1].strip() if n + 1 < len(lines) else ''}"
        for n, line in enumerate(lines)
        if line.lstrip().startswith("File ") and "/src/todo/" in line
    ]
    return f"{frames[-1] if frames else '(no frame of the service)'}\n    {lines[-1]}"


@pytest.fixture
async def database() -> AsyncIterator[ThrowawayPostgres]:
    server = ThrowawayPostgres()
    try:
        await server.init()
        await server.start()
        migrator = Database(server.url, Settings(database_url=server.url))
        try:
            await upgrade(migrator.engine)
        finally:
            await migrator.dispose()
        yield server
    finally:
        await server.close()


def service_environment(database_url: str) -> dict[str, str]:
    """This process's environment, minus what would point the service elsewhere."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DATABASE_", "REDIS_", "RATE_LIMIT", "AUTH_", "PROMETHEUS_"))
    }
    return {
        **environment,
        "DATABASE_URL": database_url,
        "AUTH_MODE": "header",
        # Read back by `Service.tracebacks`.
        "LOG_FORMAT": "json",
    }


async def wait_until_ready(client: httpx.AsyncClient, process: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(PATIENCE):
        while True:
            assert process.returncode is None, "the service exited"
            try:
                if (await client.get("/health/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


@pytest.fixture
async def service(database: ThrowawayPostgres) -> AsyncIterator[Service]:
    port = free_port()
    log_file = database.folder / "service.log"
    with log_file.open("wb") as log:
        # The serving command of `make serve` (UVICORN_FLAGS in the Makefile).
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "uvicorn", "todo.main:create_app", "--factory"),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", str(UVICORN_WORKERS)),
            *("--no-access-log", "--timeout-graceful-shutdown", "20"),
            cwd=BACKEND_DIR,
            env=service_environment(database.url),
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=PATIENCE) as client:
            await wait_until_ready(client, process)
        yield Service(base_url, log_file, [str(uuid4()) for _ in range(USERS)])
    finally:
        await stop_process_group(process)


async def stop_process_group(process: asyncio.subprocess.Process) -> None:
    """SIGTERM the uvicorn supervisor and its workers; SIGKILL what is left after a while."""
    if process.returncode is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(30):
                await process.wait()
        except TimeoutError:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    await process.wait()


def problem_type(response: httpx.Response) -> str | None:
    if response.headers.get("content-type") != "application/problem+json":
        return None
    kind = response.json().get("type")
    return kind if isinstance(kind, str) else None


def request_id_of(response: httpx.Response) -> str:
    """The id the service logged the request under (a 500 says it in its body)."""
    if problem_type(response) is not None:
        request_id = response.json().get("request_id")
        if isinstance(request_id, str):
            return request_id
    return str(response.headers.get("x-request-id", ""))


@dataclass
class Toggles:
    acknowledged: int = 0
    in_doubt: int = 0


@dataclass
class Ledger:
    """Every answer the clients got, and what each says about the database's contents."""

    statuses: Counter[int] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    # Every answer 5xx but 503: what was sent, the status, and the request's id.
    server_errors: list[tuple[str, int, str]] = field(default_factory=list)
    # Title -> id of every create answered 201 (plain, or a keyed one's final answer).
    created: dict[str, str] = field(default_factory=dict)
    keyed_titles: set[str] = field(default_factory=set)
    not_carried_out: set[str] = field(default_factory=set)
    toggles: defaultdict[str, Toggles] = field(default_factory=lambda: defaultdict(Toggles))
    successes: int = 0
    progress: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def answered(self, description: str, response: httpx.Response, *expected: int) -> None:
        self.statuses[response.status_code] += 1
        if response.status_code >= 500 and response.status_code != 503:
            self.server_errors.append((description, response.status_code, request_id_of(response)))
        elif response.status_code not in expected:
            self.unexpected.append(
                f"{description}: {response.status_code} {problem_type(response) or ''} "
                f"{response.text[:300]}"
            )
        if response.is_success:
            async with self.progress:
                self.successes += 1
                self.progress.notify_all()

    async def wait_for_successes(self, count: int) -> None:
        async with self.progress:
            target = self.successes + count
            await self.progress.wait_for(lambda: self.successes >= target)


class Client:
    """One user's stream of plain and keyed creates and toggles of its own tasks."""

    def __init__(self, service: Service, ledger: Ledger, number: int) -> None:
        # A connection of its own, as each user's browser or app has.
        self.http = httpx.AsyncClient(
            base_url=service.base_url, timeout=PATIENCE, limits=httpx.Limits(max_connections=1)
        )
        self.ledger = ledger
        self.number = number
        self.headers = {"X-User-ID": service.users[number % len(service.users)]}
        self.random = random.Random(number)
        self.tasks: list[str] = []
        self.sent = 0

    def title(self, kind: str) -> str:
        self.sent += 1
        return f"{kind} {self.number}.{self.sent}"

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            toggle = bool(self.tasks) and self.random.random() < 0.5
            keyed = self.random.random() < 0.25
            if toggle:
                task_id = self.random.choice(self.tasks)
                await (self.keyed_toggle(task_id) if keyed else self.plain_toggle(task_id))
            else:
                await (self.keyed_create() if keyed else self.plain_create())

    async def plain_create(self, title: str | None = None) -> bool:
        """Whether it was answered 201."""
        title = title or self.title("plain")
        response = await self.http.post("/api/tasks", json={"title": title}, headers=self.headers)
        await self.ledger.answered(f"POST {title!r}", response, 201, 503)
        if response.status_code == 201:
            self.acknowledge_create(title, response)
            return True
        if problem_type(response) == UNAVAILABLE:
            self.ledger.not_carried_out.add(title)
        elif response.status_code == 503 and problem_type(response) != OUTCOME_UNKNOWN:
            self.ledger.unexpected.append(f"POST {title!r}: 503 {response.text[:300]}")
        await self.back_off(response)
        return False

    async def keyed_create(self) -> None:
        title = self.title("keyed")
        self.ledger.keyed_titles.add(title)
        response = await self.until_answered(
            "POST", "/api/tasks", f"keyed POST {title!r}", 201, json={"title": title}
        )
        if response.status_code == 201:
            self.acknowledge_create(title, response)

    def acknowledge_create(self, title: str, response: httpx.Response) -> None:
        task_id = response.json()["id"]
        self.ledger.created[title] = task_id
        self.tasks.append(task_id)

    async def plain_toggle(self, task_id: str) -> None:
        response = await self.http.patch(f"/api/tasks/{task_id}/complete", headers=self.headers)
        await self.ledger.answered(f"PATCH {task_id}", response, 200, 503)
        if response.status_code == 200:
            self.ledger.toggles[task_id].acknowledged += 1
        elif problem_type(response) == OUTCOME_UNKNOWN:
            self.ledger.toggles[task_id].in_doubt += 1
        elif response.status_code == 503 and problem_type(response) != UNAVAILABLE:
            self.ledger.unexpected.append(f"PATCH {task_id}: 503 {response.text[:300]}")
        await self.back_off(response)

    async def keyed_toggle(self, task_id: str) -> None:
        response = await self.until_answered(
            "PATCH", f"/api/tasks/{task_id}/complete", f"keyed PATCH {task_id}", 200
        )
        if response.status_code == 200:
            self.ledger.toggles[task_id].acknowledged += 1

    async def until_answered(
        self, method: str, path: str, description: str, success: int, **kwargs: Any
    ) -> httpx.Response:
        """Send with one Idempotency-Key until the answer is neither a 503 nor a 409."""
        headers = {**self.headers, "Idempotency-Key": str(uuid4())}
        while True:
            response = await self.http.request(method, path, headers=headers, **kwargs)
            await self.ledger.answered(description, response, success, 503, 409)
            kind = problem_type(response)
            if not (kind in (UNAVAILABLE, OUTCOME_UNKNOWN) or kind == IN_FLIGHT):
                return response
            await self.back_off(response)

    async def back_off(self, response: httpx.Response) -> None:
        if response.status_code in (409, 503):
            await asyncio.sleep(BACKOFF_SECONDS)


async def recovery_seconds(probe: Client) -> float | None:
    """How long until a write succeeds again (None: not within RECOVERY_SECONDS)."""
    started = time.monotonic()
    while time.monotonic() - started < RECOVERY_SECONDS:
        if await probe.plain_create():
            return time.monotonic() - started
    return None


async def inflict(fault: str, database: ThrowawayPostgres) -> None:
    if fault == "restart":
        await database.restart_fast()
    else:
        await database.crash()
        await database.start()


async def stored_tasks(database: ThrowawayPostgres) -> dict[str, list[asyncpg.Record]]:
    connection = await asyncpg.connect(database.url)
    try:
        rows = await connection.fetch("SELECT id::text, title, status, version FROM tasks")
    finally:
        await connection.close()
    by_title: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for row in rows:
        by_title[row["title"]].append(row)
    return by_title


def inconsistencies(ledger: Ledger, stored: dict[str, list[asyncpg.Record]]) -> Iterator[str]:
    for title, task_id in ledger.created.items():
        rows = stored.get(title, [])
        if [row["id"] for row in rows] != [task_id]:
            yield f"{title!r} answered 201 as {task_id}; stored: {[row['id'] for row in rows]}"
    for title in ledger.keyed_titles - ledger.created.keys():
        yield f"keyed create {title!r} never answered 201"
    for title in sorted(ledger.not_carried_out):
        if title in stored:
            yield f"{title!r} answered {UNAVAILABLE}, yet it is stored"
    by_id = {row["id"]: row for rows in stored.values() for row in rows}
    for task_id, toggles in ledger.toggles.items():
        row = by_id.get(task_id)
        if row is None:
            continue  # reported above, as a create
        applied = row["version"] - 1
        if not toggles.acknowledged <= applied <= toggles.acknowledged + toggles.in_doubt:
            yield (
                f"task {task_id}: {applied} toggles applied, but {toggles.acknowledged} "
                f"acknowledged (each keyed one once) and {toggles.in_doubt} in doubt"
            )
        if row["status"] != ("completed" if applied % 2 else "pending"):
            yield f"task {task_id}: status {row['status']} after {applied} toggles"


async def test_restarts_and_crashes_of_the_database_lose_nothing_and_answer_no_500(
    database: ThrowawayPostgres, service: Service
) -> None:
    ledger = Ledger()
    stop = asyncio.Event()
    clients = [Client(service, ledger, number) for number in range(CLIENTS)]
    probe = Client(service, ledger, CLIENTS)
    load = [asyncio.create_task(client.run(stop)) for client in clients]
    recoveries: list[tuple[str, float | None]] = []
    try:
        async with asyncio.timeout(PATIENCE * 2):
            await ledger.wait_for_successes(SUCCESSES_BETWEEN_FAULTS)
            for fault in FAULTS:
                await inflict(fault, database)
                recoveries.append((fault, await recovery_seconds(probe)))
                await ledger.wait_for_successes(SUCCESSES_BETWEEN_FAULTS)
    finally:
        stop.set()
        async with asyncio.timeout(PATIENCE):
            outcomes = await asyncio.gather(*load, return_exceptions=True)
        for client in [*clients, probe]:
            await client.http.aclose()
    errors = [repr(outcome) for outcome in outcomes if isinstance(outcome, BaseException)]
    assert not errors, errors

    stored = await stored_tasks(database)
    tracebacks = service.tracebacks()
    problems = [
        *(
            f"{description}: {status}, logged as:\n  "
            + where_and_what(tracebacks.get(request_id, "(no traceback logged)"))
            for description, status, request_id in ledger.server_errors[:5]
        ),
        *ledger.unexpected[:20],
        *(
            f"after a {fault}, no write succeeded within {RECOVERY_SECONDS} s"
            for fault, seconds in recoveries
            if seconds is None
        ),
        *list(inconsistencies(ledger, stored))[:20],
    ]
    assert not problems, (
        f"{len(ledger.server_errors)} answers 5xx but 503, {len(ledger.unexpected)} other "
        f"unexpected answers, in {sum(ledger.statuses.values())} answers "
        f"{dict(ledger.statuses)}; recoveries {recoveries}:\n"
        + "\n".join(problems)
        + f"\n\nthe service's last warnings, the last one first:\n{service.warnings_tail()}"
    )
