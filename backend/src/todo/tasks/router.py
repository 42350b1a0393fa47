from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status

from todo.db import SessionDep
from todo.identity import CurrentUser
from todo.problems import problem_docs
from todo.tasks import service
from todo.tasks.cursor import CURSOR_PATTERN, Cursor, decode_cursor, encode_cursor
from todo.tasks.models import Task, TaskStatus
from todo.tasks.schemas import TaskCreate, TaskRead, TaskUpdate

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

router = APIRouter(
    prefix="/api/tasks",
    tags=["tasks"],
    responses=problem_docs(400, 422, 500, 503),
)


@router.get(
    "",
    response_model=list[TaskRead],
    summary="List the caller's tasks, newest first",
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
async def list_tasks(  # noqa: PLR0917  (FastAPI injects each by name)
    request: Request,
    response: Response,
    user_id: CurrentUser,
    session: SessionDep,
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
) -> list[Task]:
    after = decode_cursor(cursor) if cursor is not None else None
    # One extra row tells whether another page exists, without a COUNT.
    tasks = list(
        await service.list_tasks(
            session, user_id, status=status_filter, limit=limit + 1, after=after
        )
    )
    if len(tasks) > limit:
        tasks = tasks[:limit]
        last = tasks[-1]
        next_url = request.url.include_query_params(
            cursor=encode_cursor(Cursor(last.created_at, last.id))
        )
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return tasks


@router.post(
    "",
    response_model=TaskRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a task",
    response_description="The new task.",
    responses={
        201: {
            "headers": {
                "Location": {
                    "description": "The new task's URL.",
                    "required": True,
                    "schema": {"type": "string"},
                }
            }
        },
        **problem_docs(413, 415),
    },
)
async def create_task(
    body: TaskCreate, response: Response, user_id: CurrentUser, session: SessionDep
) -> Task:
    task = await service.create_task(session, user_id, body)
    response.headers["Location"] = f"{router.prefix}/{task.id}"
    return task


@router.get(
    "/{task_id}",
    response_model=TaskRead,
    summary="Get one task",
    responses=problem_docs(404),
)
async def get_task(task_id: UUID, user_id: CurrentUser, session: SessionDep) -> Task:
    return await service.get_task(session, user_id, task_id)


@router.put(
    "/{task_id}",
    response_model=TaskRead,
    summary="Change some of a task's fields",
    description="Fields left out keep their value; `description: null` clears it.",
    responses=problem_docs(404, 413, 415),
)
async def update_task(
    task_id: UUID, body: TaskUpdate, user_id: CurrentUser, session: SessionDep
) -> Task:
    return await service.update_task(session, user_id, task_id, body)


@router.patch(
    "/{task_id}/complete",
    response_model=TaskRead,
    summary="Toggle a task between pending and completed",
    responses=problem_docs(404),
)
async def toggle_task(task_id: UUID, user_id: CurrentUser, session: SessionDep) -> Task:
    return await service.toggle_task(session, user_id, task_id)


@router.delete(
    "/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a task",
    responses=problem_docs(404),
    response_class=Response,
)
async def delete_task(task_id: UUID, user_id: CurrentUser, session: SessionDep) -> None:
    await service.delete_task(session, user_id, task_id)
