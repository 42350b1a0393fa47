"""Conditional request headers (RFC 9110, section 13): read, parsed and documented."""

from http import HTTPStatus
from typing import Any

from fastapi import Request

from todo.errors import TodoError
from todo.http.etags import EntityTags, parse_entity_tags

ETAG_HEADER_DOC: dict[str, Any] = {
    "ETag": {
        "description": 'The task\'s version as a strong entity tag, e.g. `"3"`; send it back '
        "in `If-Match` to change the task only if nobody else has, or in `If-None-Match` "
        "to get a 304 while it is unchanged.",
        "required": True,
        "schema": {"type": "string"},
    }
}


class PreconditionRequiredError(TodoError):
    status_code = HTTPStatus.PRECONDITION_REQUIRED
    problem_type = "urn:todo:problem:if-match-required"
    title = "If-Match required"

    def __init__(self) -> None:
        super().__init__(
            "This server accepts changes only with an If-Match header holding the task's "
            "current ETag; GET the task to learn it."
        )


# These headers are read straight from the request, not declared as FastAPI
# parameters: each declared parameter costs every request its validation
# machinery, and most requests carry none of them. The OpenAPI document still
# lists them, through `openapi_extra`.
IF_MATCH_PARAMETER: dict[str, Any] = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": (
        "Change the task only if its ETag is one of these (strong comparison); "
        "`*` matches any existing task. Otherwise: 412 and nothing changes."
    ),
    "schema": {"type": "string"},
    "example": '"3"',
}
IF_NONE_MATCH_PARAMETER: dict[str, Any] = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": (
        "Answer 304 without a body if the task's ETag is one of these (weak comparison); "
        "`*` matches any existing task."
    ),
    "schema": {"type": "string"},
    "example": '"3"',
}


def _field_value(request: Request, name: str) -> str | None:
    # A list may arrive as several field lines; they mean the same as one joined by commas.
    lines = request.headers.getlist(name)
    return ", ".join(lines) if lines else None


def expected_versions(request: Request) -> frozenset[int] | None:
    """The versions If-Match accepts; None when any will do."""
    if_match = _field_value(request, "If-Match")
    if if_match is None:
        if request.app.state.settings.require_if_match:
            raise PreconditionRequiredError()
        return None
    tags = parse_entity_tags(if_match, weak=False)
    return None if tags.any else tags.versions


def none_match(request: Request) -> EntityTags | None:
    """The ETags If-None-Match names, if it is there."""
    if_none_match = _field_value(request, "If-None-Match")
    return None if if_none_match is None else parse_entity_tags(if_none_match, weak=True)
