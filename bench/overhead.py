"""`make bench-overhead`: what single layers cost per request, in-process CPU time.

The ASGI apps are called directly (no sockets, no uvicorn), one request at a
time, and timed with the process's CPU clock: medians of 7 rounds. It answers
"where does a GET spend the microseconds the reference does not", which the
load test can only show as a total. Last, the service and plain FastAPI side
by side per operation with 50 requests in flight (`in_flight`): steadier than
wrk on a shared machine, for a change too small for the load test to see.
"""

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import asyncpg
import uvloop
from fastapi import Depends, FastAPI, Request, Response
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route

from bench.plain_fastapi import create_app as fastapi_app
from todo.config import Settings
from todo.db import Database
from todo.db.urls import parse_database_url
from todo.http.logs import HANDLER_NAME
from todo.main import create_app

ROUNDS = 7


async def _median_us(call: Callable[[], Awaitable[Any]], requests: int) -> float:
    for _ in range(requests // 5):
        await call()
    rounds = []
    for _ in range(ROUNDS):
        started = time.process_time()
        for _ in range(requests):
            await call()
        rounds.append((time.process_time() - started) / requests * 1e6)
    return statistics.median(rounds)


def _scope(path: str, user_id: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), (b"x-user-id", user_id.encode())],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(_message: dict[str, Any]) -> None:
    return None


def _caller(app: Any, path: str, user_id: str) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        await app(_scope(path, user_id), _receive, _discard)

    return call


async def _user(request: Request) -> str | None:
    return request.headers.get("x-user-id")


async def _other(request: Request) -> int:
    return 1


async def _no_dependencies(task_id: uuid.UUID) -> Response:
    return Response(b"{}", media_type="application/json")


async def _one_dependency(
    task_id: uuid.UUID, user: Annotated[str | None, Depends(_user)]
) -> Response:
    return Response(b"{}", media_type="application/json")


async def _two_dependencies(
    task_id: uuid.UUID,
    user: Annotated[str | None, Depends(_user)],
    other: Annotated[int, Depends(_other)],
) -> Response:
    return Response(b"{}", media_type="application/json")


async def _bare(_request: Request) -> StarletteResponse:
    return StarletteResponse(b"{}", media_type="application/json")


def _frameworks() -> dict[str, Any]:
    """The same empty route on Starlette, and on FastAPI with 0 to 2 dependencies."""
    apps: dict[str, Any] = {"Starlette route": Starlette(routes=[Route("/t/{task_id}", _bare)])}
    routes: tuple[Callable[..., Awaitable[Response]], ...] = (
        _no_dependencies,
        _one_dependency,
        _two_dependencies,
    )
    for count, route in enumerate(routes):
        app = FastAPI()
        app.add_api_route("/t/{task_id}", route, methods=["GET"])
        apps[f"FastAPI route, {count} dependencies"] = app
    return apps


_SELECT_ONE = text("SELECT 1")


async def measure(database_url: str, requests: int) -> list[tuple[str, float]]:
    results: list[tuple[str, float]] = []
    task_path = f"/t/{uuid.uuid4()}"
    for label, app in _frameworks().items():
        results.append((label, await _median_us(_caller(app, task_path, "u"), requests)))

    connect_kwargs = parse_database_url(database_url).asyncpg_connect_kwargs()
    connection = await asyncpg.connect(**connect_kwargs)
    try:
        # In a transaction, which keeps PgBouncer's server connection between prepare and execute.
        async with connection.transaction():
            row = await connection.fetchrow("SELECT id, user_id FROM tasks LIMIT 1")
    finally:
        await connection.close()
    assert row is not None, "the database needs a task (make bench seeds one)"
    path, user_id = f"/api/tasks/{row['id']}", str(row["user_id"])

    settings = Settings(database_url=database_url)
    database = Database(database_url, settings)
    pool = await asyncpg.create_pool(**connect_kwargs, min_size=1, max_size=1, reset=_no_reset)
    try:

        async def service_statement() -> None:
            await database.fetch(_SELECT_ONE)

        async def asyncpg_statement() -> None:
            async with pool.acquire() as connection:
                await connection.fetch("SELECT 1")

        results.append(
            (
                "SELECT 1 through the service's runner (pool, turn, statement)",
                await _median_us(service_statement, requests),
            )
        )
        results.append(
            (
                "SELECT 1 on asyncpg's pool (no reset)",
                await _median_us(asyncpg_statement, requests),
            )
        )
    finally:
        await pool.close()
        await database.dispose()

    for label, dropped in (
        ("the app, GET one task", ()),
        ("the app without its edge layer (id, CORS, body limit, log line)", ("EdgeMiddleware",)),
    ):
        app = create_app(settings)
        _quiet()
        app.user_middleware = [m for m in app.user_middleware if m.cls.__name__ not in dropped]  # type: ignore[attr-defined]
        results.append((label, await _median_us(_caller(app, path, user_id), requests)))
        await app.state.database.dispose()
    return results


