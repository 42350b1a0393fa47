"""The task routes: parse the request, run one service operation, answer its outcome."""

import hashlib
from datetime import datetime
from functools import partial
from http import HTTPStatus
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel
from starlette.convertors import Convertor, register_url_convertor

from todo.auth.current_user import CurrentOwner
from todo.http.conditional import (
    ETAG_HEADER_DOC,
    IF_MATCH_PARAMETER,
    IF_NONE_MATCH_PARAMETER,
    expected_versions,
    none_match,
)
from todo.http.etags import format_etag
from todo.http.problems import problem_docs
from todo.idempotency.http import IDEMPOTENCY_KEY_PARAMETER, REPLAYED_HEADER_DOC, respond_once
from todo.ratelimit.docs import RATE_LIMITED_DOCS
from todo.tasks import service
from todo.tasks.cursor import CURSOR_PATTERN, Cursor, Sort, decode_cursor, encode_cursor
from todo.tasks.docs import (
    CONDITIONAL_WRITE_DOCS,
    IDEMPOTENT_WRITE_DOCS,
    LOCATION_HEADER_DOC,
    NOT_MODIFIED_DOCS,
    with_headers,
)
from todo.tasks.encode import task_json, tasks_json
from todo.tasks.models import TaskRow, TaskStatus
from todo.tasks.schemas import (
    DESCRIPTION_PATTERN,
    BulkDeleted,
    BulkStatus,
    BulkUpdated,
    TaskCreate,
    TaskMove,
    TaskRead,
    TaskSummary,
    TaskUpdate,
)

DEFAULT_PAGE_SIZE = 100
SEARCH_MAX_LENGTH = 200
MAX_PAGE_SIZE = 1000


class _TaskIdConvertor(Convertor[str]):
    """A path segment that may name a task: any but the collection's own sub-resources.

    So that /api/tasks/summary (or changes) with another method than GET is a 405, not a
    task id that fails validation; any other segment still reaches the route
    and its UUID validation (422), as before.
    """

    regex = r"(?!(?:changes|stream|summary)(?:/|$))[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("task_id", _TaskIdConvertor())
TASK_ID = "{task_id:task_id}"

router = APIRouter(
    prefix="/api/tasks",
    tags=["tasks"],
    responses={**problem_docs(400, 422, 500, 503), **RATE_LIMITED_DOCS},
)


def _task_response(task: TaskRow) -> Response:
    return Response(
        task_json(task), media_type="application/json", headers={"ETag": format_etag(task.version)}
    )


def _created(task: TaskRow) -> Response:
    return Response(
        task_json(task),
        status_code=HTTPStatus.CREATED,
        media_type="application/json",
        headers={"ETag": format_etag(task.version), "Location": f"{router.prefix}/{task.id}"},
    )


@router.get(
    "",
    response_model=list[TaskRead],
    summary="List the caller's tasks, newest first (or in another order)",
    response_description="A page of tasks.",
    responses={
        200: {
            "headers": {
                "Link": {
                    "description": "When more tasks remain, the next page's URL, "
                    '`<...>; rel="next"`.',
                    "schema": {"type": "string"},
                }
            }
        }
    },
)
async def list_tasks(
    request: Request,
    owner: CurrentOwner,
    *,
    status_filter: Annotated[
        TaskStatus | None, Query(alias="status", description="Only tasks with this status.")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size.")
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None,
        Query(
            description="Where the page starts; copy it from the previous page's Link header.",
            json_schema_extra={"pattern": CURSOR_PATTERN},
        ),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=SEARCH_MAX_LENGTH,
            # No NUL, which no stored text can hold (as in a description).
            pattern=DESCRIPTION_PATTERN,
            description=(
                "Only tasks whose title or description contains this, ignoring case "
                "(Unicode case folding: `STRASSE` finds `Straße`); `%`, `_` and `\\` are "
                "plain characters."
            ),
        ),
    ] = None,
    sort: Annotated[
        Sort,
        Query(
            description=(
                "The order: newest first (the default), oldest first, most recently "
                "updated first, or the user's own (`position`). Each has its own cursors."
            )
        ),
    ] = Sort.NEWEST,
) -> Response:
    after = decode_cursor(cursor, sort) if cursor is not None else None
    # One extra row tells whether another page exists, without a COUNT.
    tasks = await service.list_tasks(
        owner.database,
        owner.user_id,
        status=status_filter,
        limit=limit + 1,
        after=after,
        search=q,
        sort=sort,
    )
    headers = {}
    if len(tasks) > limit:
        tasks = tasks[:limit]
        last = tasks[-1]
        next_url = request.url.include_query_params(
            cursor=encode_cursor(Cursor(_sort_key(last, sort), last.id), sort)
        )
        headers["Link"] = f'<{next_url}>; rel="next"'
    return Response(tasks_json(tasks), media_type="application/json", headers=headers)


