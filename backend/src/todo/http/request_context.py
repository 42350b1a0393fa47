"""What names a request: its id, its route and its caller.

The edge layer (todo.http.middleware) gives each request its id and logs it by
these. It is plain ASGI: Starlette's BaseHTTPMiddleware costs a task and a stream
per request, and runs the app in another context, so a context variable set
there (todo.http.logs.current_request_id) would not reach the handlers.
"""

import copy
import logging
import re
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.routing import Match
from starlette.types import Scope

from todo.http.openapi import add_operation_field

REQUEST_ID_HEADER = "X-Request-ID"
UNMATCHED_ROUTE = "<unmatched>"
# nginx's code for a client that went away before it was answered.
CLIENT_CLOSED_REQUEST = 499

access_logger = logging.getLogger("todo.access")

# Anything else (too long, spaces, quotes, newlines) could forge log lines or
# bloat every one of them, so it is replaced rather than echoed.
REQUEST_ID_PATTERN = "^[A-Za-z0-9._:-]{1,128}$"
_SANE_REQUEST_ID = re.compile(REQUEST_ID_PATTERN.strip("^$").encode())
REQUEST_ID_HEADER_KEY = REQUEST_ID_HEADER.lower().encode()


def document_request_id(schema: dict[str, Any]) -> None:
    """Declare X-Request-ID on every request and response in an OpenAPI document."""
    parameter = {
        "name": REQUEST_ID_HEADER,
        "in": "header",
        "required": False,
        "description": (
            "Names the request in its log line, its response and any problem body: kept "
            "when it is 1 to 128 of `A-Z a-z 0-9 . _ : -`, else replaced by a new one "
            "(never refused)."
        ),
        "schema": {"type": "string"},
    }
    headers = schema.setdefault("components", {}).setdefault("headers", {})
    headers[REQUEST_ID_HEADER] = {
        "description": (
            "The request's id: the one the client sent in `X-Request-ID` when it is 1 to "
            "128 of `A-Z a-z 0-9 . _ : -`, else a new one. Problem bodies repeat it."
        ),
        "required": True,
        "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
    }
    reference = f"#/components/headers/{REQUEST_ID_HEADER}"
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            parameters = [*operation.get("parameters", []), copy.deepcopy(parameter)]
            add_operation_field(operation, "parameters", parameters)
            for response in operation.get("responses", {}).values():
                response.setdefault("headers", {})[REQUEST_ID_HEADER] = {"$ref": reference}


def incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER_KEY:
            if _SANE_REQUEST_ID.fullmatch(value):
                return bytes(value).decode("ascii")
            return None
    return None


def route_template(scope: Scope) -> str:
    """The path pattern that served the request, e.g. /api/tasks/{task_id}.

    Responses sent before routing (a 413 from the body limit) find theirs here.
    """
    route = scope.get("route")
    if route is None:
        route = _find_route(scope)
    # The template without its convertors (`{task_id}`, not `{task_id:task_id}`).
    path = getattr(route, "path_format", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


def _find_route(scope: Scope) -> object:
    # As the router would: the first full match, else the first partial one.
    partial = None
    routes = getattr(getattr(scope.get("app"), "router", None), "routes", ())
    for context in iter_route_contexts(routes):
        match, _ = context.matches(scope)
        if match is Match.FULL:
            return context
        if match is Match.PARTIAL and partial is None:
            partial = context
    return partial


def caller_id(scope: Scope) -> str | None:
    # The identity dependency leaves the user here once it has checked the header.
    state = scope.get("state")
    user_id = state.get("user_id") if state else None
    return None if user_id is None else str(user_id)
