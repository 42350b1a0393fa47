"""Errors the service layer raises; `problems` renders each as problem+json.

Each class names its HTTP status and a stable problem type, so a handler never
has to guess, and services stay free of FastAPI.
"""

from http import HTTPStatus


class TodoError(Exception):
    status_code: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR
    problem_type: str = "about:blank"
    title: str | None = None  # defaults to the status phrase

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class UnauthorizedError(TodoError):
    status_code = HTTPStatus.UNAUTHORIZED


class NotFoundError(TodoError):
    status_code = HTTPStatus.NOT_FOUND


class BadRequestError(TodoError):
    status_code = HTTPStatus.BAD_REQUEST


class InvalidFieldError(TodoError):
    """One field failed a check that is not expressed in the request schema."""

    status_code = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self, loc: tuple[str, ...], detail: str, error_type: str) -> None:
        super().__init__(detail)
        self.loc = loc
        self.error_type = error_type


class ServiceUnavailableError(TodoError):
    status_code = HTTPStatus.SERVICE_UNAVAILABLE
