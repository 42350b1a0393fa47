"""The benchmark's moving parts, on tiny data, so `make bench` cannot rot unnoticed."""

import asyncio
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
import uvicorn
from bench.run import OPERATIONS, Connection, Lineup, Load, Run, Series, Server, report
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from bench import overhead, plain_fastapi, profile, reference, seed, sync
from tests.environment import needs_postgresql, only_on
from tests.helpers import free_port
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
    assert data.large_user is None


def test_the_large_user_has_their_own_tasks_and_leaves_the_others_as_they_were() -> None:
    data = seed.generate(3, 200, large_user_tasks=1000)

    assert data.task_ids == seed.generate(3, 200).task_ids
    assert data.large_user is not None
    assert data.large_user not in data.task_ids
    owned = [row for row in data.tasks if row["user_id"] == data.large_user]
    assert len(owned) == 1000
    positions = [row["position"] for row in owned]
    assert len(set(positions)) == 1000
    # As migration 0004 leaves existing tasks: one change, number 1, of their user.
    assert {row["last_change"] for row in data.users} == {1}


def test_the_lua_data_holds_every_seeded_id(tmp_path: Path) -> None:
    data = seed.generate(USERS, TASKS_PER_USER, large_user_tasks=5)
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
    # search_request in common.lua asks for seeded.large.
    assert f'  large = "{data.large_user}",' in path.read_text().splitlines()


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
            # A word of one seeded title, in capitals (searches ignore case), and one in none.
            word = str(next(row["title"] for row in data.tasks if row["id"] == task_id)).split()[1]
            for path in (
                "/api/tasks?limit=100",
                f"/api/tasks/{task_id}",
                "/api/tasks/summary",
                f"/api/tasks?limit=100&q={word.upper()}",
                "/api/tasks?limit=100&q=quokka",
            ):
                answer = await ref.get(path, headers=headers)
                assert answer.status_code == 200
                assert answer.json() == (await svc.get(path, headers=headers)).json()
            found = await ref.get(f"/api/tasks?q={word.upper()}", headers=headers)
            assert task_id in {UUID(task["id"]) for task in found.json()}

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
            assert bare.state.writes_in_transaction is (pool_mode == "transaction")
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
        *(
            f"pgbouncer, {operation}: rps 0.85x plain FastAPI's < 0.9"
            for operation in ("mixed", "summary", "search")
        ),
    ]


def test_the_profile_charges_each_sample_to_its_library_per_request(tmp_path: Path) -> None:
    ours, floor = tmp_path / "ours.raw", tmp_path / "floor.raw"
    ours.write_text(
        "run (uvicorn/server.py:1);solve_dependencies (fastapi/dependencies/utils.py:2);"
        "execute (asyncpg/connection.py:3) 3\n"
        "run (uvicorn/server.py:1);dump_json (pydantic/type_adapter.py:4) 1\n"
        "_bootstrap (threading.py:5);wait (threading.py:6);Condition.wait (threading.py:7) 50\n"
    )
    floor.write_text("run (uvicorn/server.py:1);execute (asyncpg/connection.py:3) 2\n")

    # At 200 Hz a sample is 5000 us: over 10 requests, 500 us each.
    summary = profile.compare(("service", [ours], 10), ("floor", [floor], 20))

    assert "Busy per request: service 2000.0 us over 10 requests, floor 500.0 us over 20" in summary
    assert "| asyncpg | 1500.0 | 500.0 | +1000.0 |" in summary
    assert "| pydantic (validation, JSON) | 500.0 | 0.0 | +500.0 |" in summary
    assert (
        "| FastAPI dependency resolution (solve_dependencies) | 1500.0 | 0.0 | +1500.0 |" in summary
    )
    assert "| execute (asyncpg/connection.py:3) | 1500.0 | 500.0 | +1000.0 |" in summary


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


# --- live sync (bench/sync.py) ----------------------------------------------------


def test_the_event_parser_reads_events_split_anywhere_and_drops_comments() -> None:
    parser = sync.EventParser()
    wire = (
        b'event: changes\nid: abc\ndata: {"changes":[]}\n\n: heartbeat\n\n'
        b'event: ready\ndata: {"cursor":"abc"}\n\n'
    )

    events = [event for byte in range(len(wire)) for event in parser.feed(wire[byte : byte + 1])]

    assert events == [
        sync.Event("changes", "abc", '{"changes":[]}'),
        sync.Event("ready", None, '{"cursor":"abc"}'),
    ]
    assert parser.comments == 1


def test_the_server_end_of_each_connection_is_found_by_its_client_port() -> None:
    table = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
        "timeout inode\n"
        # The listening socket, an accepted connection from port 0x9C40, and the client's end.
        "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0 0 111\n"
        "   1: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  0 0 222\n"
        "   2: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  0 0 333\n"
    )

    assert sync.accepted_sockets(table, 0x1F90) == {"222": 0x9C40}


