from http import HTTPStatus
from uuid import UUID

from todo.errors import NotFoundError, TodoError
from todo.http.etags import format_etag


class TaskNotFoundError(NotFoundError):
    problem_type = "urn:todo:problem:task-not-found"
    title = "Task not found"

    def __init__(self, task_id: UUID) -> None:
        super().__init__(f"There is no task {task_id} for this user.")


class StaleTaskVersionError(TodoError):
    status_code = HTTPStatus.PRECONDITION_FAILED
    problem_type = "urn:todo:problem:stale-version"
    title = "The task has changed"

    def __init__(self, task_id: UUID, current_version: int) -> None:
        # The current ETag lets the client fetch, merge and retry knowingly.
        super().__init__(
            f"Task {task_id} no longer has the version named in If-Match; nothing was changed.",
            headers={"ETag": format_etag(current_version)},
        )
