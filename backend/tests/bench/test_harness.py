"""The benchmark's moving parts, on tiny data, so `make bench` cannot rot unnoticed."""

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Literal
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from bench.run import OPERATIONS, Connection, Lineup, Load, Run, Series, Server, report
from sqlalchemy.engine import make_url

from bench import overhead, plain_fastapi, profile, reference, seed
from tests.environment import needs_postgresql, only_on
from tests.postgres import with_database
from todo.config import Settings
from todo.db import Database
from todo.db.migrate import upgrade
from todo.main import create_app

USERS, TASKS_PER_USER = 2, 3


async def _load(database: Database, database_url: str, data: seed.SeedData) -> None:
    if database.dialect == "postgresql":
        await seed.load_postgres(database_url, data)
    else:
        seed.load_sqlite(Path(str(make_url(database_url).database)), data)


def _newest_first(data: seed.SeedData, user_id: UUID) -> list[str]:
    rows = [row for row in data.tasks if row["user_id"] == user_id]
    rows.sort(key=lambda row: (row["created_at"], str(row["id"])), reverse=True)
    return [str(row["id"]) for row in rows]


async def test_the_service_serves_the_seeded_data(
    database: Database, database_url: str, client: httpx.AsyncClient
) -> None:
    data = seed.generate(USERS, TASKS_PER_USER)
    await _load(database, database_url, data)
    user_id = next(iter(data.task_ids))
    headers = {"X-User-ID": str(user_id)}

    listed = await client.get("/api/tasks", headers=headers)

    assert listed.status_code == 200
    assert [task["id"] for task in listed.json()] == _newest_first(data, user_id)
    first = data.task_ids[user_id][0]
    toggled = await client.patch(f"/api/tasks/{first}/complete", headers=headers)
    assert toggled.status_code == 200
    assert toggled.json()["status"] != next(
        row["status"] for row in data.tasks if row["id"] == first
    )


def test_seeded_tasks_are_spread_and_mixed() -> None:
    data = seed.generate(3, 200)

    assert len(data.users) == 3
    assert len(data.tasks) == 600
    assert {row["status"] for row in data.tasks} == {"pending", "completed"}
    assert any(row["description"] is None for row in data.tasks)
    assert len({row["created_at"] for row in data.tasks}) == 600
    assert all(row["updated_at"] >= row["created_at"] for row in data.tasks)  # type: ignore[operator]
    assert seed.generate(3, 200).task_ids == data.task_ids


def test_the_lua_data_holds_every_seeded_id(tmp_path: Path) -> None:
    data = seed.generate(USERS, TASKS_PER_USER)
    path = tmp_path / "data.lua"

    seed.write_lua(data, path)

    entries = re.findall(r'\{user = "([0-9a-f-]{36})", tasks = "([0-9a-f-]*)"\},', path.read_text())
    assert path.read_text().splitlines()[1] == "return {"
    # common.lua reads task i of a user at offset (i - 1) * 36.
    read = {
        UUID(user): [UUID(tasks[i : i + 36]) for i in range(0, len(tasks), 36)]
        for user, tasks in entries
    }
    assert read == data.task_ids


