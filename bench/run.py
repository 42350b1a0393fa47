"""`make bench`: seed fresh databases, load the service and its floors with wrk, report.

The floors are the same routes, SQL and pool as a plain FastAPI app
(bench/plain_fastapi.py: what the framework itself costs) and on bare
Starlette (bench/reference.py).

Each is measured over every connection kind (`--via`): "direct", plain
PostgreSQL on 127.0.0.1:5432, and "pgbouncer", PgBouncer in transaction mode
over TLS on 127.0.0.1:6432 in front of the TLS cluster on 5433 (the stand-in
for Neon's pooled endpoint, started here when it is not answering). Each
kind's server gets its own copy of the same seeded data.

All servers are started with the same `make` serving command, one at a time
(so that their pools, 10 connections per worker, never crowd PostgreSQL's
max_connections), and alternate round by round, kind after kind, so that noise
from the rest of the machine falls on all. Every figure in the tables is a median over the rounds.

Each round also serves the service once more for live sync (bench/sync.py):
the mixed load with a write-to-event latency probe, without and with 1000
idle streams.
"""

import argparse
import asyncio
import json
import os
import platform
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from bench import profile, seed, sync
from todo.db.urls import parse_database_url

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
WORK = BENCH / ".work"
OPERATIONS = ("list", "get", "create", "toggle", "mixed", "summary", "search")
OPERATION_NAMES = {
    "list": "list 100 newest",
    "get": "get one",
    "create": "create",
    "toggle": "toggle",
    "mixed": "mixed 60/20/10/10",
    "summary": "summary (counts)",
    "search": "search, large user",
}
BENCH_DATABASE = "todo_bench"
SQLITE_PATH = WORK / "todo_bench.db"
# What was seeded where, for --reuse.
SEEDED = WORK / "seeded.json"
DIRECT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# The Makefile's TLS_POSTGRES_URL and PGBOUNCER_URL (`make test-services`).
TLS_POSTGRES_URL = "postgresql://todo:todo@127.0.0.1:5433/postgres?sslmode=require"
PGBOUNCER_URL = "postgresql://todo:todo@127.0.0.1:6432/postgres?sslmode=require"
VIAS = ("direct", "pgbouncer")


@dataclass
class Run:
    requests: int
    duration_us: int
    non2xx: int
    socket_errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    failure: str = ""
    # CPU time the server's workers spent per request: steadier than rps on a
    # busy machine, since other processes' load mostly shows up as waiting.
    cpu_us: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / (self.duration_us / 1e6)

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors


@dataclass
class Series:
    runs: list[Run] = field(default_factory=list)

    def median(self, name: str) -> float:
        return statistics.median(float(getattr(run, name)) for run in self.runs)

    @property
    def errors(self) -> int:
        return sum(run.errors for run in self.runs)

    def ratio(self, other: "Series", name: str) -> float:
        """The median of this series' figure over the other's, run by run.

        Run i of each server comes from the same round, minutes apart at most,
        so pairing them cancels most of what the rest of the machine was doing.
        """
        pairs = zip(self.runs, other.runs, strict=False)
        return statistics.median(
            float(getattr(ours, name)) / float(getattr(theirs, name)) for ours, theirs in pairs
        )


@dataclass
class Server:
    """One way of serving, and what was measured of it."""

    label: str
    make_target: str
    database_url: str
    workers: int
    series: dict[str, Series] = field(default_factory=dict)
    peak_rss_kib: list[int] = field(default_factory=list)
    # The checkout whose `make` serves it: another one for --compare.
    repo: Path = REPO
    # The connection kind's name ("direct", "pgbouncer"), and what it adds to the environment.
    via: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.label} ({self.via})" if self.via else self.label


@dataclass(frozen=True)
class Connection:
    """One way of reaching PostgreSQL: what the servers get, and where the data is seeded."""

    name: str
    title: str
    # Where the database is created and seeded: the server itself, never a pooler.
    admin_url: str
    # What the servers connect to, naming the admin URL's server's databases.
    serve_url: str
    # DATABASE_POOL_MODE for the service and the floors alike.
    pool_mode: str

    def admin_database(self, database: str) -> str:
        return with_database(self.admin_url, database)

    def serve_database(self, database: str) -> str:
        return with_database(self.serve_url, database)


@dataclass
class Lineup:
    """Everything measured over one connection kind."""

    connection: Connection
    service: Server
    # The floors: the same routes as a plain FastAPI app, and on bare Starlette.
    framework: Server
    reference: Server
    variants: list[Server] = field(default_factory=list)
    # Filled in once the server answers: its version, for the report.
    server_version: str = ""
    # The service served again for the live-sync runs (bench/sync.py), and their figures.
    live_sync: Server | None = None
    sync_rounds: list[sync.SyncRound] = field(default_factory=list)

    @property
    def servers(self) -> list[Server]:
        return [*self.variants, self.service, self.framework, self.reference]


