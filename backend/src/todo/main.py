import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from typing import Any

from fastapi import Depends, FastAPI

from todo import health
from todo.auth.base import Authenticator
from todo.auth.current_user import (
    build_authenticator,
    check_caller,
    describe_callers,
    document_callers,
    warn_if_exposed,
)
from todo.config import Settings, get_settings
from todo.db import Database
from todo.db.purge import PURGE_INTERVAL_SECONDS, PurgeJob, purge_periodically
from todo.http.docs import install_docs
from todo.http.logs import configure_logging, stop_buffering_logs
from todo.http.metrics import Metrics, install_metrics
from todo.http.middleware import EdgeMiddleware
from todo.http.problems import (
    FieldProblem,
    Problem,
    document_retry_after,
    install_problem_handlers,
)
from todo.http.request_context import REQUEST_ID_HEADER, document_request_id
from todo.http.routing import add_routes
from todo.idempotency.http import IDEMPOTENCY_KEY_HEADER, REPLAYED_HEADER
from todo.idempotency.service import purge_expired
from todo.ratelimit.docs import RATE_LIMIT_HEADER_DOCS
from todo.ratelimit.limiters import Limiter, create_limiter
from todo.ratelimit.middleware import enforce_rate_limit
from todo.sync import router as sync_router
from todo.sync.router import LAST_EVENT_ID_HEADER
from todo.sync.service import purge_tombstones
from todo.sync.stream import Streams
from todo.tasks import router as tasks_router
from todo.users.service import Users

# An app that only documents itself opens no database.
_NO_DATABASE = "sqlite:///:memory:"


