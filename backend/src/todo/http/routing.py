"""A router's routes, added to the app's own router.

Since 0.137, FastAPI's `include_router` keeps the included router as one node
of the app's routes and resolves a request through it at every request: it
matches the request against the router, then again against each route inside
it. Measured in-process on the service's GET (50 requests in flight, the bench
data), that costs about 20 µs of the request's 155. `add_routes` adds each
route to the app's router itself instead, which is what `include_router` did
before 0.137: the routes, their dependencies and the OpenAPI document are the
same, and a request is matched once.
"""

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, params
from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute, APIRouter


def add_routes(
    app: FastAPI, router: APIRouter, *, dependencies: Sequence[params.Depends] = ()
) -> None:
    """Add `router`'s routes (each already holding the router's prefix, tags, responses
    and dependencies) to `app`, each with `dependencies` first, as `include_router` would.
    """
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"add_routes takes FastAPI routes only, not {route!r}")
        app.router.add_api_route(
            route.path,
            route.endpoint,
            response_model=route.response_model,
            status_code=route.status_code,
            tags=list(route.tags),
            dependencies=[*dependencies, *route.dependencies],
            summary=route.summary,
            description=route.description,
            response_description=route.response_description,
            responses=route.responses,
            deprecated=route.deprecated,
            methods=route.methods,
            operation_id=route.operation_id,
            response_model_include=route.response_model_include,
            response_model_exclude=route.response_model_exclude,
            response_model_by_alias=route.response_model_by_alias,
            response_model_exclude_unset=route.response_model_exclude_unset,
            response_model_exclude_defaults=route.response_model_exclude_defaults,
            response_model_exclude_none=route.response_model_exclude_none,
            include_in_schema=route.include_in_schema,
            response_class=_given(route.response_class, router.default_response_class),
            name=route.name,
            route_class_override=type(route),
            callbacks=route.callbacks,
            openapi_extra=route.openapi_extra,
            generate_unique_id_function=_given(
                route.generate_unique_id_function, router.generate_unique_id_function
            ),
            strict_content_type=_given(route.strict_content_type, router.strict_content_type),
            max_body_size=route.max_body_size,
        )


def _given(value: Any, router_value: Any) -> Any:
    """The route's own setting, else the router's; a default of both is left for the app's."""
    if not isinstance(value, DefaultPlaceholder):
        return value
    return router_value
