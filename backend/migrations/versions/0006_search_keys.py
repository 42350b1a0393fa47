"""Search keys: each task's title and description, folded as searches compare them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 12:40:00.000000

On PostgreSQL, trigram indexes (pg_trgm, which Neon ships) serve substring
searches on them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from todo.tasks.search import search_key

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        # Filled below, then required.
        batch_op.add_column(sa.Column("title_key", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("description_key", sa.String(), nullable=True))
    connection = op.get_bind()
    tasks = sa.table(
        "tasks",
        sa.column("id", sa.Uuid()),
        sa.column("title", sa.String()),
        sa.column("description", sa.String()),
        sa.column("title_key", sa.String()),
        sa.column("description_key", sa.String()),
    )
    rows = connection.execute(sa.select(tasks.c.id, tasks.c.title, tasks.c.description)).all()
    statement = (
        sa.update(tasks)
        .where(tasks.c.id == sa.bindparam("task_id"))
        .values(title_key=sa.bindparam("new_title_key"), description_key=sa.bindparam("new_key"))
    )
    for start in range(0, len(rows), _BATCH):
        batch = [
            {
                "task_id": task_id,
                "new_title_key": search_key(title),
                "new_key": None if description is None else search_key(description),
            }
            for task_id, title, description in rows[start : start + _BATCH]
        ]
        connection.execute(statement, batch)
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.alter_column("title_key", existing_type=sa.String(), nullable=False)
    if connection.dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for column in ("title_key", "description_key"):
            op.create_index(
                f"ix_tasks_{column}_trgm",
                "tasks",
                [column],
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_tasks_description_key_trgm")
        op.execute("DROP INDEX IF EXISTS ix_tasks_title_key_trgm")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("description_key")
        batch_op.drop_column("title_key")
