from datetime import datetime
from enum import StrEnum
from typing import NamedTuple
from uuid import UUID, uuid4

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
    text,
)
from sqlmodel import Field, SQLModel

from todo.db.types import UTCDateTime
from todo.users.models import User  # noqa: F401  (the table the foreign key names)

__all__ = ["DESCRIPTION_MAX_LENGTH", "TITLE_MAX_LENGTH", "Task", "TaskRow", "TaskStatus"]

TITLE_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 2000
POSITION_MAX_LENGTH = 64


class TaskStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"


class Task(SQLModel, table=True):
    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(f"length(title) BETWEEN 1 AND {TITLE_MAX_LENGTH}", name="title_length"),
        CheckConstraint(
            f"description IS NULL OR length(description) <= {DESCRIPTION_MAX_LENGTH}",
            name="description_length",
        ),
        # A VARCHAR with a CHECK, not a native ENUM: it migrates like any column.
        CheckConstraint("status IN ('pending', 'completed')", name="status_values"),
        # Serves the list query, newest first, keyset-paginated.
        Index("ix_tasks_user_id_created_at_id", "user_id", "created_at", "id"),
        Index("ix_tasks_user_id_status_created_at_id", "user_id", "status", "created_at", "id"),
        # Serves the change feed (todo.sync), in change order.
        Index("ix_tasks_user_id_change", "user_id", "change"),
        # The user's own order (todo.tasks.positions): no two live tasks share a place.
        Index(
            "ix_tasks_live_user_id_position",
            "user_id",
            "position",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
            sqlite_where=text("deleted_at IS NULL"),
        ),
        Index("ix_tasks_user_id_updated_at_id", "user_id", "updated_at", "id"),
        # Serves the summary's counts (todo.tasks.service.summary).
        Index(
            "ix_tasks_live_user_id_status",
            "user_id",
            "status",
            postgresql_where=text("deleted_at IS NULL"),
            sqlite_where=text("deleted_at IS NULL"),
        ),
        # Serve substring searches (todo.tasks.search), on PostgreSQL.
        *(
            Index(
                f"ix_tasks_{column}_trgm",
                column,
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
                info={"postgresql_only": True},
            )
            for column in ("title_key", "description_key")
        ),
        # Serves the purge of old tombstones.
        Index(
            "ix_tasks_deleted_at",
            "deleted_at",
            postgresql_where=text("deleted_at IS NOT NULL"),
            sqlite_where=text("deleted_at IS NOT NULL"),
        ),
    )

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    user_id: UUID = Field(
        sa_column=Column(Uuid(), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    )
    title: str = Field(sa_column=Column(String(TITLE_MAX_LENGTH), nullable=False))
    description: str | None = Field(
        default=None, sa_column=Column(String(DESCRIPTION_MAX_LENGTH), nullable=True)
    )
    status: str = Field(
        default=TaskStatus.PENDING.value,
        sa_column=Column(String(16), nullable=False, server_default=TaskStatus.PENDING.value),
    )
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # Bumped by every write; the task's ETag is made from it (see todo.http.etags).
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False, server_default="1"))
    # The user's change (users.last_change) that last wrote the row: the feed's order.
    change: int = Field(default=1, sa_column=Column(BigInteger, nullable=False, server_default="1"))
    # Compared code point by code point, as clients compare strings: on PostgreSQL
    # in the "C" collation, on SQLite in its own (binary) one.
    position: str = Field(
        sa_column=Column(
            String(POSITION_MAX_LENGTH).with_variant(
                String(POSITION_MAX_LENGTH, collation="C"), "postgresql"
            ),
            nullable=False,
        )
    )
    # The title and description as searches compare them (todo.tasks.search).
    title_key: str = Field(default="", sa_column=Column(String(), nullable=False))
    description_key: str | None = Field(default=None, sa_column=Column(String(), nullable=True))
    # Set on delete: the row stays as a tombstone, for the feed, until it is purged.
    deleted_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


class TaskRow(NamedTuple):
    """A task as its statements return it: the one type from the database to the JSON.

    Rows rather than ORM objects: the API only reads a task's columns, and
    making an ORM instance per row cost more than the query itself.
    """

    id: UUID
    user_id: UUID
    title: str
    description: str | None
    status: str
    created_at: datetime
    updated_at: datetime
    position: str
    version: int
