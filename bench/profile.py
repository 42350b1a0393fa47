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
_IDLE_LEAVES = ("Condition.wait (", "Queue.get (", "Connection._recv (", "Event.wait (")


def _samples(paths: Iterable[Path]) -> Iterable[tuple[list[str], int]]:
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack:
                yield stack.split(";"), int(count)


def _location(frame: str) -> str:
    return frame.rpartition("(")[2].rstrip(")")


def summarize(paths: Iterable[Path]) -> str:
    """A Markdown summary: share of busy samples per library and per stage."""
    by_library: Counter[str] = Counter()
    by_stage: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    busy = 0
    for frames, count in _samples(paths):
        leaf = frames[-1]
        if leaf.startswith(_IDLE_LEAVES):
            continue
        busy += count
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
    if not busy:
        return "No samples.\n"
    lines = ["| where the worker was (innermost frame) | share |", "|---|--:|"]
    lines += [f"| {label} | {count / busy:.0%} |" for label, count in by_library.most_common()]
    lines += ["", "| stage of a request (inclusive) | share |", "|---|--:|"]
    lines += [f"| {label} | {by_stage[label] / busy:.0%} |" for label, _ in STAGES]
    lines += ["", "| hottest functions (self) | share |", "|---|--:|"]
    lines += [
        f"| `{function}` | {count / busy:.1%} |" for function, count in by_function.most_common(12)
    ]
    return "\n".join(lines) + "\n"
