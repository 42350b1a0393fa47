"""The framework's floor: the benchmark's routes as a plain FastAPI app.

What an ordinary FastAPI app pays and nothing more: a typed path parameter, a
typed `X-User-ID` header, a pydantic body model, response bytes from orjson,
and no middleware at all. The SQL, the pool (10 connections per worker) and
the way it connects, directly or behind PgBouncer in transaction mode, are the
bare reference's (bench/reference.py), so between the three the ratios say
what FastAPI costs and what the service adds on top of it.
"""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

import asyncpg
import orjson
from fastapi import FastAPI, Header, Query, Request, Response
from pydantic import BaseModel, Field

from bench.reference import (
    CREATE_SQL,
    GET_SQL,
    LIST_SQL,
    SEARCH_SQL,
    SUMMARY_SQL,
    TOGGLE_SQL,
    fetch,
    pool_lifespan,
    summary_json,
    task_json,
)
from todo.config import Settings
from todo.tasks.search import contains_pattern

UserId = Annotated[UUID, Header(alias="X-User-ID")]


class TaskCreate(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    status: Literal["pending", "completed"] = "pending"


def _json(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(content),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


def _task(rows: list[asyncpg.Record]) -> Response:
    if not rows:
        return _json({"status": 404}, status_code=404)
    return _json(task_json(rows[0]))


def create_app(dsn: str | None = None, settings: Settings | None = None) -> FastAPI:
    """The app on `dsn` (DATABASE_URL by default), connected as the bare reference connects."""
    app = FastAPI(lifespan=pool_lifespan(dsn, settings))

    @app.get("/health")
    async def health() -> Response:
        return _json({"status": "ok"})

    @app.get("/api/tasks")
    async def list_tasks(
        request: Request,
        user_id: UserId,
        limit: Annotated[int, Query(ge=1, le=100)] = 100,
        q: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    ) -> Response:
        if q is None:
            rows = await fetch(request.app, LIST_SQL, user_id, limit)
        else:
            pattern = contains_pattern(q)
            rows = await fetch(
                request.app, SEARCH_SQL, user_id, limit, pattern, planned_each_time=True
            )
        return _json([task_json(row) for row in rows])

    @app.get("/api/tasks/summary")
    async def summary(request: Request, user_id: UserId) -> Response:
        [(total, pending)] = await fetch(request.app, SUMMARY_SQL, user_id)
        return _json(summary_json(total, pending))

    @app.get("/api/tasks/{task_id}")
    async def get_task(request: Request, task_id: UUID, user_id: UserId) -> Response:
        return _task(await fetch(request.app, GET_SQL, user_id, task_id))

    @app.post("/api/tasks", status_code=201)
    async def create_task(request: Request, body: TaskCreate, user_id: UserId) -> Response:
        now = datetime.now(UTC)
        rows = await fetch(
            request.app,
            CREATE_SQL,
            *(uuid4(), user_id, body.title, body.description, body.status, now),
            write=True,
        )
        task = task_json(rows[0])
        return _json(task, status_code=201, headers={"Location": f"/api/tasks/{task['id']}"})

    @app.patch("/api/tasks/{task_id}/complete")
    async def toggle_task(request: Request, task_id: UUID, user_id: UserId) -> Response:
        rows = await fetch(request.app, TOGGLE_SQL, user_id, task_id, datetime.now(UTC), write=True)
        return _task(rows)

    return app