def create_app(
    settings: Settings | None = None,
    database: Database | None = None,
    authenticator: Authenticator | None = None,
    *,
    documented_modes: Sequence[Authenticator] = (),
) -> FastAPI:
    """`documented_modes`: whose credentials the OpenAPI document shows, when not only the
    app's own mode (the committed contract shows every mode's)."""
    settings = settings or get_settings()
    configure_logging(settings)
    database = database or Database(settings.database_url, settings)
    authenticator = authenticator or build_authenticator(settings)
    documented_modes = documented_modes or [authenticator]
    metrics: Metrics | None = None
    limiter = (
        create_limiter(settings.rate_limit, settings.redis_url, settings.redis_key_prefix)
        if settings.rate_limit is not None
        else None
    )

    streams = Streams(database, settings.sync_max_streams)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warn_if_exposed(settings)
        purger = _start_background(settings, database, streams)
        # What exists now (modules, models, routes: 120,000 objects) lives as long
        # as the process. Frozen, the collector's full passes no longer walk it:
        # each took about 70 ms, stalling every request in flight.
        gc.collect()
        gc.freeze()
        yield
        # The lines held now, and every later one at once: uvicorn ends a worker
        # by re-raising SIGTERM, which runs no exit handler to flush them.
        stop_buffering_logs()
        gc.unfreeze()
        await _stop_background(purger, streams)
        if limiter is not None:
            await limiter.close()
        # Uvicorn runs this only once in-flight requests have finished (or its
        # graceful-shutdown timeout has passed), so no accepted write is cut off.
        await database.dispose()
        if metrics is not None:
            metrics.process_exited()

    app = FastAPI(
        title="Todo API",
        version="1.0.0",
        summary="Each user's tasks, stored in PostgreSQL or SQLite.",
        description=(
            f"{describe_callers(documented_modes)} "
            "Errors are RFC 9457 `application/problem+json` documents."
        ),
        lifespan=lifespan,
        # Served by todo.http.docs from the app's own files, not FastAPI's CDN.
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=lambda route: route.name,
        # An API answers its own URLs; a redirect would have an empty, non-JSON body.
        redirect_slashes=False,
        # The service logs and counts requests itself (todo.http.request_context).
        # FastAPI's native OpenTelemetry would otherwise look up the global
        # providers, environment variables included, on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.database = database
    app.state.authenticator = authenticator
    app.state.limiter = limiter
    app.state.users = Users(database)
    app.state.streams = streams

    install_problem_handlers(app, check_caller=check_caller)
    _add_routes(app, limiter)
    if settings.metrics_enabled:
        metrics = install_metrics(app, settings, database)
        metrics.sync_figures = streams.figures
        streams.on_activity = metrics.refresh

    _add_middleware(app, settings, authenticator, metrics=metrics)

    app.openapi = partial(_openapi, app, documented_modes)  # type: ignore[method-assign]
    return app


def openapi_contract() -> dict[str, Any]:
    """The committed contract: the API as a server in either mode serves it.

    Each mode's credentials are an alternative, so that one client generated from
    it serves production (JWT mode: a bearer token) and development (header mode:
    X-User-ID) alike.
    """
    header = Settings(database_url=_NO_DATABASE, auth_mode="header")
    # Never fetched: only how JWT mode documents its callers is read.
    jwt = Settings(
        database_url=_NO_DATABASE, auth_mode="jwt", auth_jwks_url="https://issuer.invalid/jwks"
    )
    modes = [build_authenticator(jwt), build_authenticator(header)]
    return create_app(header, documented_modes=modes).openapi()


def _openapi(app: FastAPI, documented_modes: Sequence[Authenticator]) -> dict[str, Any]:
    """FastAPI's document, with what its routes' signatures cannot say; built once."""
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (Problem, FieldProblem):
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(model_schema.pop("$defs", {}))
            schemas[model.__name__] = model_schema
        document_callers(schema, documented_modes)
        document_request_id(schema)
        document_retry_after(schema)
        _document_rate_limit_headers(schema)
        app.openapi_schema = schema
    return app.openapi_schema


def _start_background(
    settings: Settings, database: Database, streams: Streams
) -> asyncio.Task[None]:
    """The purger (returned, for `_stop_background`), the change notices, the streams' exit."""
    purger = asyncio.create_task(purge_periodically(*_purges(settings, database)))
    database.start_listening()
    streams.close_on_exit_signals()
    return purger


async def _stop_background(purger: asyncio.Task[None], streams: Streams) -> None:
    streams.close()
    purger.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await purger


def _purges(settings: Settings, database: Database) -> tuple[list[PurgeJob], float]:
    """What the purger removes, and how often it runs."""
    retention = timedelta(seconds=settings.sync_retention_seconds)
    jobs: list[PurgeJob] = [
        ("expired idempotency keys", partial(purge_expired, database)),
        ("users' old tombstones", partial(purge_tombstones, database, retention)),
    ]
    # Tombstones go at the latest a quarter of the retention after they expire.
    return jobs, min(PURGE_INTERVAL_SECONDS, settings.sync_retention_seconds / 4)


def _add_routes(app: FastAPI, limiter: Limiter | None) -> None:
    rate_limited = [Depends(enforce_rate_limit)] if limiter is not None else []
    # The routes most requests take come first: the router tries each in turn. No task
    # id is `changes` or `stream`, so the sync routes may come after the tasks'.
    add_routes(app, tasks_router.router, dependencies=rate_limited)
    add_routes(app, sync_router.router, dependencies=rate_limited)
    add_routes(app, health.router)
    install_docs(app)


def _add_middleware(
    app: FastAPI,
    settings: Settings,
    authenticator: Authenticator,
    *,
    metrics: Metrics | None,
) -> None:
    # One layer (todo.http.middleware): the request id wraps CORS, so that every response,
    # a preflight's included, carries its id and is logged and counted; CORS wraps the
    # body limit and the unexpected error's 500, so that even those carry its headers.
    cors = {
        "allow_origins": settings.cors_origins,
        "allow_methods": ["GET", "POST", "PUT", "PATCH", "DELETE"],
        "allow_headers": [
            authenticator.credential_header,
            REQUEST_ID_HEADER,
            "Content-Type",
            "If-Match",
            "If-None-Match",
            IDEMPOTENCY_KEY_HEADER,
            # Sent by EventSource when it reconnects to the change stream.
            LAST_EVENT_ID_HEADER,
        ],
        "expose_headers": [
            "Location",
            "Link",
            "ETag",
            "Retry-After",
            "RateLimit",
            "RateLimit-Policy",
            REPLAYED_HEADER,
            REQUEST_ID_HEADER,
        ],
        "max_age": 600,
    }
    app.add_middleware(
        EdgeMiddleware, max_body_bytes=settings.max_body_bytes, cors=cors, metrics=metrics
    )


def _document_rate_limit_headers(schema: dict[str, Any]) -> None:
    """Every API response may carry the rate-limit headers (when RATE_LIMIT is set)."""
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith(tasks_router.router.prefix):
            continue
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                response.setdefault("headers", {}).update(RATE_LIMIT_HEADER_DOCS)