# The benchmark's own server: plain PostgreSQL, whatever the suite's URL (TLS, PgBouncer).
BENCH_POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A seeded PostgreSQL database of its own: the reference app speaks only PostgreSQL."""
    name = f"todo_bench_test_{uuid4().hex[:12]}"
    admin = await asyncpg.connect(BENCH_POSTGRES_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield with_database(BENCH_POSTGRES_URL, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


# "transaction": as behind PgBouncer, each statement in a transaction of its own.
@needs_postgresql
@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
@pytest.mark.parametrize("floor", [reference, plain_fastapi], ids=["bare", "plain FastAPI"])
async def test_the_references_answer_like_the_service(
    postgres_url: str, pool_mode: Literal["session", "transaction"], floor: ModuleType
) -> None:
    settings = Settings(database_url=postgres_url, database_pool_mode=pool_mode)
    database = Database(postgres_url, settings)
    await upgrade(database.engine)
    data = seed.generate(USERS, TASKS_PER_USER)
    await seed.load_postgres(postgres_url, data)
    user_id = list(data.task_ids)[1]
    headers = {"X-User-ID": str(user_id)}
    task_id = data.task_ids[user_id][1]
    bare = floor.create_app(postgres_url, settings)
    ours = create_app(settings, database=database)
    try:
        async with (
            bare.router.lifespan_context(bare),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=bare), base_url="http://r") as ref,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=ours), base_url="http://s") as svc,
        ):
            for path in ("/api/tasks?limit=100", f"/api/tasks/{task_id}"):
                answer = await ref.get(path, headers=headers)
                assert answer.status_code == 200
                assert answer.json() == (await svc.get(path, headers=headers)).json()

            toggled = await ref.patch(f"/api/tasks/{task_id}/complete", headers=headers)
            assert toggled.status_code == 200
            assert (
                toggled.json() == (await svc.get(f"/api/tasks/{task_id}", headers=headers)).json()
            )

            created = await ref.post(
                "/api/tasks", headers=headers, json={"title": "Buy milk", "description": None}
            )
            assert created.status_code == 201
            assert created.headers["Location"] == f"/api/tasks/{created.json()['id']}"
            served = await svc.get(created.headers["Location"], headers=headers)
            assert created.json() == served.json()

            missing = await ref.get(f"/api/tasks/{uuid4()}", headers=headers)
            assert missing.status_code == 404
            assert bare.state.in_transaction is (pool_mode == "transaction")
    finally:
        await database.dispose()


def _series(rps: float, p95_ms: float, errors: int = 0) -> Series:
    run = Run(1000, 1_000_000, errors, 0, p95_ms / 2, p95_ms, p95_ms * 2)
    run.requests, run.duration_us, run.cpu_us = int(rps), 1_000_000, 200
    return Series([run])


def _lineup(name: str, service_rps: float, *, toggle_errors: int = 0) -> Lineup:
    connection = Connection(name, f"{name} to PostgreSQL", "", "", "session")
    service = Server("service", "serve", "", 2, peak_rss_kib=[100 * 1024], via=name)
    framework = Server(
        "plain FastAPI", "serve-fastapi-reference", "", 2, peak_rss_kib=[60 * 1024], via=name
    )
    bare = Server("bare Starlette", "serve-reference", "", 2, peak_rss_kib=[40 * 1024], via=name)
    start = Server("start", "serve", "", 2, peak_rss_kib=[100 * 1024], via=name)
    for operation in OPERATIONS:
        service.series[operation] = _series(service_rps, 30)
        framework.series[operation] = _series(1000, 25)
        bare.series[operation] = _series(2000, 20)
        start.series[operation] = _series(service_rps / 2, 30)
    service.series["toggle"] = _series(500, 120, errors=toggle_errors)
    service.series["toggle"].runs[0].cpu_us = 300
    return Lineup(connection, service, framework, bare, variants=[start])


def test_the_report_compares_medians_and_names_what_misses_the_bar() -> None:
    facts = dict.fromkeys(("cpus", "cpu", "memory", "python", "commit", "postgres"), "x")
    facts |= {"date": "today", "data": "tiny", "load_before": "0", "load_after": "0"}

    text, misses = report(
        lineups=[_lineup("direct", 950, toggle_errors=2), _lineup("pgbouncer", 850)],
        sqlite=None,
        load=Load(100, 2, 10, 2, Path("data.lua")),
        runs=1,
        facts=facts,
        command="make bench",
    )

    assert text.index("## direct: ") < text.index("## pgbouncer: ")
    pgbouncer = text[text.index("## pgbouncer: ") :]
    # Each operation: the service, then both floors, with every figure.
    assert (
        "| get one | service | 950 | 15.0 | 30.0 | 60.0 | 0 | 200 |\n"
        "|  | plain FastAPI | 1000 | 12.5 | 25.0 | 50.0 | 0 | 200 |\n"
        "|  | bare Starlette | 2000 | 10.0 | 20.0 | 40.0 | 0 | 200 |"
    ) in text
    # Then the ratios: service over plain FastAPI (rps, CPU, p95), and both over bare.
    assert "| get one | 0.95 | 1.00 | 1.20 | 0.47 | 0.50 |" in text
    assert "| get one | 0.85 | 1.00 | 1.20 | 0.42 | 0.50 |" in pgbouncer
    assert "| toggle | 0.50 | 1.50 | 4.80 | 0.25 | 0.50 |" in text
    # --compare, per kind: the other checkout's figures and its ratios to this checkout.
    assert "| start | 475 / 30 / 200 (rps 0.50x, CPU 1.00x) |" in text
    assert "| start | 425 / 30 / 200 (rps 0.50x, CPU 1.00x) |" in pgbouncer
    assert "| this checkout | 850 / 30 / 200 |" in pgbouncer
    assert "- start (pgbouncer), 2 worker(s): 100 MiB" in text
    assert misses == [
        "2 failed request(s): the run fails",
        "direct, toggle: rps 0.50x plain FastAPI's < 0.9",
        "direct, toggle: CPU 1.50x plain FastAPI's > 1.2",
        "direct, toggle: p95 4.80x plain FastAPI's > 1.3",
        "direct, toggle: p95 120 ms >= 100 ms",
        *(
            f"pgbouncer, {operation}: rps 0.85x plain FastAPI's < 0.9"
            for operation in ("list", "get", "create")
        ),
        "pgbouncer, toggle: rps 0.50x plain FastAPI's < 0.9",
        "pgbouncer, toggle: CPU 1.50x plain FastAPI's > 1.2",
        "pgbouncer, toggle: p95 4.80x plain FastAPI's > 1.3",
        "pgbouncer, toggle: p95 120 ms >= 100 ms",
        "pgbouncer, mixed: rps 0.85x plain FastAPI's < 0.9",
    ]


def test_the_profile_summary_charges_each_sample_to_its_library(tmp_path: Path) -> None:
    raw = tmp_path / "worker.raw"
    raw.write_text(
        "run (uvicorn/server.py:1);solve_dependencies (fastapi/dependencies/utils.py:2);"
        "execute (asyncpg/connection.py:3) 3\n"
        "run (uvicorn/server.py:1);dump_json (pydantic/type_adapter.py:4) 1\n"
        "_bootstrap (threading.py:5);wait (threading.py:6);Condition.wait (threading.py:7) 50\n"
    )

    summary = profile.summarize([raw])

    assert "| asyncpg | 75% |" in summary
    assert "| pydantic (validation, JSON) | 25% |" in summary
    assert "| FastAPI dependency resolution (solve_dependencies) | 75% |" in summary


def test_the_reference_has_the_services_default_pool() -> None:
    # The same number of connections per worker on both sides, or the ratio
    # would partly measure pool sizes.
    defaults = Settings(database_url="postgresql://localhost/x")
    assert (
        reference.POOL_MIN_SIZE
        == reference.POOL_MAX_SIZE
        == (defaults.database_pool_size + defaults.database_max_overflow)
    )


@only_on("postgresql")
async def test_the_overhead_probe_measures_each_layer(
    database: Database, database_url: str, empty_tables: None
) -> None:
    await _load(database, database_url, seed.generate(USERS, TASKS_PER_USER))

    results = dict(await overhead.measure(database_url, requests=10))

    assert len(results) == 8
    assert all(microseconds > 0 for microseconds in results.values())
