"""The change feed: a user's tasks in change order, tombstones included, from a cursor.

Every write stamps the rows it touches with the user's next change number
(todo.users.changes), and a delete leaves a tombstone (todo.tasks.service),
so the rows with a number above a client's cursor are exactly what it has
not seen, each in its latest state. A client without a cursor reads the
snapshot the same way: the live tasks, tombstones left out.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any
from uuid import UUID

from sqlalchemy import Select, and_, bindparam, delete, func, or_, select, update

from todo.db import Database, Row, Runner
from todo.db.types import UTCDateTime, utcnow
from todo.errors import TodoError
from todo.sync.cursor import SyncCursor, decode_sync_cursor, encode_sync_cursor, user_tag
from todo.tasks.models import Task, TaskRow
from todo.users.models import User

_TASKS = Task.__table__  # type: ignore[attr-defined]
_USERS = User.__table__  # type: ignore[attr-defined]
_ROW = tuple(_TASKS.c[name] for name in TaskRow._fields)
_PAGE_COLUMNS = (*_ROW, _TASKS.c.change, _TASKS.c.deleted_at)

_USER_STATE = select(_USERS.c.created_at, _USERS.c.last_change, _USERS.c.purged_change).where(
    _USERS.c.id == bindparam("owner_id")
)


class SyncCursorExpiredError(TodoError):
    status_code = 410  # type: ignore[assignment]
    problem_type = "urn:todo:problem:sync-cursor-expired"
    title = "Sync cursor expired"

    def __init__(self) -> None:
        super().__init__(
            "This cursor can no longer be served (the deletes since it have been forgotten, "
            "or it is another user's or another database's): drop the local copy and start "
            "again without a cursor."
        )


@dataclass(frozen=True, slots=True)
class Change:
    """One task's latest state: `deleted` for a tombstone (only its id then matters)."""

    task: TaskRow
    deleted: bool
    number: int


@dataclass(frozen=True, slots=True)
class Position:
    """Where a client stands, checked against its user: what to read next."""

    tag: bytes
    after: int
    floor: int

    def advanced(self, changes: Sequence[Change], *, complete: bool) -> "Position":
        """After `changes`; `complete`: nothing newer was there, so the snapshot is read."""
        after = changes[-1].number if changes else self.after
        if complete:
            after = max(after, self.floor)
        floor = self.floor if self.floor > after else 0
        return Position(self.tag, after, floor)

    @property
    def cursor(self) -> str:
        return encode_sync_cursor(SyncCursor(self.tag, self.after, self.floor))


@cache
def _page(*, snapshot: bool, one_change: bool) -> Select[Any]:
    conditions = [_TASKS.c.user_id == bindparam("owner_id")]
    if one_change:
        # The rest of one change, after the row a page stopped at.
        conditions += [
            _TASKS.c.change == bindparam("change"),
            _TASKS.c.id > bindparam("after_id", type_=_TASKS.c.id.type),
        ]
    else:
        conditions.append(_TASKS.c.change > bindparam("after"))
    if snapshot:
        # Tombstones the snapshot's client never had the tasks of.
        conditions.append(or_(_TASKS.c.deleted_at.is_(None), _TASKS.c.change > bindparam("floor")))
    statement = select(*_PAGE_COLUMNS).where(and_(*conditions))
    statement = statement.order_by(_TASKS.c.change, _TASKS.c.id)
    return statement if one_change else statement.limit(bindparam("limit"))


def _change(row: Row) -> Change:
    *task, number, deleted_at = row
    return Change(TaskRow(*task), deleted_at is not None, number)


async def position(db: Runner, user_id: UUID, since: str | None) -> Position:
    """Where `since` stands (the snapshot's start without it).

    Raises InvalidSyncCursorError (400) for a string this API did not issue,
    SyncCursorExpiredError (410) for one it can no longer serve.
    """
    cursor = decode_sync_cursor(since) if since is not None else None
    rows = await db.fetch(_USER_STATE, {"owner_id": user_id})
    if not rows:
        # Made on every task route's first use (todo.users): a user that is gone.
        raise SyncCursorExpiredError()
    created_at, last_change, purged_change = rows[0]
    tag = user_tag(user_id, created_at)
    if cursor is None:
        return Position(tag, 0, last_change)
    if cursor.tag != tag or cursor.after > last_change or cursor.floor > last_change:
        raise SyncCursorExpiredError()
    if purged_change > max(cursor.after, cursor.floor):
        raise SyncCursorExpiredError()
    return Position(tag, cursor.after, cursor.floor)


async def read_changes(
    db: Runner, user_id: UUID, at: Position, limit: int
) -> tuple[list[Change], Position, bool]:
    """Up to `limit` changes after `at` (more to keep one change whole), where they
    end, and whether more are there."""
    snapshot = at.floor > at.after
    params: dict[str, Any] = {"owner_id": user_id, "after": at.after, "limit": limit + 1}
    if snapshot:
        params["floor"] = at.floor
    changes = [
        _change(row) for row in await db.fetch(_page(snapshot=snapshot, one_change=False), params)
    ]
    has_more = len(changes) > limit
    if has_more:
        last = changes[limit - 1]
        if changes[limit].number == last.number:
            # A page never ends inside a change: the rest of this one comes too.
            rest = {**params, "change": last.number, "after_id": last.task.id}
            changes = changes[:limit] + [
                _change(row)
                for row in await db.fetch(_page(snapshot=snapshot, one_change=True), rest)
            ]
            following = {**params, "after": last.number, "limit": 1}
            has_more = bool(await db.fetch(_page(snapshot=snapshot, one_change=False), following))
        else:
            changes = changes[:limit]
    return changes, at.advanced(changes, complete=not has_more), has_more


_EXPIRED_TOMBSTONES = (
    select(_TASKS.c.user_id, func.max(_TASKS.c.change))
    .where(_TASKS.c.deleted_at < bindparam("cutoff", type_=UTCDateTime()))
    .group_by(_TASKS.c.user_id)
)
_MARK_PURGED = (
    update(_USERS)
    .where(_USERS.c.id == bindparam("purged_user"))
    .where(_USERS.c.purged_change < bindparam("purged_through"))
    .values(purged_change=bindparam("purged_through"))
)
_PURGE_TOMBSTONES = delete(_TASKS).where(
    _TASKS.c.user_id == bindparam("purged_user"),
    _TASKS.c.deleted_at < bindparam("cutoff", type_=UTCDateTime()),
    _TASKS.c.change <= bindparam("purged_through"),
)


async def purge_tombstones(db: Database, retention: timedelta) -> int:
    """Forget deletes older than `retention`; cursors from before them expire. How many."""
    cutoff = utcnow() - retention
    purged = 0
    for user_id, through in await db.fetch(_EXPIRED_TOMBSTONES, {"cutoff": cutoff}):
        # One user at a time, each in a short transaction: the mark and the delete together.
        async with db.transaction() as transaction:
            params = {"purged_user": user_id, "purged_through": through, "cutoff": cutoff}
            await transaction.fetch(_MARK_PURGED, params)
            await transaction.fetch(_PURGE_TOMBSTONES, params)
        purged += 1
    return purged
