"""Tasks as JSON bytes, straight from their rows.

The same document `TaskRead` describes, byte for byte (tests/tasks/test_encode.py
holds the two together), without building and re-validating a model per task:
for a page of 100 that was the largest cost of a list request.
"""

from collections.abc import Iterable
from typing import Any

import orjson

from todo.tasks.service import TaskRecord

# "Z" for UTC, as pydantic writes it.
_OPTIONS = orjson.OPT_UTC_Z


def _fields(task: TaskRecord) -> dict[str, Any]:
    return {
        "id": task.id,
        "user_id": task.user_id,
        "title": task.title,
        "description": task.description,
        "status": task.status,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
    }


def _other(value: Any) -> str:
    # asyncpg's own UUID type, which orjson does not know.
    return str(value)


def task_json(task: TaskRecord) -> bytes:
    return orjson.dumps(_fields(task), default=_other, option=_OPTIONS)


def tasks_json(tasks: Iterable[TaskRecord]) -> bytes:
    return orjson.dumps([_fields(task) for task in tasks], default=_other, option=_OPTIONS)
