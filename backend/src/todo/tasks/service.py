"""Task rules and statements: the only path to the tasks table.

Each operation is one Core statement, built once, run on a `Runner`: the
database itself (the statement is then its own transaction, one round trip
on PostgreSQL) or a transaction the caller holds (an Idempotency-Key's).
Every statement is scoped to its owner's live tasks, a conditional write
checks the version in the write itself, and a write that matched nothing is
explained as 404 or 412 afterwards. Every write is one change of its user
(todo.users.changes), and a delete leaves a tombstone for the change feed
(todo.sync).
"""

from collections.abc import Callable, Collection
from functools import cache, partial
from typing import Any, NoReturn
from uuid import UUID, uuid4

from sqlalchemy import (
    ColumnElement,
    Insert,
    Select,
    Update,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.sql.elements import BindParameter

from todo.db import Row, Runner, planned_each_time
from todo.db.types import IntegerSet, UTCDateTime, advance_timestamp, one_of, utcnow
from todo.errors import InvalidFieldError
from todo.tasks.cursor import Cursor, Sort
from todo.tasks.errors import StaleTaskVersionError, TaskNotFoundError
from todo.tasks.models import Task, TaskRow, TaskStatus
from todo.tasks.positions import MAX_LENGTH, between, first_position, first_position_sql, spread
from todo.tasks.schemas import TaskCreate, TaskUpdate
from todo.tasks.search import ESCAPE, contains_pattern, search_key
from todo.users.changes import stamped, take_change, write_change

_TASKS = Task.__table__  # type: ignore[attr-defined]
_ROW = tuple(_TASKS.c[name] for name in TaskRow._fields)


def _owned(*, task: bool = True) -> ColumnElement[bool]:
    """The one ownership filter: another user's task, or a deleted one, is simply not found."""
    owner = and_(_TASKS.c.user_id == bindparam("owner_id"), _TASKS.c.deleted_at.is_(None))
    return and_(owner, _TASKS.c.id == bindparam("task_id")) if task else owner


def _matching(*, conditional: bool) -> ColumnElement[bool]:
    """The task, and when the request is conditional only at one of the versions it names."""
    if not conditional:
        return _owned()
    return and_(_owned(), one_of(_TASKS.c.version, bindparam("versions", type_=IntegerSet())))


_GET = select(*_ROW).where(_owned())
_VERSION = select(_TASKS.c.version).where(_owned())
_INSERT = (
    insert(_TASKS)
    .values(
        id=bindparam("task_id"),
        user_id=bindparam("owner_id"),
        title=bindparam("new_title"),
        description=bindparam("new_description"),
        status=bindparam("new_status"),
        title_key=bindparam("new_title_key"),
        description_key=bindparam("new_description_key"),
        created_at=bindparam("now", type_=UTCDateTime()),
        updated_at=bindparam("now", type_=UTCDateTime()),
    )
    .returning(*_ROW)
)


@cache
def _insert(*, in_with: bool) -> Insert:
    """A new task goes first: its position comes from its change number (todo.tasks.positions)."""
    stamped_insert: Insert = stamped(
        _INSERT, in_with=in_with, also=lambda change: {"position": first_position_sql(change)}
    )
    return stamped_insert


# One statement: the database flips whatever the row holds when the write
# lands, so concurrent toggles each count.
_TOGGLED = case(
    (_TASKS.c.status == TaskStatus.PENDING.value, TaskStatus.COMPLETED.value),
    else_=TaskStatus.PENDING.value,
)


# Each order: its key column, and whether it runs from the largest key down.
_ORDERS = {
    Sort.NEWEST: (_TASKS.c.created_at, True),
    Sort.OLDEST: (_TASKS.c.created_at, False),
    Sort.RECENTLY_UPDATED: (_TASKS.c.updated_at, True),
    Sort.POSITION: (_TASKS.c.position, False),
}


@cache
def _list(*, by_status: bool, after: bool, search: bool, sort: Sort = Sort.NEWEST) -> Select[Any]:
    statement = select(*_ROW).where(_owned(task=False))
    if by_status:
        statement = statement.where(_TASKS.c.status == bindparam("status"))
    if search:
        pattern: BindParameter[str] = bindparam("search_pattern")
        statement = statement.where(
            or_(
                _TASKS.c.title_key.like(pattern, escape=ESCAPE),
                _TASKS.c.description_key.like(pattern, escape=ESCAPE),
            )
        )
    key, descending = _ORDERS[sort]
    if after:
        # A row comparison, which both databases answer from the index.
        here = tuple_(key, _TASKS.c.id)
        cursor = tuple_(
            bindparam("after_key", type_=key.type), bindparam("after_id", type_=_TASKS.c.id.type)
        )
        statement = statement.where(here < cursor if descending else here > cursor)
    if descending:
        statement = statement.order_by(key.desc(), _TASKS.c.id.desc())
    else:
        statement = statement.order_by(key, _TASKS.c.id)
    statement = statement.limit(bindparam("limit"))
    # Whether the trigram index or the order's own index serves a search depends on the word.
    return planned_each_time(statement) if search else statement


def _bumped(where: ColumnElement[bool], **values: Any) -> Update:
    """Set `values` on the tasks `where` selects; bump each one's version and time."""
    return (
        update(_TASKS)
        .where(where)
        .values(
            **values,
            version=_TASKS.c.version + 1,
            updated_at=advance_timestamp(
                _TASKS.c.updated_at, bindparam("now", type_=UTCDateTime())
            ),
        )
    )


def _changing(*, conditional: bool, **values: Any) -> Update:
    """Set `values` on the task (at one of the expected versions, if `conditional`)."""
    return _bumped(_matching(conditional=conditional), **values).returning(*_ROW)


@cache
def _update(columns: tuple[str, ...], *, toggle: bool, conditional: bool, in_with: bool) -> Update:
    """Set `columns` from `new_<column>` (or flip the status)."""
    values: dict[str, Any] = {column: bindparam(f"new_{column}") for column in columns}
    for column in set(columns) & _SEARCHED:
        values[f"{column}_key"] = bindparam(f"new_{column}_key")
    if toggle:
        values["status"] = _TOGGLED
    statement: Update = stamped(_changing(conditional=conditional, **values), in_with=in_with)
    return statement


@cache
def _delete(*, conditional: bool, in_with: bool) -> Update:
    """A delete leaves a tombstone, which the feed reports and the purge removes."""
    tombstone = _changing(conditional=conditional, deleted_at=bindparam("now", type_=UTCDateTime()))
    statement: Update = stamped(tombstone, in_with=in_with)
    return statement


@cache
def _set_status(*, by_status: bool, in_with: bool) -> Update:
    """Every live task of the owner not at `new_status` (and at `status`, if given)."""
    statement = (
        _changing_all(status=bindparam("new_status"))
        .where(_TASKS.c.status != bindparam("new_status"))
        .returning(_TASKS.c.id)
    )
    if by_status:
        statement = statement.where(_TASKS.c.status == bindparam("only_status"))
    stamped_update: Update = stamped(statement, in_with=in_with)
    return stamped_update


@cache
def _delete_all(*, in_with: bool) -> Update:
    statement = (
        _changing_all(deleted_at=bindparam("now", type_=UTCDateTime()))
        .where(_TASKS.c.status == bindparam("only_status"))
        .returning(_TASKS.c.id)
    )
    stamped_update: Update = stamped(statement, in_with=in_with)
    return stamped_update


def _changing_all(**values: Any) -> Update:
    """Set `values` on every live task of the owner (a bulk write: one change)."""
    return _bumped(_owned(task=False), **values)


_SUMMARY = select(
    func.count(),
    func.count().filter(_TASKS.c.status == TaskStatus.PENDING.value),
).where(_owned(task=False))


# The fields a search looks in, each stored once more as its key.
_SEARCHED = frozenset({"title", "description"})


def _key(text: str | None) -> str | None:
    return None if text is None else search_key(text)


def _task(row: Row) -> TaskRow:
    return TaskRow(*row)


async def list_tasks(
    db: Runner,
    user_id: UUID,
    *,
    status: TaskStatus | None,
    limit: int,
    after: Cursor | None,
    search: str | None = None,
    sort: Sort = Sort.NEWEST,
) -> list[TaskRow]:
    """Up to `limit` tasks in `sort` order, strictly after the cursor; with `search`, only
    those whose title or description contains it (todo.tasks.search)."""
    params: dict[str, Any] = {"owner_id": user_id, "limit": limit}
    if status is not None:
        params["status"] = status.value
    if search is not None:
        params["search_pattern"] = contains_pattern(search)
    if after is not None:
        params.update(after_key=after.key, after_id=after.id)
    statement = _list(
        by_status=status is not None,
        after=after is not None,
        search=search is not None,
        sort=sort,
    )
    rows = await db.fetch(statement, params)
    return [_task(row) for row in rows]


async def get_task(db: Runner, user_id: UUID, task_id: UUID) -> TaskRow:
    rows = await db.fetch(_GET, {"owner_id": user_id, "task_id": task_id})
    if not rows:
        raise TaskNotFoundError(task_id)
    return _task(rows[0])


async def create_task(db: Runner, user_id: UUID, data: TaskCreate) -> TaskRow:
    """A new task of a user whose row exists (see todo.users.service.Users.ensure)."""
    [row] = await write_change(
        db,
        user_id,
        _insert,
        {
            "task_id": uuid4(),
            "owner_id": user_id,
            "new_title": data.title,
            "new_description": data.description,
            "new_status": data.status.value,
            "new_title_key": search_key(data.title),
            "new_description_key": _key(data.description),
            "now": utcnow(),
        },
    )
    return _task(row)


async def update_task(
    db: Runner,
    user_id: UUID,
    task_id: UUID,
    data: TaskUpdate,
    *,
    expected_versions: Collection[int] | None = None,
) -> TaskRow:
    """`expected_versions`: write only if the task is at one of them (None: any)."""
    changes = data.changes()
    columns = tuple(sorted(changes))
    values = {f"new_{column}": changes[column] for column in columns}
    for column in set(columns) & _SEARCHED:
        values[f"new_{column}_key"] = _key(changes[column])
    statement = partial(_update, columns, toggle=False, conditional=expected_versions is not None)
    return await _write(db, statement, user_id, task_id, expected_versions, values)


async def toggle_task(
    db: Runner, user_id: UUID, task_id: UUID, *, expected_versions: Collection[int] | None = None
) -> TaskRow:
    statement = partial(_update, (), toggle=True, conditional=expected_versions is not None)
    return await _write(db, statement, user_id, task_id, expected_versions)


async def delete_task(
    db: Runner, user_id: UUID, task_id: UUID, *, expected_versions: Collection[int] | None = None
) -> None:
    statement = partial(_delete, conditional=expected_versions is not None)
    params = _target(user_id, task_id, expected_versions)
    params["now"] = utcnow()
    if not await write_change(db, user_id, statement, params):
        await _refuse(db, user_id, task_id)


def _target(
    user_id: UUID, task_id: UUID, expected_versions: Collection[int] | None
) -> dict[str, Any]:
    params: dict[str, Any] = {"owner_id": user_id, "task_id": task_id}
    if expected_versions is not None:
        params["versions"] = expected_versions
    return params


async def _write(  # noqa: PLR0917  (the parts of one write)
    db: Runner,
    statement: Callable[..., Update],
    user_id: UUID,
    task_id: UUID,
    expected_versions: Collection[int] | None,
    values: dict[str, Any] | None = None,
) -> TaskRow:
    params = _target(user_id, task_id, expected_versions)
    params["now"] = utcnow()
    if values:
        params.update(values)
    rows = await write_change(db, user_id, statement, params)
    if not rows:
        await _refuse(db, user_id, task_id)
    return _task(rows[0])


_POSITION_OF = select(_TASKS.c.position).where(_owned())
# The first live position above `after_position`, the moved task aside.
_NEXT_POSITION = select(func.min(_TASKS.c.position)).where(
    _owned(task=False),
    _TASKS.c.position > bindparam("after_position", type_=_TASKS.c.position.type),
    _TASKS.c.id != bindparam("task_id"),
)
_IN_ORDER = (
    select(_TASKS.c.id)
    .where(_owned(task=False), _TASKS.c.id != bindparam("task_id"))
    .order_by(_TASKS.c.position, _TASKS.c.id)
)
_PLACE = (
    update(_TASKS)
    .where(_owned())
    .values(
        position=bindparam("new_position"),
        version=_TASKS.c.version + 1,
        change=bindparam("change"),
    )
)


@cache
def _move(*, conditional: bool) -> Update:
    return _changing(
        conditional=conditional, position=bindparam("new_position"), change=bindparam("change")
    )


async def move_task(
    db: Runner,
    user_id: UUID,
    task_id: UUID,
    after: UUID | None,
    *,
    expected_versions: Collection[int] | None = None,
) -> TaskRow:
    """Place the task right after `after` (first if None): one change, in one transaction.

    The change number is taken first, so no other write of the user comes
    between reading the new neighbours and writing. A position grown past
    positions.MAX_LENGTH gives the user's tasks fresh, short ones, in the same
    change.
    """
    if after == task_id:
        raise InvalidFieldError(
            ("body", "after"), "a task cannot go after itself", "move_after_self"
        )
    async with db.atomic() as transaction:
        change = await take_change(transaction, user_id)
        if change is None:
            raise TaskNotFoundError(task_id)
        owner = {"owner_id": user_id, "task_id": task_id}
        position = first_position(change)
        if after is not None:
            rows = await transaction.fetch(_POSITION_OF, {"owner_id": user_id, "task_id": after})
            if not rows:
                raise TaskNotFoundError(after)
            after_position = rows[0][0]
            [(next_position,)] = await transaction.fetch(
                _NEXT_POSITION, {**owner, "after_position": after_position}
            )
            position = between(after_position, next_position)
            if len(position) > MAX_LENGTH:
                position = await _rebalance(transaction, user_id, task_id, after, change)
        params = _target(user_id, task_id, expected_versions)
        params.update(new_position=position, change=change, now=utcnow())
        rows = await transaction.fetch(_move(conditional=expected_versions is not None), params)
        if not rows:
            await _refuse(transaction, user_id, task_id)
        return _task(rows[0])


async def _rebalance(
    transaction: Runner, user_id: UUID, task_id: UUID, after: UUID, change: int
) -> str:
    """Spread the user's tasks over short positions, keeping their order with `task_id`
    right after `after`; the moved task's new position (its caller writes it)."""
    order = [
        other
        for (other,) in await transaction.fetch(
            _IN_ORDER, {"owner_id": user_id, "task_id": task_id}
        )
    ]
    order.insert(order.index(after) + 1, task_id)
    positions = {other: spread(change, index, len(order)) for index, other in enumerate(order)}
    moved = positions.pop(task_id)
    # One UPDATE per task, sent together: one round trip however many tasks the user has.
    placements = [
        {"owner_id": user_id, "task_id": other, "new_position": position, "change": change}
        for other, position in positions.items()
    ]
    await transaction.run_many(_PLACE, placements)
    return moved


async def set_status(
    db: Runner, user_id: UUID, status: TaskStatus, *, only: TaskStatus | None = None
) -> int:
    """Give every task of the user (with status `only`, if given) `status`: how many changed.

    One statement, one change in the feed however many rows it touches.
    """
    params: dict[str, Any] = {"owner_id": user_id, "new_status": status.value, "now": utcnow()}
    if only is not None:
        params["only_status"] = only.value
    statement = partial(_set_status, by_status=only is not None)
    return len(await write_change(db, user_id, statement, params))


async def delete_all(db: Runner, user_id: UUID, status: TaskStatus) -> int:
    """Delete every task of the user with `status` (tombstones, one change): how many."""
    params = {"owner_id": user_id, "only_status": status.value, "now": utcnow()}
    return len(await write_change(db, user_id, _delete_all, params))


async def summary(db: Runner, user_id: UUID) -> tuple[int, int, int]:
    """The user's live tasks: (total, pending, completed), in one indexed query."""
    [(total, pending)] = await db.fetch(_SUMMARY, {"owner_id": user_id})
    return total, pending, total - pending


async def _refuse(db: Runner, user_id: UUID, task_id: UUID) -> NoReturn:
    """Why a write matched no row: the task is missing (404) or has moved on (412).

    Asked only after the write, so the answer never races the write itself.
    """
    rows = await db.fetch(_VERSION, {"owner_id": user_id, "task_id": task_id})
    if not rows:
        raise TaskNotFoundError(task_id)
    raise StaleTaskVersionError(task_id, rows[0][0])
