"""Every error the API returns, rendered as RFC 9457 problem+json."""

import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, Match

from todo.errors import InvalidFieldError, TodoError
from todo.http.logs import current_request_id
from todo.http.openapi import no_default

PROBLEM_MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_HEADER = "Retry-After"
VALIDATION_PROBLEM_TYPE = "urn:todo:problem:validation"
MALFORMED_BODY_PROBLEM_TYPE = "urn:todo:problem:malformed-body"

logger = logging.getLogger(__name__)

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class FieldProblem(BaseModel):
    loc: list[str | int] = Field(description="Where: the request part, then the field path.")
    pointer: str | SkipJsonSchema[None] = Field(
        default=None,
        description="JSON Pointer to the field, for body fields; absent for query, path and "
        "header fields.",
        json_schema_extra=no_default,
    )
    detail: str = Field(description="Why the value was refused.")
    type: str = Field(description="A stable code for the kind of error.")


# For the OpenAPI document only: `problem_response` writes the bodies, with every
# required member.
class Problem(BaseModel):
    """An RFC 9457 problem details object: every member but `errors` is always sent."""

    type: str = Field(description="`about:blank`, or a `urn:todo:problem:` code.")
    title: str
    status: int
    detail: str
    instance: str = Field(description="The request's path.")
    errors: list[FieldProblem] | SkipJsonSchema[None] = Field(
        default=None,
        description="On a validation problem only (422): one entry per invalid field.",
        json_schema_extra=no_default,
    )
    request_id: str = Field(
        description="The request's `X-Request-ID`, to quote when reporting a problem."
    )


