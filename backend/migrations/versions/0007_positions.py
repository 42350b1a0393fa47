"""Manual order: each task's position, backfilled in today's order (newest first).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 12:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from todo.tasks.positions import spread

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_POSITION = sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        # Filled below, then required.
        batch_op.add_column(sa.Column("position", _POSITION, nullable=True))
    connection = op.get_bind()
    tasks = sa.table(
        "tasks",
        sa.column("id", sa.Uuid()),
        sa.column("user_id", sa.Uuid()),
        sa.column("created_at", sa.DateTime()),
        sa.column("position", sa.String()),
    )
    users = sa.table("users", sa.column("id", sa.Uuid()), sa.column("last_change", sa.BigInteger()))
    rows = connection.execute(
        sa.select(tasks.c.id, tasks.c.user_id, users.c.last_change)
        .join(users, users.c.id == tasks.c.user_id)
        .order_by(tasks.c.user_id, tasks.c.created_at.desc(), tasks.c.id.desc())
    ).all()
    by_user: dict[object, list[tuple[object, int]]] = {}
    for task_id, user_id, last_change in rows:
        by_user.setdefault(user_id, []).append((task_id, last_change))
    statement = (
        sa.update(tasks)
        .where(tasks.c.id == sa.bindparam("task_id"))
        .values(position=sa.bindparam("new_position"))
    )
    for user_tasks in by_user.values():
        count = len(user_tasks)
        values = [
            {"task_id": task_id, "new_position": spread(last_change, index, count)}
            for index, (task_id, last_change) in enumerate(user_tasks)
        ]
        connection.execute(statement, values)
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.alter_column("position", existing_type=_POSITION, nullable=False)
        batch_op.create_index(
            "ix_tasks_live_user_id_position",
            ["user_id", "position"],
            unique=True,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(
            "ix_tasks_user_id_updated_at_id", ["user_id", "updated_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_user_id_updated_at_id")
        batch_op.drop_index("ix_tasks_live_user_id_position")
        batch_op.drop_column("position")
