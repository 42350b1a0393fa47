"""The speed-of-light reference: the benchmark's routes on a bare asyncpg pool.

Plain Starlette, hand-written SQL, the service's JSON shape, and nothing the
benchmark does not need: no validation, no problem+json, no user upsert (the users
are seeded); each write takes the user's change number as the service's does. It is
served by the same uvicorn command as the service (`make serve-reference`), so
the ratio between the two is the cost of everything the service adds.

It connects as the service does: the URL through the app's own parsing (TLS
from `sslmode`), and behind PgBouncer in transaction mode (decided as the
service decides, from DATABASE_POOL_MODE or a pooler host) with no statement
cache and each write in a transaction of its own, as the service runs them
(todo.db.postgres_runner).
"""

import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import asyncpg
from asyncpg import Record
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from todo.config import Settings
from todo.db.postgres import uses_transaction_pooling
from todo.db.urls import parse_database_url
from todo.tasks.search import contains_pattern

# The service's default pool per worker: DATABASE_POOL_SIZE=10, no overflow.
POOL_MIN_SIZE = 10
POOL_MAX_SIZE = 10

_COLUMNS = "id, user_id, title, description, status, created_at, updated_at, position"
_WRITTEN = "id, user_id, title, description, status, created_at, updated_at"
# The service's write path (todo.users.changes): each write takes its user's
# next change number and sends the change notice, in the same statement.
_NEXT_CHANGE = """
    WITH next_change AS (
        UPDATE users SET last_change = last_change + 1 WHERE id = $2 RETURNING last_change, id
    ), notice AS (
        SELECT last_change AS change,
               pg_notify('todo_changes', id::text || ' ' || last_change::text)
        FROM next_change
    )
"""
LIST_SQL = f"""
    SELECT {_COLUMNS} FROM tasks WHERE user_id = $1 AND deleted_at IS NULL
    ORDER BY created_at DESC, id DESC LIMIT $2
"""
# The service's search (todo.tasks.search): a LIKE on each stored key.
SEARCH_SQL = f"""
    SELECT {_COLUMNS} FROM tasks WHERE user_id = $1 AND deleted_at IS NULL
    AND (title_key LIKE $3 ESCAPE '\\' OR description_key LIKE $3 ESCAPE '\\')
    ORDER BY created_at DESC, id DESC LIMIT $2
"""
SUMMARY_SQL = """
    SELECT count(*), count(*) FILTER (WHERE status = 'pending')
    FROM tasks WHERE user_id = $1 AND deleted_at IS NULL
"""
GET_SQL = f"SELECT {_COLUMNS} FROM tasks WHERE user_id = $1 AND id = $2 AND deleted_at IS NULL"
CREATE_SQL = f"""
    {_NEXT_CHANGE.replace("$2", "$2::uuid")}
    INSERT INTO tasks ({_WRITTEN}, title_key, description_key, change, position)
    VALUES (
        $1, $2, $3::text, $4::text, $5, $6, $6, lower($3::text), lower($4::text),
        (SELECT change FROM notice),
        '0' || (1000000000000000 - (SELECT change FROM notice))::text || '1'
    )
    RETURNING {_COLUMNS}
"""
TOGGLE_SQL = f"""
    {_NEXT_CHANGE.replace("$2", "$1::uuid")}
    UPDATE tasks
    SET status = CASE WHEN status = 'pending' THEN 'completed' ELSE 'pending' END,
        updated_at = GREATEST($3, updated_at + interval '1 microsecond'),
        version = version + 1,
        change = (SELECT change FROM notice)
    WHERE user_id = $1 AND id = $2 AND deleted_at IS NULL
    RETURNING {_COLUMNS}
"""


def _timestamp(value: datetime) -> str:
    # pydantic's form, which the service returns: "...T12:00:00.123456Z".
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def task_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "user_id": str(row["user_id"]),
        "title": row["title"],
        "description": row["description"],
        "status": row["status"],
        "created_at": _timestamp(row["created_at"]),
        "updated_at": _timestamp(row["updated_at"]),
        "position": row["position"],
    }


def summary_json(total: int, pending: int) -> dict[str, int]:
    return {"total": total, "pending": pending, "completed": total - pending}


