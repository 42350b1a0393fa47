"""The task operations as PostgreSQL statements, one round trip each.

The same rules as `todo.tasks.service`, which serves SQLite and the requests
that need a transaction of their own (an Idempotency-Key): every statement is
scoped to its owner, a conditional write checks the version in the write
itself, and a write that matched nothing is then explained as 404 or 412.
Hand-written SQL, because here each statement is the whole request: the
tests run every operation on both paths.
"""

# The SQL below is put together from this module's own constants, never from input.
# ruff: noqa: S608

from collections.abc import Collection, Sequence
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple, NoReturn
from uuid import UUID, uuid4

import asyncpg

from todo.dbdirect import DirectStatements
from todo.tasks.cursor import Cursor
from todo.tasks.models import TaskStatus
from todo.tasks.schemas import TaskCreate, TaskUpdate
from todo.tasks.service import StaleTaskVersionError, TaskNotFoundError
from todo.timestamps import utcnow
from todo.users.service import placeholder_email


class TaskRow(NamedTuple):
    id: UUID
    user_id: UUID
    title: str
    description: str | None
    status: str
    created_at: datetime
    updated_at: datetime
    version: int


_COLUMNS = ", ".join(TaskRow._fields)
_OWNED = "user_id = $1 AND id = $2"
# Strictly later than the last change, even when clocks were read out of order
# (as todo.timestamps.advance_timestamp).
_ADVANCE = "updated_at = GREATEST($3, updated_at + interval '1 microsecond')"
_TOGGLED = "status = CASE WHEN status = 'pending' THEN 'completed' ELSE 'pending' END"

_GET = f"SELECT {_COLUMNS} FROM tasks WHERE {_OWNED}"
_VERSION = f"SELECT version FROM tasks WHERE {_OWNED}"
# The owner's row is upserted in the same statement, so the foreign key holds
# even for a user this process has never seen.
_CREATE = f"""
WITH owner AS (
    INSERT INTO users (id, email, created_at) VALUES ($2, $7, $6) ON CONFLICT DO NOTHING
)
INSERT INTO tasks (id, user_id, title, description, status, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $6)
RETURNING {_COLUMNS}
"""


@cache
def _list_sql(*, by_status: bool, after: bool) -> str:
    where = ["user_id = $1"]
    if by_status:
        where.append("status = $3")
    if after:
        # A row comparison, answered from the index.
        where.append(f"(created_at, id) < (${len(where) + 2}, ${len(where) + 3})")
    return (
        f"SELECT {_COLUMNS} FROM tasks WHERE {' AND '.join(where)} "
        "ORDER BY created_at DESC, id DESC LIMIT $2"
    )


@cache
def _update_sql(changed: tuple[str, ...], *, conditional: bool) -> str:
    """`changed`: the columns set from $4 on, or ("toggle",) to flip the status."""
    toggle = changed == ("toggle",)
    sets = [_TOGGLED] if toggle else [f"{column} = ${n}" for n, column in enumerate(changed, 4)]
    where = _OWNED
    if conditional:
        # The version check and the write are one statement: of several writers
        # holding the same version, exactly one matches.
        where += f" AND version = ANY(${4 + (0 if toggle else len(changed))}::bigint[])"
    return (
        f"UPDATE tasks SET {', '.join(sets)}, version = version + 1, {_ADVANCE} "
        f"WHERE {where} RETURNING {_COLUMNS}"
    )


@cache
def _delete_sql(*, conditional: bool) -> str:
    where = _OWNED + (" AND version = ANY($3::bigint[])" if conditional else "")
    return f"DELETE FROM tasks WHERE {where} RETURNING id"


def _row(record: asyncpg.Record) -> TaskRow:
    return TaskRow(*record)


class DirectTaskStore:
    def __init__(self, statements: DirectStatements) -> None:
        self._db = statements

    async def list_tasks(
        self, user_id: UUID, *, status: TaskStatus | None, limit: int, after: Cursor | None
    ) -> Sequence[TaskRow]:
        args: list[Any] = [user_id, limit]
        if status is not None:
            args.append(status.value)
        if after is not None:
            args += [after.created_at, after.id]
        sql = _list_sql(by_status=status is not None, after=after is not None)
        return [_row(record) for record in await self._db.fetch(sql, *args)]

    async def get_task(self, user_id: UUID, task_id: UUID) -> TaskRow:
        record = await self._db.fetchrow(_GET, user_id, task_id)
        if record is None:
            raise TaskNotFoundError(task_id)
        return _row(record)

    async def create_task(self, user_id: UUID, data: TaskCreate) -> TaskRow:
        record = await self._db.fetchrow(
            _CREATE,
            uuid4(),
            user_id,
            data.title,
            data.description,
            data.status.value,
            utcnow(),
            placeholder_email(user_id),
            repeatable=False,
        )
        assert record is not None, "INSERT ... RETURNING answers its row"
        return _row(record)

    async def update_task(
        self,
        user_id: UUID,
        task_id: UUID,
        data: TaskUpdate,
        *,
        expected_versions: Collection[int] | None,
    ) -> TaskRow:
        changes = data.changes()
        columns = tuple(sorted(changes))
        return await self._write(
            user_id, task_id, columns, [changes[column] for column in columns], expected_versions
        )

    async def toggle_task(
        self, user_id: UUID, task_id: UUID, *, expected_versions: Collection[int] | None
    ) -> TaskRow:
        return await self._write(user_id, task_id, ("toggle",), [], expected_versions)

    async def delete_task(
        self, user_id: UUID, task_id: UUID, *, expected_versions: Collection[int] | None
    ) -> None:
        args: list[Any] = [user_id, task_id]
        if expected_versions is not None:
            args.append(sorted(expected_versions))
        sql = _delete_sql(conditional=expected_versions is not None)
        if await self._db.fetchrow(sql, *args, repeatable=False) is None:
            await self._refuse(user_id, task_id)

    async def _write(
        self,
        user_id: UUID,
        task_id: UUID,
        columns: tuple[str, ...],
        values: list[Any],
        expected_versions: Collection[int] | None,
    ) -> TaskRow:
        args: list[Any] = [user_id, task_id, utcnow(), *values]
        if expected_versions is not None:
            args.append(sorted(expected_versions))
        sql = _update_sql(columns, conditional=expected_versions is not None)
        record = await self._db.fetchrow(sql, *args, repeatable=False)
        if record is None:
            await self._refuse(user_id, task_id)
        return _row(record)

    async def _refuse(self, user_id: UUID, task_id: UUID) -> NoReturn:
        """Why a write matched no row: the task is missing (404) or has moved on (412)."""
        record = await self._db.fetchrow(_VERSION, user_id, task_id)
        if record is None:
            raise TaskNotFoundError(task_id)
        raise StaleTaskVersionError(task_id, record["version"])
