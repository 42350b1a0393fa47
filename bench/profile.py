"""Where a worker's time goes, from py-spy's raw (collapsed-stack) samples.

Each sample is charged to the library whose code was running (the innermost
frame: time in a C extension shows on the Python frame that called it), and a
few inclusive totals name the stages of a request.
"""

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

# (label, path prefixes of the innermost frame), first match wins.
LIBRARIES = (
    ("event loop waiting (uvloop)", ("asyncio/runners.py",)),
    ("uvicorn + httptools", ("uvicorn/",)),
    ("Starlette (middleware, routing, responses)", ("starlette/",)),
    ("FastAPI (routing, dependencies, serialization glue)", ("fastapi/",)),
    ("pydantic (validation, JSON)", ("pydantic/", "pydantic_core/")),
    ("SQLModel", ("sqlmodel/",)),
    ("SQLAlchemy ORM (session, row -> object)", ("sqlalchemy/orm/",)),
    ("SQLAlchemy asyncio + asyncpg adapter", ("sqlalchemy/ext/", "sqlalchemy/dialects/")),
    ("SQLAlchemy Core (compile, execute, results, pool)", ("sqlalchemy/",)),
    ("asyncpg", ("asyncpg/",)),
    ("aiosqlite + sqlite3", ("aiosqlite/", "sqlite3/")),
    ("anyio worker threads", ("anyio/", "threading.py", "queue.py", "concurrent/")),
    ("the service's own code", ("todo/",)),
)
_SESSION_FRAMES = (
    "_connection_for_bind",
    "AsyncSession.close",
    "AsyncSession.commit",
    "Session.commit",
    "Session.close",
)
# Inclusive: samples with any frame matching, (label, substrings of a frame).
STAGES = (
    ("FastAPI dependency resolution (solve_dependencies)", ("solve_dependencies (",)),
    ("response validation + serialization (serialize_response)", ("serialize_response (",)),
    ("SQLAlchemy ORM row -> object (loading.instances)", ("instances (sqlalchemy/orm/loading",)),
    ("SQLAlchemy session/connection begin, commit, close", _SESSION_FRAMES),
    ("pool checkout ping", ("_async_ping", "do_ping", "_usable (todo/db/postgres_pool.py")),
    ("sync code run in the threadpool (run_in_threadpool)", ("run_in_threadpool (",)),
    (
        "one statement on the pooled asyncpg connection (todo.db.postgres_runner)",
        ("(todo/db/postgres_runner.py",),
    ),
    (
        "pool checkout and checkin for it (PostgresRunner._checkout, _checkin)",
        ("_checkout (todo/db/postgres_runner.py", "_checkin (todo/db/postgres_runner.py"),
    ),
    (
        "the request's log line and metrics (EdgeMiddleware._record)",
        ("_record (todo/http/middleware.py",),
    ),
    ("task rows to JSON (todo.tasks.encode)", ("(todo/tasks/encode.py",)),
)
# py-spy's sampling rate, per second.
RATE = 200
_IDLE_LEAVES = ("Condition.wait (", "Queue.get (", "Connection._recv (", "Event.wait (")


def _samples(paths: Iterable[Path]) -> Iterable[tuple[list[str], int]]:
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack:
                yield stack.split(";"), int(count)


def _location(frame: str) -> str:
    return frame.rpartition("(")[2].rstrip(")")


def _busy(paths: Iterable[Path]) -> tuple[Counter[str], Counter[str], Counter[str]]:
    """Busy samples by library, by stage (inclusive) and by function (self)."""
    by_library: Counter[str] = Counter()
    by_stage: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    for frames, count in _samples(paths):
        leaf = frames[-1]
        if leaf.startswith(_IDLE_LEAVES):
            continue
        location = _location(leaf)
        library = next(
            (label for label, prefixes in LIBRARIES if location.startswith(prefixes)),
            "Python standard library and other",
        )
        by_library[library] += count
        by_function[leaf] += count
        for label, needles in STAGES:
            if any(needle in frame for frame in frames for needle in needles):
                by_stage[label] += count
    return by_library, by_stage, by_function


def compare(ours: tuple[str, list[Path], int], floor: tuple[str, list[Path], int]) -> str:
    """A Markdown side-by-side: busy microseconds per request, ours against the floor's."""
    (our_name, our_paths, our_requests), (floor_name, floor_paths, floor_requests) = ours, floor
    mine, theirs = _busy(our_paths), _busy(floor_paths)

    def per_request(samples: int, requests: int) -> float:
        return samples * 1e6 / RATE / max(requests, 1)

    def table(title: str, at: int, rows: int | None) -> list[str]:
        names = set(mine[at]) | set(theirs[at])
        extra = {
            name: per_request(mine[at][name], our_requests)
            - per_request(theirs[at][name], floor_requests)
            for name in names
        }
        ordered = sorted(names, key=lambda name: -abs(extra[name]))[:rows]
        lines = [f"| {title} | {our_name} | {floor_name} | extra |", "|---|--:|--:|--:|"]
        for name in ordered:
            ours_us = per_request(mine[at][name], our_requests)
            floor_us = per_request(theirs[at][name], floor_requests)
            lines.append(f"| {name} | {ours_us:.1f} | {floor_us:.1f} | {extra[name]:+.1f} |")
        return [*lines, ""]

    totals = (
        f"Busy per request: {our_name} "
        f"{per_request(sum(mine[0].values()), our_requests):.1f} us over {our_requests} requests, "
        f"{floor_name} {per_request(sum(theirs[0].values()), floor_requests):.1f} us over "
        f"{floor_requests}.\n\n"
    )
    body = [
        *table("where the worker was (innermost frame), us/request", 0, None),
        *table("stage of a request (inclusive), us/request", 1, None),
        *table("functions (self) by the difference, us/request", 2, 25),
    ]
    return totals + "\n".join(body)
