"""Where the task routes' operations run: straight SQL on PostgreSQL, a session on SQLite.

`TaskStore` is what the routes need; `todo.tasks.direct` answers it on
PostgreSQL with one statement per operation, `SessionTaskStore` everywhere
else through `todo.tasks.service`. Either way the user's rows are only ever
reached through their owner, and failures become the same problems.
"""

from collections.abc import Collection, Sequence
from typing import Annotated, Protocol
from uuid import UUID

from fastapi import Depends, Request

from todo.db import database_of, request_session
from todo.tasks import service
from todo.tasks.cursor import Cursor
from todo.tasks.direct import DirectTaskStore
from todo.tasks.models import TaskStatus
from todo.tasks.schemas import TaskCreate, TaskUpdate
from todo.tasks.service import TaskRecord


class TaskStore(Protocol):
    async def list_tasks(
        self, user_id: UUID, *, status: TaskStatus | None, limit: int, after: Cursor | None
    ) -> Sequence[TaskRecord]: ...

    async def get_task(self, user_id: UUID, task_id: UUID) -> TaskRecord: ...

    async def create_task(self, user_id: UUID, data: TaskCreate) -> TaskRecord: ...

    async def update_task(
        self,
        user_id: UUID,
        task_id: UUID,
        data: TaskUpdate,
        *,
        expected_versions: Collection[int] | None,
    ) -> TaskRecord: ...

    async def toggle_task(
        self, user_id: UUID, task_id: UUID, *, expected_versions: Collection[int] | None
    ) -> TaskRecord: ...

    async def delete_task(
        self, user_id: UUID, task_id: UUID, *, expected_versions: Collection[int] | None
    ) -> None: ...


class SessionTaskStore:
    """Each operation in a session of its own, through `todo.tasks.service`."""

    def __init__(self, request: Request) -> None:
        self._request = request

    async def list_tasks(
        self, user_id: UUID, *, status: TaskStatus | None, limit: int, after: Cursor | None
    ) -> Sequence[TaskRecord]:
        async with request_session(self._request) as session:
            return await service.list_tasks(
                session, user_id, status=status, limit=limit, after=after
            )

    async def get_task(self, user_id: UUID, task_id: UUID) -> TaskRecord:
        async with request_session(self._request) as session:
            return await service.get_task(session, user_id, task_id)

    async def create_task(self, user_id: UUID, data: TaskCreate) -> TaskRecord:
        async with request_session(self._request) as session:
            return await service.create_task(session, user_id, data)

    async def update_task(
        self,
        user_id: UUID,
        task_id: UUID,
        data: TaskUpdate,
        *,
        expected_versions: Collection[int] | None,
    ) -> TaskRecord:
        async with request_session(self._request) as session:
            return await service.update_task(
                session, user_id, task_id, data, expected_versions=expected_versions
            )

    async def toggle_task(
        self, user_id: UUID, task_id: UUID, *, expected_versions: Collection[int] | None
    ) -> TaskRecord:
        async with request_session(self._request) as session:
            return await service.toggle_task(
                session, user_id, task_id, expected_versions=expected_versions
            )

    async def delete_task(
        self, user_id: UUID, task_id: UUID, *, expected_versions: Collection[int] | None
    ) -> None:
        async with request_session(self._request) as session:
            await service.delete_task(
                session, user_id, task_id, expected_versions=expected_versions
            )


async def get_task_store(request: Request) -> TaskStore:
    direct = database_of(request).direct
    if direct is not None:
        return DirectTaskStore(direct)
    return SessionTaskStore(request)


TaskStoreDep = Annotated[TaskStore, Depends(get_task_store)]