# --- processes -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces; the fields after its ")" do not.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    return children


def _descendants(pid: int) -> list[int]:
    children = _children()
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        return (Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")).decode()
    except OSError:
        return ""


def _is_python(pid: int) -> bool:
    try:
        return Path(os.readlink(f"/proc/{pid}/exe")).name.startswith("python")
    except OSError:
        return False


def worker_pids(root: int) -> list[int]:
    """uvicorn's worker processes under `root`: spawned children, or uvicorn itself."""
    pythons = [pid for pid in _descendants(root) if _is_python(pid)]
    spawned = [pid for pid in pythons if "spawn_main" in _cmdline(pid)]
    return spawned or [pid for pid in pythons if "uvicorn" in _cmdline(pid)]


def cpu_seconds(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for process {pid}")


def _outside_venv() -> dict[str, str]:
    """This environment as it was before `uv run` entered the virtualenv.

    `make` must find the same python3 and uv a developer's shell does.
    """
    env = dict(os.environ)
    venv = env.pop("VIRTUAL_ENV", None)
    if venv:
        bin_dir = str(Path(venv) / "bin")
        env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != bin_dir)
    return env


@contextmanager
def serving(server: Server, log: Path) -> Iterator[tuple[str, list[int]]]:
    """Serve with `make <target>` on a free port; yield its base URL and worker pids."""
    port = _free_port()
    env = {**_outside_venv(), "DATABASE_URL": server.database_url, **server.env}
    command = [
        *("make", "--no-print-directory", "-C", str(server.repo), server.make_target),
        *("HOST=127.0.0.1", f"PORT={port}", f"WORKERS={server.workers}"),
    ]
    with log.open("w") as output:
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(process, url, server.workers, log)
        workers = worker_pids(process.pid)
        yield url, workers
        server.peak_rss_kib.extend(peak_rss_kib(pid) for pid in workers)
    finally:
        _stop(process)


def _wait_until_ready(process: subprocess.Popen[bytes], url: str, workers: int, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited; see {log}:\n{log.read_text()[-3000:]}")
        if len(worker_pids(process.pid)) == workers:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:  # noqa: S310
                    if answer.status == 200:
                        return
            except OSError:
                pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not come up; see {log}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    # The group holds make, uv, uvicorn and its workers: all started here.
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    # make may exit before uvicorn's workers have; wait for the group to empty.
    for _ in range(100):
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)


# --- wrk -------------------------------------------------------------------


@dataclass
class Load:
    connections: int
    threads: int
    duration_s: float
    warmup_s: float
    data: Path


def wrk_command(url: str, operation: str, load: Load, seconds: float) -> list[str]:
    script = BENCH / "lua" / f"{operation}.lua"
    return [
        *("wrk", f"-t{load.threads}", f"-c{load.connections}", f"-d{seconds:g}s"),
        *("--timeout", "5s", "-s", str(script), url, "--", str(load.data)),
    ]


def run_wrk(url: str, operation: str, load: Load, seconds: float) -> Run:
    command = wrk_command(url, operation, load, seconds)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = done.stdout.splitlines()
    report = next((line for line in lines if line.startswith("BENCH {")), None)
    if done.returncode != 0 or report is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    figures = json.loads(report.removeprefix("BENCH "))
    failure = next((line for line in lines if line.startswith("BENCH-FAILURE ")), "")
    sockets = {kind: figures[kind] for kind in ("connect", "read", "write", "timeout")}
    if any(sockets.values()):
        failure += " socket errors: " + ", ".join(f"{k} {n}" for k, n in sockets.items() if n)
    return Run(
        requests=figures["requests"],
        duration_us=figures["duration_us"],
        non2xx=figures["non2xx"],
        socket_errors=sum(sockets.values()),
        p50_ms=figures["p50_us"] / 1000,
        p95_ms=figures["p95_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        failure=failure.removeprefix("BENCH-FAILURE ").strip(),
    )


def measure(server: Server, operations: tuple[str, ...], load: Load, log: Path) -> None:
    with serving(server, log) as (url, workers):
        for operation in operations:
            if load.warmup_s:
                run_wrk(url, operation, load, load.warmup_s)
            cpu_before = cpu_seconds(workers)
            run = run_wrk(url, operation, load, load.duration_s)
            run.cpu_us = (cpu_seconds(workers) - cpu_before) * 1e6 / max(run.requests, 1)
            server.series.setdefault(operation, Series()).runs.append(run)
            print(
                f"  {server.name:<22} {operation:<7} {run.rps:8.0f} rps  "
                f"p50 {run.p50_ms:6.1f}  p95 {run.p95_ms:6.1f}  p99 {run.p99_ms:6.1f} ms  "
                f"cpu {run.cpu_us:5.0f} us/req  errors {run.errors}  {run.failure}",
                flush=True,
            )


# The live-sync runs: streams the probe opens until each worker holds this many, at most.
PROBE_STREAMS_PER_WORKER = 2
PROBE_STREAMS_AT_MOST = 8


def measure_sync(
    server: Server, load: Load, log: Path, number: int, *, streams: int, interval: float
) -> sync.SyncRound:
    """The mixed load with the latency probe, without and with `streams` idle streams.

    One serving; the two runs' order alternates with the round `number`.
    """
    rps: dict[bool, float] = {}
    latency: dict[bool, sync.Latency] = {}
    rss_before: list[int] = []
    rss_with: list[int] = []
    per_worker: list[int] = []
    open_seconds = 0.0
    ended = 0
    background = sync.Background()
    try:
        with serving(server, log) as (url, workers):
            port = int(url.rsplit(":", 1)[1])
            probe = sync.Probe(port, workers, interval)
            # Opened under load: an idle server's first worker to wake accepts them all.
            warm = wrk_command(url, "mixed", load, max(load.warmup_s, 3))
            with subprocess.Popen(warm, stdout=subprocess.DEVNULL):
                background.run(probe.open(PROBE_STREAMS_PER_WORKER, PROBE_STREAMS_AT_MOST), 120)
            for with_idle in (False, True) if number % 2 else (True, False):
                idle: list[sync.Stream] = []
                if with_idle:
                    rss_before = [sync.rss_kib(pid) for pid in workers]
                    started = time.monotonic()
                    idle = background.run(sync.open_idle(port, streams, sync.IDLE_USERS), 600)
                    open_seconds = time.monotonic() - started
                    rss_with = [sync.rss_kib(pid) for pid in workers]
                    owners = sync.connection_workers(port, workers)
                    held = [owners.get(stream.local_port) for stream in idle]
                    per_worker = [held.count(pid) for pid in workers]
                if load.warmup_s:
                    run_wrk(url, "mixed", load, load.warmup_s)
                background.call(probe.start)
                cpu_before = cpu_seconds(workers)
                run = run_wrk(url, "mixed", load, load.duration_s)
                run.cpu_us = (cpu_seconds(workers) - cpu_before) * 1e6 / max(run.requests, 1)
                latency[with_idle] = sync.latency_of(background.run(probe.stop(), 60))
                rps[with_idle] = run.rps
                name = f"mixed + probe + {streams} idle streams" if with_idle else "mixed + probe"
                server.series.setdefault(name, Series()).runs.append(run)
                ended += sum(stream.ended for stream in idle)
                background.run(sync.close_all(idle), 60)
                print(
                    f"  {server.name:<22} {name:<7} {run.rps:8.0f} rps  p95 {run.p95_ms:6.1f} ms  "
                    f"errors {run.errors}  probe: {latency[with_idle].writes} writes, p50 / p95 "
                    f"{sync.p50_p95(latency[with_idle].other)} ms on the other worker, "
                    f"missed {latency[with_idle].missed}  {run.failure}",
                    flush=True,
                )
            ended += probe.ended
            background.run(probe.close(), 60)
    finally:
        background.close()
    return sync.SyncRound(
        rps_without=rps[False],
        rps_with=rps[True],
        latency=latency[False],
        latency_idle=latency[True],
        idle_streams=streams,
        idle_per_worker=per_worker,
        rss_before_kib=rss_before,
        rss_with_kib=rss_with,
        open_seconds=open_seconds,
        ended=ended,
    )


def _profile(server: Server, operation: str, load: Load) -> tuple[list[Path], int]:
    """py-spy on every worker of `server` while wrk drives `operation`: raws, requests."""
    label = server.label.replace(" ", "-")
    with serving(server, WORK / f"profile-{label}.log") as (url, workers):
        run_wrk(url, operation, load, load.warmup_s or 2)
        raws = [WORK / f"profile-{label}-{pid}.raw" for pid in workers]
        wrk = subprocess.Popen(
            wrk_command(url, operation, load, load.duration_s + 2),
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1)
        spies = [
            subprocess.Popen(
                [
                    *("py-spy", "record", "--pid", str(pid), "--output", str(raw)),
                    *("--duration", f"{load.duration_s:.0f}", "--rate", str(profile.RATE)),
                    *("--nonblocking", "--format", "raw"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for pid, raw in zip(workers, raws, strict=True)
        ]
        for spy in spies:
            spy.wait()
        stdout, _ = wrk.communicate()
    report = next(line for line in stdout.splitlines() if line.startswith("BENCH {"))
    figures = json.loads(report.removeprefix("BENCH "))
    rps = figures["requests"] * 1e6 / figures["duration_us"]
    return raws, round(rps * load.duration_s)


def profile_service(lineup: Lineup, operation: str, load: Load, output: Path, command: str) -> None:
    """py-spy the service, then plain FastAPI, under `operation`; the summary goes to `output`."""
    service = _profile(lineup.service, operation, load)
    framework = _profile(lineup.framework, operation, load)
    output.write_text(
        f"# Profile: {operation}, {lineup.connection.name}\n\n"
        f"`{command}`: py-spy ({profile.RATE} Hz, non-blocking) on each worker of the service, "
        f"then of plain FastAPI, for {load.duration_s:g} s each under wrk at "
        f"{load.connections} connections. Times are microseconds of samples per request "
        "served in that time (all workers together).\n\n"
        + profile.compare(("service", *service), ("plain FastAPI", *framework))
    )
    print(output.read_text(), flush=True)


# --- the database ----------------------------------------------------------


def with_database(url: str, name: str) -> str:
    """`url` (with its query parameters) naming database `name` instead."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def _connect(url: str) -> asyncpg.Connection:
    """A plain asyncpg connection, the URL read as the app reads it (`sslmode`, ...)."""
    connection: asyncpg.Connection = await asyncpg.connect(
        **parse_database_url(url).asyncpg_connect_kwargs()
    )
    return connection


async def recreate_database(admin_url: str, name: str) -> None:
    admin = await _connect(admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


def create_schema(schema_command: str, database_url: str) -> None:
    """The project's schema step, whichever it is today (`BENCH_SCHEMA` in the Makefile)."""
    subprocess.run(
        shlex.split(schema_command),
        cwd=REPO / "backend",
        env={**os.environ, "DATABASE_URL": database_url},
        check=True,
    )


async def server_facts(admin_url: str) -> str:
    """The server's version and the settings that make a write cheaper or dearer."""
    admin = await _connect(admin_url)
    try:
        version = await admin.fetchval("SHOW server_version")
        commit = await admin.fetchval("SHOW synchronous_commit")
        fsync = await admin.fetchval("SHOW fsync")
        connections = await admin.fetchval("SHOW max_connections")
    finally:
        await admin.close()
    return (
        f"PostgreSQL {version}, synchronous_commit {commit}, fsync {fsync}, "
        f"max_connections {connections}"
    )


def _answers(url: str) -> bool:
    target = make_url(url)
    command = ["pg_isready", "-q", "-h", target.host or "127.0.0.1", "-p", str(target.port or 5432)]
    return subprocess.run(command, check=False).returncode == 0


def ensure_pgbouncer(server_url: str, pgbouncer_url: str) -> None:
    """Start the TLS cluster and PgBouncer in front of it unless both answer already.

    The scripts are the ones `make test-services` runs; they need root.
    """
    if _answers(server_url) and _answers(pgbouncer_url):
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    for script in ("postgres-tls.sh", "pgbouncer.sh"):
        print(f"starting {script}", flush=True)
        subprocess.run([*sudo, str(REPO / "scripts" / script)], check=True)


def pgbouncer_pool_size() -> str:
    """default_pool_size from scripts/pgbouncer.sh's configuration, if it can be read."""
    directory = Path(os.environ.get("PGBOUNCER_DIR", "/tmp/todo-pgbouncer"))  # noqa: S108 (the script's)
    try:
        lines = (directory / "pgbouncer.ini").read_text().splitlines()
    except OSError:
        return "?"
    return next(
        (
            line.split("=", 1)[1].strip()
            for line in lines
            if line.replace(" ", "").startswith("default_pool_size=")
        ),
        "?",
    )


# --- the report ------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    commit = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{memory_kib / 1024 / 1024:.0f} GiB",
        "python": platform.python_version(),
        "commit": commit,
    }


def _ms(value: float) -> str:
    return f"{value:.1f}"


def _comparison(lineup: Lineup) -> list[str]:
    """The --compare table: each checkout of the service beside this one."""
    service = lineup.service
    if not lineup.variants:
        return []
    operations = [name for name in OPERATIONS if name in service.series]
    lines = [
        "",
        f"Other checkouts of the service (--compare), {lineup.connection.name}, same data, "
        "rounds interleaved with the above: rps / p95 ms / worker CPU us per request, then "
        "the checkout's rps and CPU per request over this checkout's (medians of each "
        "round's ratio; rps above 1 and CPU below 1 favour the other checkout):",
        "",
        "| service | " + " | ".join(OPERATION_NAMES[name] for name in operations) + " |",
        "|---|" + "--:|" * len(operations),
    ]
    for server in [*lineup.variants, service]:
        cells = []
        for operation in operations:
            theirs, ours = server.series[operation], service.series[operation]
            cell = (
                f"{theirs.median('rps'):.0f} / {theirs.median('p95_ms'):.0f} / "
                f"{theirs.median('cpu_us'):.0f}"
            )
            if server is not service:
                cell += (
                    f" (rps {theirs.ratio(ours, 'rps'):.2f}x, "
                    f"CPU {theirs.ratio(ours, 'cpu_us'):.2f}x)"
                )
            cells.append(cell)
        label = "this checkout" if server is service else server.label
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


# The bar, against the plain FastAPI app: service rps at least this share of its rps ...
MIN_RPS_RATIO = 0.9
# ... and at most these multiples of its worker CPU per request and of its p95.
MAX_CPU_RATIO = 1.2
MAX_P95_RATIO = 1.3
# The service's own promise, whatever the floors do.
MAX_P95_MS = 100
MAX_RSS_MIB = 120


def _tables(lineup: Lineup, misses: list[str]) -> list[str]:
    """One connection kind's tables: the service beside both floors, then --compare."""
    service, framework, bare = lineup.service, lineup.framework, lineup.reference
    kind = lineup.connection.name
    operations = [name for name in OPERATIONS if name in service.series]
    heading = f"## {kind}: {lineup.connection.title}"
    lines = ["", heading, ""]
    if lineup.server_version:
        lines += [f"Server: {lineup.server_version}.", ""]
    lines += [
        "| operation | server | rps | p50 | p95 | p99 | errors | worker CPU us/req |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for operation in operations:
        for number, (label, server) in enumerate(
            (("service", service), ("plain FastAPI", framework), ("bare Starlette", bare))
        ):
            series = server.series[operation]
            lines.append(
                f"| {OPERATION_NAMES[operation] if number == 0 else ''} | {label} "
                f"| {series.median('rps'):.0f} | {_ms(series.median('p50_ms'))} "
                f"| {_ms(series.median('p95_ms'))} | {_ms(series.median('p99_ms'))} "
                f"| {series.errors} | {series.median('cpu_us'):.0f} |"
            )
    lines += [
        "",
        f"Ratios, {kind} (medians of each round's ratio): the service over the plain FastAPI "
        f"app (bar: rps >= {MIN_RPS_RATIO}, CPU <= {MAX_CPU_RATIO}x, p95 <= {MAX_P95_RATIO}x), "
        "and both over bare Starlette:",
        "",
        "| operation | service/FastAPI rps | CPU | p95 | service/bare rps | FastAPI/bare rps |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for operation in operations:
        ours, floor = service.series[operation], framework.series[operation]
        rps, cpu, p95 = (ours.ratio(floor, name) for name in ("rps", "cpu_us", "p95_ms"))
        lines.append(
            f"| {OPERATION_NAMES[operation]} | {rps:.2f} | {cpu:.2f} | {p95:.2f} "
            f"| {ours.ratio(bare.series[operation], 'rps'):.2f} "
            f"| {floor.ratio(bare.series[operation], 'rps'):.2f} |"
        )
        if rps < MIN_RPS_RATIO:
            misses.append(f"{kind}, {operation}: rps {rps:.2f}x plain FastAPI's < {MIN_RPS_RATIO}")
        if cpu > MAX_CPU_RATIO:
            misses.append(f"{kind}, {operation}: CPU {cpu:.2f}x plain FastAPI's > {MAX_CPU_RATIO}")
        if p95 > MAX_P95_RATIO:
            misses.append(f"{kind}, {operation}: p95 {p95:.2f}x plain FastAPI's > {MAX_P95_RATIO}")
        if operation in ("get", "create", "toggle") and ours.median("p95_ms") >= MAX_P95_MS:
            p95_ms = ours.median("p95_ms")
            misses.append(f"{kind}, {operation}: p95 {p95_ms:.0f} ms >= {MAX_P95_MS} ms")
    return lines + _comparison(lineup)


def report(
    *,
    lineups: Sequence[Lineup],
    sqlite: Server | None,
    load: Load,
    runs: int,
    facts: dict[str, str],
    command: str,
    sync_interval: float = 0.1,
) -> tuple[str, list[str]]:
    """The Markdown report, and what in it misses the bar."""
    misses: list[str] = []
    lines = [
        "# Benchmark",
        "",
        f"`{command}` on {facts['date']}, commit `{facts['commit']}`.",
        "",
        f"{load.connections} connections, {load.threads} wrk threads, keep-alive; "
        f"{runs} run(s) of {load.duration_s:g} s per operation after a {load.warmup_s:g} s "
        "warm-up; figures are medians over the runs, ratios the medians of each round's ratio "
        "(the service over the floor named), latencies in ms. "
        f"Data: {facts['data']}. One section per connection kind "
        f"({', '.join(lineup.connection.name for lineup in lineups)}); in each, the service, "
        "both floors and any --compare checkout connect the same way, and the rounds "
        "interleave every server of every kind.",
    ]
    for lineup in lineups:
        lines += _tables(lineup, misses)
    lines += sync.section(
        {lineup.connection.name: lineup.sync_rounds for lineup in lineups},
        interval=sync_interval,
        users=sync.IDLE_USERS,
        misses=misses,
    )

    lines += ["", "## All kinds", ""]
    lines += ["Peak RSS per worker (VmHWM, the largest over workers and runs):", ""]
    servers = [server for lineup in lineups for server in lineup.servers]
    servers += [sqlite] if sqlite else []
    # The live-sync servings (their peak holds the idle streams: not held to the RSS bar).
    servers += [
        lineup.live_sync for lineup in lineups if lineup.live_sync and lineup.live_sync.peak_rss_kib
    ]
    services = [lineup.service for lineup in lineups] + ([sqlite] if sqlite else [])
    for server in servers:
        peak_mib = max(server.peak_rss_kib) / 1024
        lines.append(f"- {server.name}, {server.workers} worker(s): {peak_mib:.0f} MiB")
        if server in services and peak_mib > MAX_RSS_MIB:
            misses.append(f"{server.name}: peak RSS {peak_mib:.0f} MiB > {MAX_RSS_MIB} MiB")

    mixed = [lineup.service for lineup in lineups if "mixed" in lineup.service.series]
    if sqlite is not None and mixed:
        lines += [
            "",
            "The service on its embedded SQLite default, same data, mixed workload:",
            "",
            "| database | workers | rps | p50 | p95 | p99 | errors |",
            "|---|--:|--:|--:|--:|--:|--:|",
        ]
        for server in [*mixed, sqlite]:
            series = server.series["mixed"]
            database = f"PostgreSQL, {server.via}" if server.via else "SQLite"
            lines.append(
                f"| {database} | {server.workers} | {series.median('rps'):.0f} "
                f"| {_ms(series.median('p50_ms'))} | {_ms(series.median('p95_ms'))} "
                f"| {_ms(series.median('p99_ms'))} | {series.errors} |"
            )

    lines += ["", "Every run (rps / p95 ms):", ""]
    for server in servers:
        for operation, series in server.series.items():
            figures = ", ".join(f"{run.rps:.0f} / {run.p95_ms:.1f}" for run in series.runs)
            lines.append(f"- {server.name}, {operation}: {figures}")

    errors = sum(s.errors for server in servers for s in server.series.values())
    if errors:
        misses.insert(0, f"{errors} failed request(s): the run fails")
    lines += [
        "",
        "Machine: "
        f"{facts['cpus']} CPUs ({facts['cpu']}), {facts['memory']} of memory, "
        f"PostgreSQL {facts['postgres']}, Python {facts['python']}; "
        f"load average {facts['load_before']} before, {facts['load_after']} after. "
        "The machine is shared, so only figures from the same run compare.",
        "",
        f"Bar, for each connection kind, against the plain FastAPI app: rps >= {MIN_RPS_RATIO}x, "
        f"worker CPU per request <= {MAX_CPU_RATIO}x, p95 <= {MAX_P95_RATIO}x (and "
        f"< {MAX_P95_MS} ms on get/create/toggle); no errors; peak RSS <= {MAX_RSS_MIB} MiB "
        "per worker: " + ("met." if not misses else "missed: " + "; ".join(misses) + "."),
        "",
    ]
    return "\n".join(lines), misses


def raw_figures(lineups: Sequence[Lineup], sqlite: Server | None) -> dict[str, object]:
    """Every run of every server, by connection kind and label: the report's .json."""
    raw: dict[str, object] = {
        lineup.connection.name: {
            server.label: {
                operation: [vars(run) for run in series.runs]
                for operation, series in server.series.items()
            }
            for server in lineup.servers
        }
        for lineup in lineups
    }
    for lineup in lineups:
        if lineup.sync_rounds:
            figures = raw[lineup.connection.name]
            assert isinstance(figures, dict)
            figures["live sync"] = [asdict(each) for each in lineup.sync_rounds]
    if sqlite is not None:
        raw["sqlite"] = {
            sqlite.label: {
                operation: [vars(run) for run in series.runs]
                for operation, series in sqlite.series.items()
            }
        }
    return raw


# --- main ------------------------------------------------------------------


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _seeded() -> dict[str, list[int]]:
    try:
        marker: dict[str, list[int]] = json.loads(SEEDED.read_text())
    except (OSError, ValueError):
        return {}
    return marker


def prepare(
    args: argparse.Namespace, connections: Sequence[Connection], facts: dict[str, str]
) -> Load:
    """Fresh PostgreSQL databases (one per connection kind's server) and SQLite file,
    migrated and seeded with the same rows, and wrk's data file.

    With --reuse, a database seeded earlier with the same numbers is kept.
    """
    load = Load(args.connections, args.threads, args.duration, args.warmup, WORK / "data.lua")
    started = time.monotonic()
    size = [args.users, args.tasks_per_user, args.large_user_tasks]
    seeded = _seeded() if load.data.exists() else {}
    targets = [connection.admin_database(args.database) for connection in connections]
    if args.sqlite_workers:
        targets.append(f"sqlite:///{SQLITE_PATH}")
    pending = [url for url in targets if not (args.reuse and seeded.get(url) == size)]
    data = (
        seed.generate(args.users, args.tasks_per_user, large_user_tasks=args.large_user_tasks)
        if pending
        else None
    )
    for connection in connections:
        url = connection.admin_database(args.database)
        if data is None or url not in pending:
            continue
        asyncio.run(recreate_database(connection.admin_url, args.database))
        create_schema(args.schema, url)
        asyncio.run(seed.load_postgres(url, data))
        seeded[url] = size
    sqlite_url = f"sqlite:///{SQLITE_PATH}"
    if data is not None and sqlite_url in pending:
        for stale in WORK.glob("todo_bench.db*"):
            stale.unlink()
        create_schema(args.schema, sqlite_url)
        seed.load_sqlite(SQLITE_PATH, data)
        seeded[sqlite_url] = size
    if data is not None:
        seed.write_lua(data, load.data)
        SEEDED.write_text(json.dumps(seeded, indent=1) + "\n")
    kept = len(targets) - len(pending)
    facts["data"] = f"{args.users} users x {args.tasks_per_user} tasks" + (
        f" and one user with {args.large_user_tasks} (searched)" if args.large_user_tasks else ""
    )
    facts["data"] += ", a copy on each kind's " + (
        "server and in SQLite" if args.sqlite_workers else "server"
    )
    if not pending:
        facts["data"] += ", from an earlier seeding"
    else:
        facts["data"] += f", seeded in {time.monotonic() - started:.0f} s" + (
            f" ({kept} of {len(targets)} kept from an earlier seeding)" if kept else ""
        )
    return load


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each run")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--tasks-per-user", type=int, default=1000)
    parser.add_argument(
        "--large-user-tasks",
        type=int,
        default=100_000,
        help="tasks of the one more user the searches run on (0: none, and no search)",
    )
    parser.add_argument("--workers", type=int, default=2, help="per server, on PostgreSQL")
    parser.add_argument("--sqlite-workers", type=int, default=2, help="0 skips SQLite")
    parser.add_argument("--operations", default=",".join(OPERATIONS))
    parser.add_argument(
        "--sync-streams",
        type=int,
        default=1000,
        help="idle streams in the service's live-sync runs (with mixed); 0 skips those runs",
    )
    parser.add_argument(
        "--sync-interval", type=float, default=0.1, help="seconds between the probe's writes"
    )
    parser.add_argument(
        "--via",
        default=",".join(VIAS),
        metavar="KIND,...",
        help=f"connection kinds to measure, in this order (of {', '.join(VIAS)})",
    )
    parser.add_argument("--schema", default="alembic upgrade head")
    parser.add_argument(
        "--postgres", default=DIRECT_URL, help="admin URL of the server --via direct reaches"
    )
    parser.add_argument(
        "--tls-postgres",
        default=TLS_POSTGRES_URL,
        help="admin URL of the server behind PgBouncer (seeded directly)",
    )
    parser.add_argument(
        "--pgbouncer", default=PGBOUNCER_URL, help="PgBouncer's URL (transaction mode)"
    )
    parser.add_argument(
        "--database",
        default=BENCH_DATABASE,
        help="name of the benchmark database on each server (dropped and recreated unless --reuse)",
    )
    parser.add_argument("--reuse", action="store_true", help="keep the last seeded databases")
    parser.add_argument("--profile", metavar="OPERATION", help="py-spy the service instead")
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="also serve the service from another checkout (its own make serve), interleaved",
    )
    parser.add_argument("--output", type=Path, default=BENCH / "results" / "latest.md")
    parser.add_argument("--command", default="make bench", help="named in the report")
    args = parser.parse_args(argv)
    # `make bench` runs from backend/; a relative path names a file of the repository.
    args.output = REPO / args.output
    vias = args.via.split(",")
    unknown = [name for name in vias if name not in VIAS]
    if unknown or not vias or len(set(vias)) != len(vias):
        parser.error(f"--via takes distinct names out of {', '.join(VIAS)}, not {args.via!r}")
    operations = args.operations.split(",")
    if unknown := [name for name in operations if name not in OPERATIONS]:
        parser.error(f"--operations takes names out of {', '.join(OPERATIONS)}, not {unknown}")
    if "search" in operations and not args.large_user_tasks:
        parser.error("search runs on the large user: --large-user-tasks must not be 0")
    for spec in args.compare:
        label, _, directory = spec.partition("=")
        if not label or not directory:
            parser.error(f"--compare takes LABEL=DIR, not {spec!r}")
    return args


def connection_kinds(args: argparse.Namespace) -> list[Connection]:
    direct = make_url(args.postgres)
    bouncer, behind = make_url(args.pgbouncer), make_url(args.tls_postgres)
    known = {
        "direct": Connection(
            "direct",
            f"PostgreSQL on {direct.host}:{direct.port or 5432}, straight to the server",
            args.postgres,
            args.postgres,
            "session",
        ),
        "pgbouncer": Connection(
            "pgbouncer",
            f"PgBouncer in transaction mode on {bouncer.host}:{bouncer.port} over TLS, "
            f"in front of PostgreSQL with TLS on {behind.host}:{behind.port} "
            f"(default_pool_size {pgbouncer_pool_size()} server connections per database); "
            "the service and the floors run with DATABASE_POOL_MODE=transaction: no "
            "statement cache, each write in a transaction",
            args.tls_postgres,
            args.pgbouncer,
            "transaction",
        ),
    }
    return [known[name] for name in args.via.split(",")]


def lineup(args: argparse.Namespace, connection: Connection) -> Lineup:
    url = connection.serve_database(args.database)
    env = {"DATABASE_POOL_MODE": connection.pool_mode}
    kind = connection.name

    def server(label: str, target: str, repo: Path = REPO) -> Server:
        return Server(label, target, url, args.workers, repo=repo, via=kind, env=env)

    live_sync = None
    if args.sync_streams and "mixed" in args.operations.split(","):
        # As on Neon: the notice listener on the direct URL, requests through the pooler.
        direct = {"DATABASE_URL_DIRECT": connection.admin_database(args.database)}
        live_sync = Server(
            "service, live sync", "serve", url, args.workers, via=kind, env={**env, **direct}
        )
    return Lineup(
        connection,
        service=server("service", "serve"),
        framework=server("plain FastAPI", "serve-fastapi-reference"),
        reference=server("bare Starlette", "serve-reference"),
        variants=[
            server(label, "serve", Path(directory).resolve())
            for label, _, directory in (spec.partition("=") for spec in args.compare)
        ],
        live_sync=live_sync,
    )


def _raise_file_limit(needed: int) -> None:
    """Room for the idle streams' sockets, here and in the servers started from here."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    operations = tuple(args.operations.split(","))
    WORK.mkdir(exist_ok=True)
    # The idle streams, wrk's connections and the pools, with room to spare.
    _raise_file_limit(2 * args.sync_streams + 4096)
    if "pgbouncer" in args.via.split(","):
        ensure_pgbouncer(args.tls_postgres, args.pgbouncer)
    connections = connection_kinds(args)
    facts = machine()
    facts["load_before"] = _load_average()
    facts["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lineups = [lineup(args, connection) for connection in connections]
    for each in lineups:
        each.server_version = asyncio.run(server_facts(each.connection.admin_url))
    facts["postgres"] = ", ".join(
        sorted({each.server_version.split(",")[0].removeprefix("PostgreSQL ") for each in lineups})
    )
    load = prepare(args, connections, facts)
    print(f"data: {facts['data']}", flush=True)

    sqlite = (
        Server("service, SQLite", "serve", f"sqlite:///{SQLITE_PATH}", args.sqlite_workers)
        if args.sqlite_workers
        else None
    )
    if args.profile:
        profile_service(lineups[0], args.profile, load, args.output, args.command)
        return 0
    for number in range(1, args.runs + 1):
        print(f"round {number} of {args.runs}", flush=True)
        for each in lineups:
            for server in each.servers:
                label = server.label.replace(" ", "-")
                log = WORK / f"{each.connection.name}-{label}-{number}.log"
                measure(server, operations, load, log)
            if each.live_sync is not None:
                log = WORK / f"{each.connection.name}-live-sync-{number}.log"
                each.sync_rounds.append(
                    measure_sync(
                        each.live_sync,
                        load,
                        log,
                        number,
                        streams=args.sync_streams,
                        interval=args.sync_interval,
                    )
                )
        if sqlite is not None:
            measure(sqlite, ("mixed",), load, WORK / f"sqlite-{number}.log")

    facts["load_after"] = _load_average()
    text, _misses = report(
        lineups=lineups,
        sqlite=sqlite,
        load=load,
        runs=args.runs,
        facts=facts,
        command=args.command,
        sync_interval=args.sync_interval,
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    raw = raw_figures(lineups, sqlite)
    args.output.with_suffix(".json").write_text(json.dumps(raw, indent=1) + "\n")
    print(f"\n{text}\nwritten to {args.output}", flush=True)
    servers = [server for each in lineups for server in each.servers]
    servers += [sqlite] if sqlite else []
    servers += [each.live_sync for each in lineups if each.live_sync is not None]
    failed = sum(series.errors for server in servers for series in server.series.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
