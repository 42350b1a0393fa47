"""Tasks as JSON bytes, straight from their rows.

The same document `TaskRead` describes, byte for byte (tests/tasks/test_encode.py
holds the two together), without building and re-validating a model per task:
for a page of 100 that was the largest cost of a list request.
"""

from collections.abc import Iterable
from typing import Any

import orjson

from todo.tasks.models import TaskRow
from todo.tasks.schemas import TaskRead

# "Z" for UTC, as pydantic writes it.
_OPTIONS = orjson.OPT_UTC_Z
# The document's fields, in its order: the row's columns but the last, the
# version (which the ETag carries).
_FIELDS = tuple(TaskRead.model_fields)
assert TaskRow._fields == (*_FIELDS, "version"), "TaskRead and TaskRow name the same fields"


def _fields(task: TaskRow) -> dict[str, Any]:
    return dict(zip(_FIELDS, task, strict=False))


def _other(value: Any) -> str:
    # asyncpg's own UUID type, which orjson does not know.
    return str(value)


def task_json(task: TaskRow) -> bytes:
    return orjson.dumps(_fields(task), default=_other, option=_OPTIONS)


def tasks_json(tasks: Iterable[TaskRow]) -> bytes:
    return orjson.dumps([_fields(task) for task in tasks], default=_other, option=_OPTIONS)
