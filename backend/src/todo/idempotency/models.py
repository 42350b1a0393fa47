from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import JSON, Column, Index, Integer, LargeBinary, String, Uuid
from sqlmodel import Field, SQLModel

from todo.db.metadata import metadata  # noqa: F401  (the naming convention)
from todo.db.types import UTCDateTime

__all__ = ["KEY_MAX_LENGTH", "IdempotencyRecord"]

KEY_MAX_LENGTH = 255


class IdempotencyRecord(SQLModel, table=True):
    """The outcome of the first request a user sent with an Idempotency-Key.

    The row is inserted first in the request's own transaction and completed
    (status, headers, body) just before it commits, so other transactions only
    ever see it complete; a retry that arrives meanwhile waits on its lock.

    `user_id` has no foreign key: claiming a key must not depend on the user
    row (nor lock it), and every row is gone within the TTL anyway.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        # Serves the purge of expired keys.
        Index("ix_idempotency_keys_expires_at", "expires_at"),
    )

    user_id: UUID = Field(sa_column=Column(Uuid(), primary_key=True, nullable=False))
    key: str = Field(sa_column=Column(String(KEY_MAX_LENGTH), primary_key=True, nullable=False))
    # SHA-256 (hex) of the method, the path and the canonical request body.
    fingerprint: str = Field(sa_column=Column(String(64), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    status_code: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    response_headers: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )
    response_body: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
