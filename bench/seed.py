"""The benchmark's data: users with tasks, loaded in bulk, and their ids for wrk.

The same seed gives the same ids, so one Lua data file serves every database
the benchmark loads.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import asyncpg
from sqlalchemy import create_engine, insert

from todo.db.urls import parse_database_url
from todo.tasks.models import Task
from todo.tasks.positions import spread
from todo.tasks.search import search_key
from todo.users.models import User
from todo.users.service import placeholder_email

SPREAD = timedelta(days=730)
COMPLETED_SHARE = 0.35

_VERBS = (
    "Buy", "Call", "Email", "Review", "Fix", "Book", "Plan", "Write", "Clean", "Pay",
    "Renew", "Schedule", "Prepare", "Update", "Return", "Order", "Check", "Send",
)  # fmt: skip
_OBJECTS = (
    "oat milk", "the plumber", "the quarterly report", "pull request", "dentist appointment",
    "train tickets to Lyon", "the garage", "electricity bill", "passport", "team offsite",
    "slides for Monday", "library books", "birthday present for Sam", "car insurance",
    "the onboarding checklist", "flight to Lisbon", "garden hose", "tax return",
)  # fmt: skip
_DETAILS = (
    "before Friday", "if the shop is open", "ask Alex first", "see the thread from last week",
    "the blue one, not the grey one", "keep the receipt", "no more than 40 euros",
    "after the stand-up", "remember the reference number", "two copies",
)  # fmt: skip


@dataclass
class SeedData:
    users: list[dict[str, object]] = field(default_factory=list)
    tasks: list[dict[str, object]] = field(default_factory=list)
    # Each user's id and the ids of their tasks, in seeding order (the large user aside).
    task_ids: dict[UUID, list[UUID]] = field(default_factory=dict)
    large_user: UUID | None = None


def _uuid4(rng: random.Random) -> UUID:
    return UUID(int=rng.getrandbits(128), version=4)


def _title(rng: random.Random, number: int) -> str:
    title = f"{rng.choice(_VERBS)} {rng.choice(_OBJECTS)}"
    return f"{title} #{number}" if rng.random() < 0.3 else title


def _description(rng: random.Random) -> str | None:
    if rng.random() < 0.4:
        return None
    sentences = rng.randint(1, 4)
    return ". ".join(rng.choice(_DETAILS).capitalize() for _ in range(sentences)) + "."


def generate(
    users: int,
    tasks_per_user: int,
    *,
    large_user_tasks: int = 0,
    seed: int = 4,
    now: datetime | None = None,
) -> SeedData:
    """Rows for `users` users with `tasks_per_user` tasks each, created over two years, and,
    with `large_user_tasks`, one more user with that many (whom searches are run on)."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    data = SeedData()
    for _ in range(users):
        user_id, task_ids = _add_user(data, rng, now, tasks_per_user)
        data.task_ids[user_id] = task_ids
    if large_user_tasks:
        data.large_user, _ = _add_user(data, rng, now, large_user_tasks)
    return data


def _add_user(
    data: SeedData, rng: random.Random, now: datetime, tasks: int
) -> tuple[UUID, list[UUID]]:
    """A user and their tasks, appended to `data`: the user's id and the tasks' ids."""
    user_id = _uuid4(rng)
    joined_at = now - SPREAD - timedelta(days=rng.randint(1, 30))
    # Their tasks are one change, number 1, as migration 0004 makes of existing ones:
    # a sync cursor then never stands past the user's last change.
    data.users.append(
        {
            "id": user_id,
            "email": placeholder_email(user_id),
            "created_at": joined_at,
            "last_change": 1 if tasks else 0,
        }
    )
    task_ids: list[UUID] = []
    first = len(data.tasks)
    for number in range(tasks):
        created_at = now - timedelta(microseconds=rng.randrange(SPREAD // timedelta(0, 0, 1)))
        completed = rng.random() < COMPLETED_SHARE
        edited = completed or rng.random() < 0.2
        updated_at = (
            min(now, created_at + timedelta(seconds=rng.randrange(30 * 86_400)))
            if edited
            else created_at
        )
        task_id = _uuid4(rng)
        task_ids.append(task_id)
        title, description = _title(rng, number), _description(rng)
        data.tasks.append(
            {
                "id": task_id,
                "user_id": user_id,
                "title": title,
                "description": description,
                "status": "completed" if completed else "pending",
                "created_at": created_at,
                "updated_at": updated_at,
                # As the service stores them for search (todo.tasks.search).
                "title_key": search_key(title),
                "description_key": None if description is None else search_key(description),
            }
        )
    # The user's own order is today's (newest first), as migration 0007 makes it.
    user_tasks = data.tasks[first:]
    for index, task in enumerate(
        sorted(user_tasks, key=lambda task: (task["created_at"], task["id"]), reverse=True)
    ):
        task["position"] = spread(1, index, tasks)
    return user_id, task_ids


def _records(rows: Sequence[dict[str, object]], columns: Sequence[str]) -> list[tuple[object, ...]]:
    return [tuple(row[column] for column in columns) for row in rows]


async def load_postgres(dsn: str, data: SeedData) -> None:
    """COPY the rows into an empty, migrated database (any URL DATABASE_URL accepts)."""
    connection = await asyncpg.connect(**parse_database_url(dsn).asyncpg_connect_kwargs())
    try:
        async with connection.transaction():
            for table, rows in (("users", data.users), ("tasks", data.tasks)):
                columns = list(rows[0])
                await connection.copy_records_to_table(
                    table, records=_records(rows, columns), columns=columns
                )
        await connection.execute("ANALYZE users, tasks")
    finally:
        await connection.close()


def load_sqlite(path: Path, data: SeedData) -> None:
    """Insert the rows through the app's own column types, which decide their storage."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:
            connection.execute(insert(User), data.users)
            connection.execute(insert(Task), data.tasks)
            connection.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()


def write_lua(data: SeedData, path: Path) -> None:
    """The ids as a Lua chunk wrk's scripts load.

    Each user's task ids are one string of 36-character ids, read by offset:
    100,000 separate string constants would overflow LuaJIT's per-function
    constant table.
    """
    lines = ["-- Generated by bench/run.py: the seeded users and their task ids.", "return {"]
    for user_id, task_ids in data.task_ids.items():
        joined = "".join(str(task_id) for task_id in task_ids)
        lines.append(f'  {{user = "{user_id}", tasks = "{joined}"}},')
    if data.large_user is not None:
        lines.append(f'  large = "{data.large_user}",')
    lines.append("}")
    path.write_text("\n".join(lines) + "\n")