@router.post(
    "",
    response_model=TaskRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a task",
    openapi_extra={"parameters": [IDEMPOTENCY_KEY_PARAMETER]},
    response_description="The new task; `Location` is its URL.",
    responses={
        **with_headers(201, LOCATION_HEADER_DOC, ETAG_HEADER_DOC, REPLAYED_HEADER_DOC),
        **IDEMPOTENT_WRITE_DOCS,
        **problem_docs(413, 415),
    },
)
async def create_task(body: TaskCreate, request: Request, owner: CurrentOwner) -> Response:
    write = partial(service.create_task, user_id=owner.user_id, data=body)
    return await respond_once(request, owner, write, _created, payload=body)


def _sort_key(task: TaskRow, sort: Sort) -> datetime | str:
    match sort:
        case Sort.NEWEST | Sort.OLDEST:
            return task.created_at
        case Sort.RECENTLY_UPDATED:
            return task.updated_at
        case Sort.POSITION:
            return task.position


@router.patch(
    "",
    response_model=BulkUpdated,
    summary="Set the status of all the caller's tasks (or those with one status)",
    description=(
        "Toggle all, in one statement: every matching task that is not at `status` gets it, "
        "a new version and `updated_at`. One change in the sync feed."
    ),
    responses=problem_docs(413, 415),
)
async def set_all_statuses(
    body: BulkStatus,
    owner: CurrentOwner,
    status_filter: Annotated[
        TaskStatus | None, Query(alias="status", description="Only tasks with this status.")
    ] = None,
) -> Response:
    updated = await service.set_status(
        owner.database, owner.user_id, body.status, only=status_filter
    )
    return _json(BulkUpdated(updated=updated))


@router.delete(
    "",
    response_model=BulkDeleted,
    summary="Delete all the caller's tasks with one status",
    description="Clear completed (or pending), in one statement. One change in the sync feed.",
)
async def delete_all(
    owner: CurrentOwner,
    status_filter: Annotated[
        TaskStatus, Query(alias="status", description="Which tasks to delete (required).")
    ],
) -> Response:
    deleted = await service.delete_all(owner.database, owner.user_id, status_filter)
    return _json(BulkDeleted(deleted=deleted))


@router.get(
    "/summary",
    response_model=TaskSummary,
    summary="Count the caller's tasks",
    openapi_extra={"parameters": [IF_NONE_MATCH_PARAMETER]},
    description=(
        "The `ETag` changes whenever a count does; with `If-None-Match` an unchanged "
        "summary is a 304, so polling it is cheap."
    ),
    responses={**with_headers(200, ETAG_HEADER_DOC), **NOT_MODIFIED_DOCS},
)
async def summarise(request: Request, owner: CurrentOwner) -> Response:
    total, pending, completed = await service.summary(owner.database, owner.user_id)
    counts_tag = _counts_tag(total, pending)
    etag = format_etag(counts_tag)
    tags = none_match(request)
    if tags is not None and tags.matches(counts_tag):
        return Response(status_code=HTTPStatus.NOT_MODIFIED, headers={"ETag": etag})
    summary_json = TaskSummary(total=total, pending=pending, completed=completed)
    return _json(summary_json, headers={"ETag": etag})


def _counts_tag(total: int, pending: int) -> int:
    """A number that names the counts (ETags are numbers here, see todo.http.etags)."""
    digest = hashlib.sha256(f"{total}:{pending}".encode()).digest()
    return int.from_bytes(digest[:7], "big")


