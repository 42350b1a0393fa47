"""Task rules and queries. Every statement is scoped to its owner here.

The operations answer `TaskRecord`s, the rows the statements return, rather
than ORM objects: the API only reads a task's columns, and making an ORM
instance (SQLAlchemy's identity map and instance state, SQLModel's pydantic
state) per row cost more than the query itself, most of all for a page of 100.
The statements are SQLAlchemy, run on the request's session, so every failure
takes the same path to a 503 (`todo.db.request_session`). They serve SQLite,
and on PostgreSQL the requests that need a transaction of their own (an
Idempotency-Key); `todo.tasks.direct` is the same rules as one statement each.
"""

from collections.abc import Collection, Sequence
from datetime import datetime
from http import HTTPStatus
from typing import Any, NoReturn, Protocol, cast
from uuid import UUID, uuid4

from sqlalchemy import (
    ColumnElement,
    Uuid,
    and_,
    case,
    delete,
    insert,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from todo.errors import NotFoundError, TodoError
from todo.etags import format_etag
from todo.tasks.cursor import Cursor
from todo.tasks.models import Task, TaskStatus
from todo.tasks.schemas import TaskCreate, TaskUpdate
from todo.timestamps import UTCDateTime, advance_timestamp, utcnow
from todo.users.service import ensure_user


class TaskRecord(Protocol):
    """A task's columns, read-only: what the operations below answer."""

    @property
    def id(self) -> UUID: ...
    @property
    def user_id(self) -> UUID: ...
    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def version(self) -> int: ...


_TABLE = Task.__table__  # type: ignore[attr-defined]
_COLUMNS = tuple(_TABLE.c)


class TaskNotFoundError(NotFoundError):
    problem_type = "urn:todo:problem:task-not-found"
    title = "Task not found"

    def __init__(self, task_id: UUID) -> None:
        super().__init__(f"There is no task {task_id} for this user.")


class StaleTaskVersionError(TodoError):
    status_code = HTTPStatus.PRECONDITION_FAILED
    problem_type = "urn:todo:problem:stale-version"
    title = "The task has changed"

    def __init__(self, task_id: UUID, current_version: int) -> None:
        # The current ETag lets the client fetch, merge and retry knowingly.
        super().__init__(
            f"Task {task_id} no longer has the version named in If-Match; nothing was changed.",
            headers={"ETag": format_etag(current_version)},
        )


def owned_by(user_id: UUID, task_id: UUID | None = None) -> ColumnElement[bool]:
    """The one ownership filter: another user's task is simply not found."""
    if task_id is None:
        return col(Task.user_id) == user_id
    return and_(col(Task.user_id) == user_id, col(Task.id) == task_id)


async def create_task(
    session: AsyncSession, user_id: UUID, data: TaskCreate, *, commit: bool = True
) -> TaskRecord:
    now = utcnow()
    statement = (
        insert(Task)
        .values(
            id=uuid4(),
            user_id=user_id,
            title=data.title,
            description=data.description,
            status=data.status.value,
            created_at=now,
            updated_at=now,
        )
        .returning(*_COLUMNS)
    )
    # The user row normally exists already; upserting it in the same
    # transaction keeps the foreign key satisfied even if it does not.
    await ensure_user(session, user_id, commit=False)
    task = cast(TaskRecord, (await session.execute(statement)).one())
    if commit:
        await session.commit()
    return task


async def get_task(session: AsyncSession, user_id: UUID, task_id: UUID) -> TaskRecord:
    task = (await session.execute(select(*_COLUMNS).where(owned_by(user_id, task_id)))).first()
    if task is None:
        raise TaskNotFoundError(task_id)
    return cast(TaskRecord, task)


async def list_tasks(
    session: AsyncSession,
    user_id: UUID,
    *,
    status: TaskStatus | None,
    limit: int,
    after: Cursor | None,
) -> Sequence[TaskRecord]:
    """Up to `limit` tasks, newest first, strictly after the cursor."""
    statement = select(*_COLUMNS).where(owned_by(user_id))
    if status is not None:
        statement = statement.where(col(Task.status) == status.value)
    if after is not None:
        # A row comparison, which both databases answer from the index.
        statement = statement.where(
            tuple_(col(Task.created_at), col(Task.id))
            < tuple_(literal(after.created_at, UTCDateTime()), literal(after.id, Uuid()))
        )
    statement = statement.order_by(col(Task.created_at).desc(), col(Task.id).desc()).limit(limit)
    return cast(Sequence[TaskRecord], (await session.execute(statement)).all())


def _matching(
    user_id: UUID, task_id: UUID, expected_versions: Collection[int] | None
) -> ColumnElement[bool]:
    """The task, and only at one of the versions a conditional request names."""
    if expected_versions is None:
        return owned_by(user_id, task_id)
    return and_(owned_by(user_id, task_id), col(Task.version).in_(sorted(expected_versions)))


async def _refuse_write(session: AsyncSession, user_id: UUID, task_id: UUID) -> NoReturn:
    """Why a write matched no row: the task is missing (404) or has moved on (412).

    Asked only after the write, so the answer never races the write itself.
    """
    version = await session.scalar(select(col(Task.version)).where(owned_by(user_id, task_id)))
    if version is None:
        raise TaskNotFoundError(task_id)
    raise StaleTaskVersionError(task_id, version)


async def _update_returning(
    session: AsyncSession,
    user_id: UUID,
    task_id: UUID,
    values: dict[str, Any],
    expected_versions: Collection[int] | None,
    *,
    commit: bool = True,
) -> TaskRecord:
    now = literal(utcnow(), UTCDateTime())
    # The version check and the write are one statement: of several writers
    # holding the same version, exactly one matches.
    statement = (
        # On the table, not the entity: ORM-enabled DML costs more Python per
        # statement, and the rows come back as plain records anyway.
        update(_TABLE)
        .where(_matching(user_id, task_id, expected_versions))
        .values(
            **values,
            version=col(Task.version) + 1,
            updated_at=advance_timestamp(col(Task.updated_at), now),
        )
        .returning(*_COLUMNS)
    )
    task = cast(TaskRecord | None, (await session.execute(statement)).one_or_none())
    if task is None:
        await _refuse_write(session, user_id, task_id)
    if commit:
        await session.commit()
    return task


async def update_task(
    session: AsyncSession,
    user_id: UUID,
    task_id: UUID,
    data: TaskUpdate,
    *,
    expected_versions: Collection[int] | None = None,
) -> TaskRecord:
    """`expected_versions`: write only if the task is at one of them (None: any)."""
    return await _update_returning(session, user_id, task_id, data.changes(), expected_versions)


async def toggle_task(
    session: AsyncSession,
    user_id: UUID,
    task_id: UUID,
    *,
    expected_versions: Collection[int] | None = None,
    commit: bool = True,
) -> TaskRecord:
    # One statement: the database flips whatever the row holds when the write
    # lands, so concurrent toggles each count.
    flipped = case(
        (col(Task.status) == TaskStatus.PENDING.value, TaskStatus.COMPLETED.value),
        else_=TaskStatus.PENDING.value,
    )
    return await _update_returning(
        session, user_id, task_id, {"status": flipped}, expected_versions, commit=commit
    )


async def delete_task(
    session: AsyncSession,
    user_id: UUID,
    task_id: UUID,
    *,
    expected_versions: Collection[int] | None = None,
) -> None:
    statement = (
        delete(Task).where(_matching(user_id, task_id, expected_versions)).returning(col(Task.id))
    )
    deleted = (await session.execute(statement)).first()
    if deleted is None:
        await _refuse_write(session, user_id, task_id)
    await session.commit()
