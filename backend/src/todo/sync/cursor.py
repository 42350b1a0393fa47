"""Sync cursors: where in a user's changes a client stands, as an opaque string.

A cursor holds the last change the client has (`after`), and while it is
still reading the snapshot, the change the snapshot was taken at (`floor`):
tombstones up to it are left out, as the client never had those tasks. It
also holds a tag of the user it was issued to (their id and the time their
row was made), so a cursor of another user, or of another database, is
recognised and refused as expired rather than served.
"""

import base64
import binascii
import hashlib
import struct
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from todo.errors import BadRequestError

# 8 bytes of tag, then `after` and `floor`: 24 bytes, 32 characters.
_LAYOUT = struct.Struct(">8sQQ")
CURSOR_LENGTH = 32
CURSOR_PATTERN = rf"^[A-Za-z0-9_-]{{{CURSOR_LENGTH}}}$"


class SyncCursor(NamedTuple):
    tag: bytes
    after: int
    floor: int


class InvalidSyncCursorError(BadRequestError):
    problem_type = "urn:todo:problem:invalid-cursor"
    title = "Invalid sync cursor"

    def __init__(self) -> None:
        super().__init__(
            "This is not a cursor this API issued: send one from a previous answer's "
            "`cursor` (or an event's id), or none to start from the snapshot."
        )


def user_tag(user_id: UUID, created_at: datetime) -> bytes:
    return hashlib.sha256(user_id.bytes + created_at.isoformat().encode()).digest()[:8]


def encode_sync_cursor(cursor: SyncCursor) -> str:
    return base64.urlsafe_b64encode(_LAYOUT.pack(*cursor)).decode()


def decode_sync_cursor(token: str) -> SyncCursor:
    if len(token) != CURSOR_LENGTH or not token.replace("-", "a").replace("_", "a").isalnum():
        raise InvalidSyncCursorError()
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError) as error:
        raise InvalidSyncCursorError() from error
    if len(raw) != _LAYOUT.size:
        raise InvalidSyncCursorError()
    return SyncCursor(*_LAYOUT.unpack(raw))
