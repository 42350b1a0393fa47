from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from todo import health
from todo.auth.base import Authenticator
from todo.config import Settings, get_settings
from todo.db import Database
from todo.identity import build_authenticator, document_callers, warn_if_exposed
from todo.logs import configure_logging
from todo.metrics import Metrics, install_metrics
from todo.middleware import BodySizeLimitMiddleware, UnexpectedErrorMiddleware
from todo.problems import FieldProblem, Problem, install_problem_handlers
from todo.replay import ReplayReadsMiddleware
from todo.request_context import (
    REQUEST_ID_HEADER,
    RequestContextMiddleware,
    document_request_id,
)
from todo.tasks import router as tasks_router


def create_app(
    settings: Settings | None = None,
    database: Database | None = None,
    authenticator: Authenticator | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)
    database = database or Database(settings.database_url, settings)
    authenticator = authenticator or build_authenticator(settings)
    metrics: Metrics | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warn_if_exposed(settings)
        yield
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
            f"{authenticator.description} Errors are RFC 9457 `application/problem+json` documents."
        ),
        lifespan=lifespan,
        generate_unique_id_function=lambda route: route.name,
        # An API answers its own URLs; a redirect would have an empty, non-JSON body.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.authenticator = authenticator

    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(tasks_router.router)
    if settings.metrics_enabled:
        metrics = install_metrics(app, settings, database)

    # Added innermost first: CORS wraps the app's own middleware, so even a 500
    # carries its headers, and the request context wraps CORS, so that every response, a
    # preflight's included, carries its request id and is logged and counted.
    app.add_middleware(ReplayReadsMiddleware)
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=[authenticator.credential_header, REQUEST_ID_HEADER, "Content-Type"],
        expose_headers=["Location", "Link", REQUEST_ID_HEADER],
        max_age=600,
    )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (Problem, FieldProblem):
                model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(model_schema.pop("$defs", {}))
                schemas[model.__name__] = model_schema
            document_callers(schema, authenticator)
            document_request_id(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
