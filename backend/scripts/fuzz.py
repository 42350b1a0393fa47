"""Fuzz the running service with schemathesis, once on each database.

For each database this creates a fresh one (an SQLite file, or a PostgreSQL
database it drops afterwards), starts uvicorn on a free loopback port, and runs
every check schemathesis has against the app's own /openapi.json, with
negative cases. It fails on any failed check, any 500 in the server's log, or
a request that outlives the timeout.

    python scripts/fuzz.py [sqlite] [postgresql]

FUZZ_POSTGRES_URL (else TEST_POSTGRES_URL) names a server where it may create
databases; FUZZ_MAX_EXAMPLES, FUZZ_MAX_TIME (seconds per database) and
FUZZ_SEED bound and repeat a run.
"""

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import uuid4

import asyncpg

BACKEND_DIR = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get(
    "FUZZ_POSTGRES_URL",
    os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
)
MAX_EXAMPLES = os.environ.get("FUZZ_MAX_EXAMPLES", "50")
MAX_TIME = os.environ.get("FUZZ_MAX_TIME", "60")
SEED = os.environ.get("FUZZ_SEED")
REQUEST_TIMEOUT_SECONDS = "10"
STARTUP_TIMEOUT_SECONDS = 30
# Loading the schema, shrinking failures and writing reports come on top of --max-time.
RUN_GRACE_SECONDS = 300
USER_ID = "123e4567-e89b-12d3-a456-426614174000"


@contextmanager
def fresh_database(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'fuzz.db'}"
        return
    name = f"todo_fuzz_{uuid4().hex[:12]}"
    base, _, _ = POSTGRES_URL.rpartition("/")
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_server(env: dict[str, str], log_path: Path) -> Iterator[str]:
    port = free_port()
    with log_path.open("wb") as log:
        server = subprocess.Popen(  # noqa: S603  (our own interpreter and arguments)
            [
                sys.executable, "-m", "uvicorn", "todo.main:create_app", "--factory",
                "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
            ],
            cwd=BACKEND_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_up(base_url, server)
            yield base_url
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def wait_until_up(base_url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode} while starting")
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=1):  # noqa: S310
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within {STARTUP_TIMEOUT_SECONDS}s")


# What counts as accepting a schema-valid request, where state decides the answer.
CONFIG_FILE = Path(__file__).with_name("schemathesis.toml")


def schemathesis(base_url: str, report_dir: Path) -> int:
    report_dir.mkdir()
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file", str(CONFIG_FILE),
        "run", f"{base_url}/openapi.json",
        "--checks", "all",
        "--mode", "all",
        "--header", f"X-User-ID: {USER_ID}",
        "--max-examples", MAX_EXAMPLES,
        "--max-time", MAX_TIME,
        "--request-timeout", REQUEST_TIMEOUT_SECONDS,
        "--generation-database", "none",
        "--report", "har", "--report-dir", ".",
        "--no-color",
    ]  # fmt: skip
    if SEED:
        command += ["--seed", SEED]
    try:
        # Run from the report directory, where schemathesis also leaves its cache.
        return subprocess.run(  # noqa: S603
            command, cwd=report_dir, check=False, timeout=int(MAX_TIME) + RUN_GRACE_SECONDS
        ).returncode
    except subprocess.TimeoutExpired:
        print(f"schemathesis was still running {RUN_GRACE_SECONDS}s after its time budget")
        return 1


def summarise_log(log_path: Path) -> int:
    """Print what the server saw; count the 500s it answered."""
    statuses: Counter[int] = Counter()
    slowest: list[tuple[float, str]] = []
    other_lines: list[str] = []
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            other_lines.append(line)
            continue
        if record.get("logger") == "todo.access":
            statuses[record["status"]] += 1
            slowest.append((record["duration_ms"], f"{record['method']} {record['route']}"))
        elif record.get("level") in ("WARNING", "ERROR", "CRITICAL"):
            other_lines.append(line)
    slowest.sort(reverse=True)
    print(f"server answered {sum(statuses.values())} requests: {dict(sorted(statuses.items()))}")
    print("slowest: " + ", ".join(f"{ms:.0f} ms {what}" for ms, what in slowest[:3]))
    for line in other_lines[-40:]:
        print(f"  server: {line}")
    return statuses[500]


def fuzz(kind: str) -> bool:
    print(f"\n=== schemathesis on {kind} ===", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"todo-fuzz-{kind}-"))
    try:
        with fresh_database(kind, workdir) as database_url:
            env = {
                **os.environ,
                "DATABASE_URL": database_url,
                "LOG_FORMAT": "json",
                "LOG_LEVEL": "INFO",
                "METRICS_ENABLED": "false",
                # Each stream is answered whole within the request timeout.
                "SYNC_STREAM_MAX_SECONDS": "1",
            }
            subprocess.run(
                [sys.executable, "-m", "alembic", "upgrade", "head"],
                cwd=BACKEND_DIR,
                env=env,
                check=True,
            )
            log_path = workdir / "server.log"
            with running_server(env, log_path) as base_url:
                status = schemathesis(base_url, workdir / "report")
            server_errors = summarise_log(log_path)
        if status != 0 or server_errors:
            print(f"FAILED on {kind}: schemathesis exited {status}, {server_errors} server errors")
            print(f"  the server's log and the requests sent (HAR) are in {workdir}")
            return False
        shutil.rmtree(workdir)
        return True
    except BaseException:
        print(f"  the server's log is in {workdir}")
        raise


def main(kinds: list[str]) -> int:
    kinds = kinds or ["sqlite", "postgresql"]
    results = {kind: fuzz(kind) for kind in kinds}
    print("\n" + ", ".join(f"{k}: {'ok' if ok else 'FAILED'}" for k, ok in results.items()))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
