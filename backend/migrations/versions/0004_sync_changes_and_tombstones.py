"""Sync: each user's change numbers, stamped on the rows they touch, and tombstones.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 11:55:00.000000

Tasks that exist already are one change, number 1, of their user.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from todo.db.types import UTCDateTime

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_change", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("purged_change", sa.BigInteger(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("change", sa.BigInteger(), server_default="1", nullable=False)
        )
        batch_op.add_column(sa.Column("deleted_at", UTCDateTime(), nullable=True))
        batch_op.create_index("ix_tasks_user_id_change", ["user_id", "change"], unique=False)
        batch_op.create_index(
            "ix_tasks_deleted_at",
            ["deleted_at"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NOT NULL"),
            sqlite_where=sa.text("deleted_at IS NOT NULL"),
        )
    op.execute(
        "UPDATE users SET last_change = 1"
        " WHERE EXISTS (SELECT 1 FROM tasks WHERE tasks.user_id = users.id)"
    )


def downgrade() -> None:
    # Tombstones are deletes that have not been forgotten yet.
    op.execute("DELETE FROM tasks WHERE deleted_at IS NOT NULL")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_deleted_at")
        batch_op.drop_index("ix_tasks_user_id_change")
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("change")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("purged_change")
        batch_op.drop_column("last_change")
