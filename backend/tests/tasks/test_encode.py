"""The JSON written straight from rows is exactly the document TaskRead describes."""

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from todo.tasks.encode import task_json, tasks_json
from todo.tasks.models import TaskRow
from todo.tasks.schemas import TaskRead


def row(created_at: datetime, description: str | None) -> TaskRow:
    return TaskRow(
        id=uuid4(),
        user_id=uuid4(),
        title='Quote " backslash \\ line\u2028separator, emoji \U0001f600, é',
        description=description,
        status="completed",
        created_at=created_at,
        updated_at=created_at,
        position="0V",
        version=7,
    )


@pytest.mark.parametrize(
    "created_at",
    [
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 11, 27, 14, 2, 3, 450, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
    ],
)
@pytest.mark.parametrize("description", [None, "", "Two\nlines\ttabbed"])
def test_a_task_is_written_as_taskread_writes_it(
    created_at: datetime, description: str | None
) -> None:
    task = row(created_at, description)
    assert task_json(task) == TaskRead.model_validate(task).model_dump_json().encode()


def test_a_page_is_a_json_array_of_tasks() -> None:
    tasks = [row(datetime(2026, 1, 1, tzinfo=UTC), None) for _ in range(3)]
    expected = "[" + ",".join(TaskRead.model_validate(t).model_dump_json() for t in tasks) + "]"
    assert tasks_json(tasks) == expected.encode()
    assert tasks_json([]) == b"[]"