def test_each_write_is_timed_at_each_stream_by_worker_and_first_and_last() -> None:
    result = sync.ProbeResult(
        answered={1: 10.0, 2: 20.0},
        writes_worker=7,
        streams=[
            (7, {1: 10.001, 2: 20.004}),
            (8, {1: 10.003, 2: 19.999}),
            (None, {1: 10.002}),
        ],
    )

    latency = sync.latency_of(result)

    assert (latency.writes, latency.missed) == (2, 1)
    assert (latency.streams_same, latency.streams_other, latency.streams_unknown) == (1, 1, 1)
    assert [round(ms, 3) for ms in latency.same] == [1.0, 4.0]
    assert [round(ms, 3) for ms in latency.other] == [3.0, -1.0]
    assert [round(ms, 3) for ms in latency.first] == [1.0, -1.0]
    assert [round(ms, 3) for ms in latency.last] == [3.0, 4.0]
    assert sync.percentile([5.0, 1.0, 3.0, 2.0], 0.5) == 2.0
    assert sync.percentile([float(n) for n in range(1, 21)], 0.95) == 19.0


def _sync_round(rps_with: float, *, missed: int = 0) -> sync.SyncRound:
    def latency(missed: int = 0) -> sync.Latency:
        return sync.Latency(
            writes=2,
            missed=missed,
            same=[1.0, 3.0],
            other=[2.0, 4.0],
            first=[1.0, 2.0],
            last=[3.0, 4.0],
            streams_same=2,
            streams_other=2,
        )

    return sync.SyncRound(
        rps_without=1000,
        rps_with=rps_with,
        latency=latency(),
        latency_idle=latency(missed),
        idle_streams=1000,
        idle_per_worker=[400, 600],
        rss_before_kib=[90 * 1024, 92 * 1024],
        rss_with_kib=[100 * 1024, 112 * 1024],
        open_seconds=1.5,
    )


def test_the_report_shows_live_sync_and_names_what_misses_its_bar() -> None:
    facts = dict.fromkeys(("cpus", "cpu", "memory", "python", "commit", "postgres"), "x")
    facts |= {"date": "today", "data": "tiny", "load_before": "0", "load_after": "0"}
    direct, pgbouncer = _lineup("direct", 1000), _lineup("pgbouncer", 1000)
    direct.sync_rounds = [_sync_round(950), _sync_round(980)]
    pgbouncer.sync_rounds = [_sync_round(800, missed=1)]
    pgbouncer.live_sync = Server(
        "service, live sync", "serve", "", 2, peak_rss_kib=[130 * 1024], via="pgbouncer"
    )

    text, misses = report(
        lineups=[direct, pgbouncer],
        sqlite=None,
        load=Load(100, 2, 10, 2, Path("data.lua")),
        runs=2,
        facts=facts,
        command="make bench",
        sync_interval=0.1,
    )

    live = text[text.index("## Live sync") : text.index("## All kinds")]
    assert "every 100 ms" in live
    # Latencies pooled over the rounds (p50 / p95), then the idle streams' cost.
    assert (
        "| direct | mixed | 4 | 2 / 2 | 1.0 / 3.0 | 2.0 / 4.0 | 1.0 / 2.0 | 3.0 / 4.0 | 0 |"
    ) in live
    assert "| pgbouncer | mixed + 1000 idle | 2 | 2 / 2 |" in live
    assert "| direct | 1000 | 965 | 0.96 | 400 / 600 | 90 → 100, 92 → 112 | 30.7 | 1.5 |" in live
    assert "| pgbouncer | 1000 | 800 | 0.80 |" in live
    # Its serving's peak RSS is listed, but not held to the service's bar.
    assert "- service, live sync (pgbouncer), 2 worker(s): 130 MiB" in text
    assert [miss for miss in misses if "sync" in miss or "idle" in miss] == [
        "pgbouncer, live sync (mixed + 1000 idle): 0 probe write(s) failed, 1 event(s) never came",
        "pgbouncer, 1000 idle streams: mixed rps 0.80x the run without < 0.9",
    ]


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[int]:
    """The app on a loopback port, in this process (so its sockets are this pid's)."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110  (uvicorn sets a flag, no event)
        await asyncio.sleep(0.01)
    yield port
    server.should_exit = True
    await serving


async def test_the_probe_sees_every_write_at_every_stream(served: int) -> None:
    probe = sync.Probe(served, [os.getpid()], interval=0.02)
    await probe.open(per_worker=2, most=3)
    try:
        probe.start()
        await asyncio.sleep(0.3)
        latency = sync.latency_of(await probe.stop())
        idle = await sync.open_idle(served, 6, users=3)
        placed = sync.connection_workers(served, [os.getpid()])
        await sync.close_all(idle)
    finally:
        await probe.close()

    assert latency.writes >= 3
    assert (latency.failed, latency.missed) == (0, 0)
    assert (latency.streams_same, latency.streams_other) == (2, 0)
    assert len(latency.same) == 2 * latency.writes
    assert len(latency.first) == len(latency.last) == latency.writes
    assert all(-100 < ms < 5000 for ms in latency.same)
    assert all(placed.get(stream.local_port) == os.getpid() for stream in idle)
