"""Conditional request headers (RFC 9110, section 13) as typed dependencies."""

from http import HTTPStatus
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from todo.errors import TodoError
from todo.etags import EntityTags, parse_entity_tags
from todo.identity import CurrentUser

ETAG_HEADER_DOC: dict[str, Any] = {
    "ETag": {
        "description": 'The task\'s version as a strong entity tag, e.g. `"3"`; send it back '
        "in `If-Match` to change the task only if nobody else has, or in `If-None-Match` "
        "to get a 304 while it is unchanged.",
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


def _field_value(request: Request, name: str) -> str:
    # A list may arrive as several field lines; they mean the same as one joined by commas.
    return ", ".join(request.headers.getlist(name))


async def if_match_versions(
    request: Request,
    _caller: CurrentUser,  # resolved first: a request naming no user gets its 400 first
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description=(
                "Change the task only if its ETag is one of these (strong comparison); "
                "`*` matches any existing task. Otherwise: 412 and nothing changes."
            ),
            examples=['"3"'],
        ),
    ] = None,
) -> frozenset[int] | None:
    """The versions the caller accepts; None when any will do."""
    if if_match is None:
        if request.app.state.settings.require_if_match:
            raise PreconditionRequiredError()
        return None
    tags = parse_entity_tags(_field_value(request, "If-Match"), weak=False)
    return None if tags.any else tags.versions


async def if_none_match_tags(
    request: Request,
    if_none_match: Annotated[
        str | None,
        Header(
            alias="If-None-Match",
            description=(
                "Answer 304 without a body if the task's ETag is one of these "
                "(weak comparison); `*` matches any existing task."
            ),
            examples=['"3"'],
        ),
    ] = None,
) -> EntityTags | None:
    if if_none_match is None:
        return None
    return parse_entity_tags(_field_value(request, "If-None-Match"), weak=True)


IfMatchVersions = Annotated[frozenset[int] | None, Depends(if_match_versions)]
IfNoneMatchTags = Annotated[EntityTags | None, Depends(if_none_match_tags)]