async def _no_reset(_connection: asyncpg.Connection) -> None:
    return None


IN_FLIGHT = 50


async def in_flight(database_url: str, requests: int) -> list[tuple[str, float]]:
    """The service and plain FastAPI side by side, per operation, IN_FLIGHT requests at once.

    As under load, requests wait for the pool's connections and the apps' own
    lifespans run (the service's change-notice listener among them); no sockets,
    so what differs is the apps' own work. Rounds interleave the two apps.
    """
    settings = Settings(database_url=database_url)
    apps: dict[str, Any] = {
        "service": create_app(settings),
        "plain FastAPI": fastapi_app(database_url, settings),
    }
    _quiet()
    connection = await asyncpg.connect(**parse_database_url(database_url).asyncpg_connect_kwargs())
    try:
        rows = await connection.fetch(
            "SELECT id, user_id FROM tasks WHERE deleted_at IS NULL ORDER BY random() LIMIT 500"
        )
    finally:
        await connection.close()
    tasks = [(str(row["id"]), str(row["user_id"])) for row in rows]
    body = b'{"title":"Benchmark task","description":"Created in-process."}'

    def request(operation: str, number: int) -> tuple[str, str, str, bytes]:
        task_id, user_id = tasks[number % len(tasks)]
        if operation == "create":
            return "POST", "/api/tasks", user_id, body
        if operation == "toggle":
            return "PATCH", f"/api/tasks/{task_id}/complete", user_id, b""
        return "GET", f"/api/tasks/{task_id}", user_id, b""

    results: list[tuple[str, float]] = []
    async with contextlib.AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        for operation in ("get", "create", "toggle"):
            rounds: dict[str, list[float]] = {label: [] for label in apps}
            for _ in range(ROUNDS):
                for label, app in apps.items():

                    async def client(
                        first: int, app: Any = app, operation: str = operation
                    ) -> None:
                        for number in range(first, first + requests // IN_FLIGHT):
                            status = await _call(app, *request(operation, number))
                            assert status in {200, 201}, f"{operation}: {status}"

                    started = time.process_time()
                    clients = (client(n * requests // IN_FLIGHT) for n in range(IN_FLIGHT))
                    await asyncio.gather(*clients)
                    rounds[label].append((time.process_time() - started) / requests * 1e6)
            for label, values in rounds.items():
                results.append(
                    (f"{operation}, {IN_FLIGHT} in flight: {label}", statistics.median(values))
                )
    return results


async def _call(app: Any, method: str, path: str, user_id: str, body: bytes) -> int:
    headers = [(b"host", b"localhost"), (b"x-user-id", user_id.encode())]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {**_scope(path, user_id), "method": method, "headers": headers}
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def _quiet() -> None:
    """Keep the access log's handler, as in production, but write it nowhere."""
    for handler in logging.getLogger().handlers:
        if handler.get_name() == HANDLER_NAME and isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115  (lives as long as the run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="a seeded benchmark database")
    parser.add_argument("--requests", type=int, default=2000, help="per round")
    args = parser.parse_args()
    for label, microseconds in asyncio.run(measure(args.database_url, args.requests)):
        print(f"{microseconds:8.1f} us  {label}")
    for label, microseconds in uvloop.run(in_flight(args.database_url, args.requests)):
        print(f"{microseconds:8.1f} us  {label}")


if __name__ == "__main__":
    main()
