"""Each user's change numbers: every write takes the next one and stamps its rows.

A write runs as one change of its user: it raises users.last_change by one
and stamps every row it touches with the new number, in its own transaction.
The users row stays locked until that commits, so a user's next write waits
for it: the numbers follow commit order, and no reader ever sees change N+1
before change N (todo.sync reads them in that order).

On PostgreSQL this is the write statement itself, with the number taken in a
data-modifying WITH that also sends the change notice (todo.db.notices): one
round trip, as before. On SQLite, which has no such WITH, it is two
statements in one transaction; its writers are serialised anyway.
"""

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, String, bindparam, cast, func, literal, select, update
from sqlalchemy.sql.dml import ValuesBase
from sqlalchemy.sql.elements import ColumnElement

from todo.db import Row, Runner
from todo.db.notices import CHANNEL
from todo.users.models import User

_USERS = User.__table__  # type: ignore[attr-defined]

NEXT_CHANGE = (
    update(_USERS)
    .where(_USERS.c.id == bindparam("owner_id"))
    .values(last_change=_USERS.c.last_change + 1)
    .returning(_USERS.c.last_change, _USERS.c.id)
)


def _notified(taken: Any) -> Any:
    """The notice of the change `taken` (a WITH or subquery holding last_change and id)."""
    payload = func.concat(cast(taken.c.id, String), literal(" "), cast(taken.c.last_change, String))
    return func.pg_notify(literal(CHANNEL), payload)


def stamped(
    statement: ValuesBase,
    *,
    in_with: bool,
    also: Callable[[ColumnElement[int]], dict[str, Any]] | None = None,
) -> Any:
    """`statement` setting `change`: from the WITH (`in_with`) or from `:change`.

    `also`: further values made from the change number (a new task's position).
    """
    if not in_with:
        number: ColumnElement[int] = bindparam("change", type_=BigInteger())
        return statement.values(change=number, **(also(number) if also else {}))
    taken = NEXT_CHANGE.cte("next_change")
    notice = select(taken.c.last_change.label("change"), _notified(taken)).cte("notice")
    number = select(notice.c.change).scalar_subquery()
    extra = also(number) if also else {}
    return statement.values(change=number, **extra).add_cte(taken).add_cte(notice)


_TAKEN = NEXT_CHANGE.cte("next_change")
_TAKE_AND_NOTIFY = select(_TAKEN.c.last_change, _notified(_TAKEN))


async def take_change(transaction: Runner, user_id: UUID) -> int | None:
    """The user's next change number, the users row locked until `transaction` ends.

    For a write that must read before it writes (a move reads its new
    neighbours): taken first, no other write of the user can come in between.
    On PostgreSQL it also sends the change notice, delivered at commit. None:
    there is no such user.
    """
    if transaction.writes_in_with:
        rows = await transaction.fetch(_TAKE_AND_NOTIFY, {"owner_id": user_id})
    else:
        rows = await transaction.fetch(NEXT_CHANGE, {"owner_id": user_id})
        if rows:
            transaction.changed(user_id)
    return int(rows[0][0]) if rows else None


async def write_change(
    db: Runner, user_id: UUID, build: Callable[..., Any], params: dict[str, Any]
) -> Sequence[Row]:
    """Run the statement `build(in_with=...)` makes as the user's next change; its rows.

    `build` is cached by its callers, so each shape is compiled once.
    """
    if db.writes_in_with:
        return await db.fetch(build(in_with=True), params)
    async with db.atomic() as transaction:
        taken = await transaction.fetch(NEXT_CHANGE, {"owner_id": user_id})
        if not taken:
            # No such user, so none of its rows either.
            return []
        rows = await transaction.fetch(build(in_with=False), {**params, "change": taken[0][0]})
        if rows:
            transaction.changed(user_id)
        return rows
