"""Opaque keyset cursors: the (created_at, id) of the last task on a page."""

import base64
import binascii
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from todo.errors import InvalidFieldError
from todo.timestamps import EPOCH, ONE_MICROSECOND

_VERSION = "1"


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
    raw = f"{_VERSION}.{micros}.{cursor.id.hex}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> Cursor:
    try:
        padded = token + "=" * (-len(token) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        version, micros, hex_id = raw.split(".")
        if version != _VERSION or not micros.isdigit() or len(hex_id) != 32:
            raise ValueError(raw)
        return Cursor(EPOCH + int(micros) * ONE_MICROSECOND, UUID(hex=hex_id))
    except (ValueError, UnicodeError, binascii.Error, OverflowError) as error:
        raise InvalidCursorError() from error