async def fetch(
    app: Starlette, sql: str, *args: Any, planned_each_time: bool = False, write: bool = False
) -> list[Record]:
    """The statement's rows, on a pooled connection (a write in a transaction behind PgBouncer).

    `planned_each_time`: as the unnamed statement, so planned for its values, as the
    service runs searches (todo.db.statements.planned_each_time).
    """
    pool: asyncpg.Pool = app.state.pool
    async with pool.acquire() as connection:
        if write and app.state.writes_in_transaction:
            async with connection.transaction():
                rows: list[Record] = await connection.fetch(sql, *args)
                return rows
        if planned_each_time:
            statement = await connection.prepare(sql, name="")
            rows = await statement.fetch(*args)
            return rows
        rows = await connection.fetch(sql, *args)
        return rows


async def _fetchrow(request: Request, sql: str, *args: Any, write: bool = False) -> Record | None:
    rows = await fetch(request.app, sql, *args, write=write)
    return rows[0] if rows else None


def _user(request: Request) -> str:
    return request.headers["x-user-id"]


def _not_found() -> Response:
    return JSONResponse({"status": 404}, status_code=404)


async def health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def list_tasks(request: Request) -> Response:
    limit = int(request.query_params.get("limit", "100"))
    query = request.query_params.get("q")
    if query is None:
        rows = await fetch(request.app, LIST_SQL, _user(request), limit)
    else:
        pattern = contains_pattern(query)
        rows = await fetch(
            request.app, SEARCH_SQL, _user(request), limit, pattern, planned_each_time=True
        )
    return JSONResponse([task_json(row) for row in rows])


async def summary(request: Request) -> Response:
    [(total, pending)] = await fetch(request.app, SUMMARY_SQL, _user(request))
    return JSONResponse(summary_json(total, pending))


async def get_task(request: Request) -> Response:
    row = await _fetchrow(request, GET_SQL, _user(request), request.path_params["task_id"])
    return _not_found() if row is None else JSONResponse(task_json(row))


async def create_task(request: Request) -> Response:
    body = await request.json()
    row = await _fetchrow(
        request,
        CREATE_SQL,
        uuid4(),
        _user(request),
        body["title"],
        body.get("description"),
        body.get("status", "pending"),
        datetime.now(UTC),
        write=True,
    )
    assert row is not None
    return JSONResponse(
        task_json(row), status_code=201, headers={"Location": f"/api/tasks/{row['id']}"}
    )


async def toggle_task(request: Request) -> Response:
    row = await _fetchrow(
        request,
        TOGGLE_SQL,
        _user(request),
        request.path_params["task_id"],
        datetime.now(UTC),
        write=True,
    )
    return _not_found() if row is None else JSONResponse(task_json(row))


def connect_arguments(
    dsn: str | None = None, settings: Settings | None = None
) -> tuple[dict[str, Any], bool]:
    """asyncpg's connect arguments for `dsn` (DATABASE_URL by default), and whether each
    write runs in a transaction of its own, decided as the service decides (from
    `settings`' pool mode or a pooler host)."""
    dsn = dsn or os.environ["DATABASE_URL"]
    target = parse_database_url(dsn)
    pooled = uses_transaction_pooling(target, settings or Settings(database_url=dsn))
    connect: dict[str, Any] = target.asyncpg_connect_kwargs()
    if pooled:
        connect["statement_cache_size"] = 0
    return connect, pooled


def pool_lifespan(
    dsn: str | None = None, settings: Settings | None = None
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """Both floors' lifespan: their pool on `app.state`, open while the app serves.

    As large as the service's, and without asyncpg's reset query on every release
    (`RESET ALL` and more, a second round trip per request that the service, which
    changes no session state, does not send either).
    """
    connect, writes_in_transaction = connect_arguments(dsn, settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with asyncpg.create_pool(
            min_size=POOL_MIN_SIZE, max_size=POOL_MAX_SIZE, reset=_keep_session, **connect
        ) as pool:
            app.state.pool = pool
            app.state.writes_in_transaction = writes_in_transaction
            yield

    return lifespan


async def _keep_session(_connection: asyncpg.Connection) -> None:
    return None


def create_app(dsn: str | None = None, settings: Settings | None = None) -> Starlette:
    """The app on `dsn` (DATABASE_URL by default); `settings` give the pool mode."""
    return Starlette(
        routes=[
            Route("/health", health),
            Route("/api/tasks", list_tasks, methods=["GET"]),
            Route("/api/tasks", create_task, methods=["POST"]),
            Route("/api/tasks/summary", summary, methods=["GET"]),
            Route("/api/tasks/{task_id}", get_task, methods=["GET"]),
            Route("/api/tasks/{task_id}/complete", toggle_task, methods=["PATCH"]),
        ],
        lifespan=pool_lifespan(dsn, settings),
    )