def _clean(text: str) -> str:
    # A lone surrogate from the request must not make the error itself unencodable.
    return _LONE_SURROGATE.sub("\ufffd", text)


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    problem_type: str = "about:blank",
    instance: str | None = None,
    errors: Sequence[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": problem_type,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": _clean(detail),
    }
    if instance is not None:
        body["instance"] = _clean(instance)
    if errors is not None:
        body["errors"] = [error.model_dump(exclude_none=True) for error in errors]
    request_id = current_request_id.get()
    if request_id is not None:
        body["request_id"] = request_id
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(content, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def field_problem(loc: Iterable[str | int], message: str, error_type: str) -> FieldProblem:
    where = [_clean(part) if isinstance(part, str) else part for part in loc]
    pointer = None
    if where and where[0] == "body":
        pointer = "#" + "".join(
            "/" + str(part).replace("~", "~0").replace("/", "~1") for part in where[1:]
        )
    # pydantic prefixes messages raised by our validators with "Value error, ".
    message = message.removeprefix("Value error, ")
    return FieldProblem(loc=where, pointer=pointer, detail=_clean(message), type=error_type)


def _summarise(errors: Sequence[FieldProblem]) -> str:
    parts = [f"{'.'.join(map(str, e.loc))}: {e.detail}" for e in errors[:3]]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more


def validation_problem(request: Request, errors: Sequence[FieldProblem]) -> Response:
    return problem_response(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        _summarise(errors),
        title="Request validation failed",
        problem_type=VALIDATION_PROBLEM_TYPE,
        instance=request.url.path,
        errors=errors,
    )


def todo_error_response(request: Request, exc: TodoError) -> Response:
    if isinstance(exc, InvalidFieldError):
        return validation_problem(request, [field_problem(exc.loc, exc.detail, exc.error_type)])
    return problem_response(
        exc.status_code,
        exc.detail,
        title=exc.title,
        problem_type=exc.problem_type,
        instance=request.url.path,
        headers=exc.headers,
    )


async def handle_todo_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TodoError)
    return todo_error_response(request, exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    status = exc.status_code
    if status == HTTPStatus.NOT_FOUND and exc.detail == HTTPStatus.NOT_FOUND.phrase:
        detail = f"No resource at {request.url.path}."
    elif status == HTTPStatus.METHOD_NOT_ALLOWED:
        # Starlette names only the first route that matched the path.
        headers["Allow"] = ", ".join(_allowed_methods(request))
        detail = f"{request.method} is not allowed here; use {headers['Allow']}."
    elif status == HTTPStatus.BAD_REQUEST and exc.detail == "There was an error parsing the body":
        # json.loads raised something other than a decode error: RecursionError
        # on deeply nested input is the one seen in practice.
        return problem_response(
            status,
            "The request body could not be parsed: it is malformed or nested too deeply.",
            title="Malformed request body",
            problem_type=MALFORMED_BODY_PROBLEM_TYPE,
            instance=request.url.path,
        )
    else:
        detail = str(exc.detail)
    if status < 200 or status in (204, 304):
        return Response(status_code=status, headers=headers)
    return problem_response(status, detail, instance=request.url.path, headers=headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> list[str]:
    routes: list[BaseRoute] = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]


def _is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


# Raises the TodoError that refuses the request's credentials, if any.
CallerCheck = Callable[[Request], Awaitable[None]]


async def handle_validation_error(
    request: Request, exc: Exception, *, check_caller: CallerCheck | None = None
) -> Response:
    assert isinstance(exc, RequestValidationError)
    # Who is calling is checked before anything else about the request, even
    # though FastAPI parses the body before it resolves dependencies.
    if check_caller is not None:
        try:
            await check_caller(request)
        except TodoError as identity_error:
            return todo_error_response(request, identity_error)

    raw_errors = exc.errors()
    if (
        exc.body is not None
        and isinstance(exc.body, bytes)
        and not _is_json(request.headers.get("content-type"))
    ):
        return problem_response(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "Send the request body as JSON, with 'Content-Type: application/json'.",
            instance=request.url.path,
        )
    if any(error.get("type") == "json_invalid" for error in raw_errors):
        return problem_response(
            HTTPStatus.BAD_REQUEST,
            "The request body is not valid JSON.",
            title="Malformed request body",
            problem_type=MALFORMED_BODY_PROBLEM_TYPE,
            instance=request.url.path,
        )
    # Only location, message and type: `ctx` holds exception objects and
    # `input` can echo megabytes of the request back.
    errors = [
        field_problem(error.get("loc", ()), str(error.get("msg", "")), str(error.get("type", "")))
        for error in raw_errors
    ]
    return validation_problem(request, errors)


def unexpected_error_response(path: str) -> Response:
    return problem_response(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "The server failed to handle this request; it has been logged.",
        instance=path,
    )


def install_problem_handlers(app: FastAPI, *, check_caller: CallerCheck | None = None) -> None:
    """`check_caller`: refuses bad credentials before a request's other errors are told."""
    app.add_exception_handler(TodoError, handle_todo_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
    app.add_exception_handler(
        RequestValidationError, partial(handle_validation_error, check_caller=check_caller)
    )


def problem_docs(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the problems an operation can return."""
    docs: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        docs[status] = {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return docs


def retry_after_doc(description: str, *, required: bool) -> dict[str, Any]:
    """An OpenAPI `headers` entry for Retry-After, in seconds."""
    return {
        RETRY_AFTER_HEADER: {
            "description": description,
            "required": required,
            "schema": {"type": "integer", "minimum": 1},
        }
    }


def document_retry_after(schema: dict[str, Any]) -> None:
    """Declare Retry-After on every 503: required where no write can leave its outcome unknown.

    Every 503 carries it (database-unavailable, too-many-streams, keys-unavailable) but
    write-outcome-unknown, which only a write can answer: a GET's user upsert may run twice,
    so it is never in doubt.
    """
    for path_item in schema.get("paths", {}).values():
        for method, operation in path_item.items():
            unavailable = operation.get("responses", {}).get(str(HTTPStatus.SERVICE_UNAVAILABLE))
            if unavailable is None:
                continue
            doc = retry_after_doc(
                "Seconds to wait before trying again; on every 503 but "
                "`urn:todo:problem:write-outcome-unknown` (read the task back before sending "
                "that write again).",
                required=method == "get",
            )
            unavailable.setdefault("headers", {}).update(doc)