def _json(model: BaseModel, headers: dict[str, str] | None = None) -> Response:
    return Response(model.model_dump_json(), media_type="application/json", headers=headers)


@router.get(
    f"/{TASK_ID}",
    response_model=TaskRead,
    summary="Get one task",
    openapi_extra={"parameters": [IF_NONE_MATCH_PARAMETER]},
    responses={
        **with_headers(200, ETAG_HEADER_DOC),
        **NOT_MODIFIED_DOCS,
        **problem_docs(404),
    },
)
async def get_task(task_id: UUID, request: Request, owner: CurrentOwner) -> Response:
    task = await service.get_task(owner.database, owner.user_id, task_id)
    tags = none_match(request)
    if tags is not None and tags.matches(task.version):
        return Response(
            status_code=HTTPStatus.NOT_MODIFIED, headers={"ETag": format_etag(task.version)}
        )
    return _task_response(task)


@router.put(
    f"/{TASK_ID}",
    response_model=TaskRead,
    summary="Change some of a task's fields",
    openapi_extra={"parameters": [IF_MATCH_PARAMETER]},
    description=(
        "Fields left out keep their value; `description: null` clears it. With `If-Match`, "
        "only if the task is still at that ETag."
    ),
    responses={
        **with_headers(200, ETAG_HEADER_DOC),
        **CONDITIONAL_WRITE_DOCS,
        **problem_docs(413, 415),
    },
)
async def update_task(
    task_id: UUID, body: TaskUpdate, request: Request, owner: CurrentOwner
) -> Response:
    versions = expected_versions(request)
    task = await service.update_task(
        owner.database, owner.user_id, task_id, body, expected_versions=versions
    )
    return _task_response(task)


@router.patch(
    f"/{TASK_ID}/complete",
    response_model=TaskRead,
    summary="Toggle a task between pending and completed",
    openapi_extra={"parameters": [IF_MATCH_PARAMETER, IDEMPOTENCY_KEY_PARAMETER]},
    description="With `If-Match`, only if the task is still at that ETag.",
    responses={
        **with_headers(200, ETAG_HEADER_DOC, REPLAYED_HEADER_DOC),
        **CONDITIONAL_WRITE_DOCS,
        **IDEMPOTENT_WRITE_DOCS,
    },
)
async def toggle_task(task_id: UUID, request: Request, owner: CurrentOwner) -> Response:
    write = partial(
        service.toggle_task,
        user_id=owner.user_id,
        task_id=task_id,
        expected_versions=expected_versions(request),
    )
    return await respond_once(request, owner, write, _task_response)


@router.post(
    f"/{TASK_ID}/move",
    response_model=TaskRead,
    summary="Move a task in the user's own order",
    openapi_extra={"parameters": [IF_MATCH_PARAMETER]},
    description=(
        'Right after another task (`{"after": "<id>"}`), or first (`{"after": null}`). '
        "A new version and ETag; with `If-Match`, only if the task is still at that ETag. "
        "List with `sort=position` to see the order."
    ),
    responses={
        **with_headers(200, ETAG_HEADER_DOC),
        **CONDITIONAL_WRITE_DOCS,
        **problem_docs(413, 415),
    },
)
async def move_task(
    task_id: UUID, body: TaskMove, request: Request, owner: CurrentOwner
) -> Response:
    task = await service.move_task(
        owner.database,
        owner.user_id,
        task_id,
        body.after,
        expected_versions=expected_versions(request),
    )
    return _task_response(task)


@router.delete(
    f"/{TASK_ID}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a task",
    openapi_extra={"parameters": [IF_MATCH_PARAMETER]},
    description="With `If-Match`, only if the task is still at that ETag.",
    responses=CONDITIONAL_WRITE_DOCS,
    response_class=Response,
)
async def delete_task(task_id: UUID, request: Request, owner: CurrentOwner) -> None:
    versions = expected_versions(request)
    await service.delete_task(owner.database, owner.user_id, task_id, expected_versions=versions)
