"""Keyset cursors: the (created_at, id) of the last task on a page.

Written `<microseconds since the epoch>.<id as 32 hex digits>`, a form the
OpenAPI schema states exactly: every string it allows names a position in the
list, so none that passes the schema is refused.
"""

import re
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from todo.db.types import EPOCH, ONE_MICROSECOND
from todo.errors import InvalidFieldError

# 17 digits reach the year 5138, well inside what both databases store.
CURSOR_PATTERN = r"^[0-9]{1,17}\.[0-9a-f]{32}$"
_CURSOR = re.compile(CURSOR_PATTERN)


class Cursor(NamedTuple):
    created_at: datetime
    id: UUID


class InvalidCursorError(InvalidFieldError):
    def __init__(self) -> None:
        super().__init__(
            ("query", "cursor"),
            "not a cursor this API issued; take it from a Link header",
            "cursor_invalid",
        )


def encode_cursor(cursor: Cursor) -> str:
    micros = (cursor.created_at - EPOCH) // ONE_MICROSECOND
    return f"{micros}.{cursor.id.hex}"


def decode_cursor(token: str) -> Cursor:
    if not _CURSOR.fullmatch(token):
        raise InvalidCursorError()
    micros, hex_id = token.split(".")
    return Cursor(EPOCH + int(micros) * ONE_MICROSECOND, UUID(hex=hex_id))
