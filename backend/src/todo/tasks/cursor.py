"""Keyset cursors: the sort key and id of the last task on a page, per sort order.

The default order's cursor is `<microseconds since the epoch>.<id as 32 hex
digits>`; the other orders' start with a letter of their own (`c` oldest
first, `u` recently updated first, `p` the user's order, which holds the
position itself), so that a cursor is only ever read in the order it was
made for: another order's cursor is refused (400), not misread. The OpenAPI
schema states the form exactly, so none that passes it is refused as malformed.
"""

import re
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple
from uuid import UUID

from todo.db.types import EPOCH, ONE_MICROSECOND
from todo.errors import BadRequestError, InvalidFieldError


class Sort(StrEnum):
    NEWEST = "-created_at"
    OLDEST = "created_at"
    RECENTLY_UPDATED = "-updated_at"
    POSITION = "position"


_PREFIXES = {Sort.NEWEST: "", Sort.OLDEST: "c", Sort.RECENTLY_UPDATED: "u", Sort.POSITION: "p"}
# 17 digits reach the year 5138, well inside what both databases store.
CURSOR_PATTERN = r"^(?:[cu]?[0-9]{1,17}|p[0-9A-Za-z]{1,64})\.[0-9a-f]{32}$"
_CURSOR = re.compile(CURSOR_PATTERN)


class Cursor(NamedTuple):
    """Where a page ends: the last task's sort key (a time, or a position) and id."""

    key: datetime | str
    id: UUID


class InvalidCursorError(InvalidFieldError):
    def __init__(self) -> None:
        super().__init__(
            ("query", "cursor"),
            "not a cursor this API issued; take it from a Link header",
            "cursor_invalid",
        )


class CursorSortMismatchError(BadRequestError):
    problem_type = "urn:todo:problem:cursor-sort-mismatch"
    title = "Cursor from another sort order"

    def __init__(self, sort: Sort) -> None:
        super().__init__(
            f"This cursor was made for another sort order than {sort.value!r}: follow the "
            "Link header of a page in this order, or start again without a cursor."
        )


def encode_cursor(cursor: Cursor, sort: Sort = Sort.NEWEST) -> str:
    if isinstance(cursor.key, str):
        key = cursor.key
    else:
        key = str((cursor.key - EPOCH) // ONE_MICROSECOND)
    return f"{_PREFIXES[sort]}{key}.{cursor.id.hex}"


def decode_cursor(token: str, sort: Sort = Sort.NEWEST) -> Cursor:
    if not _CURSOR.fullmatch(token):
        raise InvalidCursorError()
    key, hex_id = token.split(".")
    made_for = next(
        (kind for kind, prefix in _PREFIXES.items() if prefix and key.startswith(prefix)),
        Sort.NEWEST,
    )
    if made_for is not sort:
        raise CursorSortMismatchError(sort)
    key = key.removeprefix(_PREFIXES[sort])
    if sort is Sort.POSITION:
        return Cursor(key, UUID(hex=hex_id))
    return Cursor(EPOCH + int(key) * ONE_MICROSECOND, UUID(hex=hex_id))
