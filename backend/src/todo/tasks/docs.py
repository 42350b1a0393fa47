"""OpenAPI `responses` for the task routes beyond what their signatures say."""

from typing import Any

from todo.http.conditional import ETAG_HEADER_DOC
from todo.http.problems import problem_docs

LOCATION_HEADER_DOC: dict[str, Any] = {
    "Location": {
        "description": "The new task's URL.",
        "required": True,
        "schema": {"type": "string"},
    }
}


def with_headers(status_code: int, *headers: dict[str, Any]) -> dict[int | str, Any]:
    return {status_code: {"headers": {name: doc for h in headers for name, doc in h.items()}}}


def _problem(status_code: int, description: str, **extra: Any) -> dict[int | str, Any]:
    docs = problem_docs(status_code)
    docs[status_code].update(description=description, **extra)
    return docs


NOT_MODIFIED_DOCS: dict[int | str, Any] = {
    304: {
        "description": "Not Modified: the task's ETag is one named in If-None-Match; no body.",
        "headers": ETAG_HEADER_DOC,
    }
}

CONDITIONAL_WRITE_DOCS: dict[int | str, Any] = {
    **problem_docs(404),
    **_problem(
        412,
        "Precondition Failed: the task's ETag is not one named in If-Match, so nothing "
        "changed; `ETag` holds the current one.",
        headers=ETAG_HEADER_DOC,
    ),
    **_problem(
        428,
        "Precondition Required: the server runs with REQUIRE_IF_MATCH and the request "
        "has no If-Match.",
    ),
}

IDEMPOTENT_WRITE_DOCS: dict[int | str, Any] = {
    **_problem(
        409,
        "Conflict: the first request with this Idempotency-Key is still being processed; "
        "retry later to get its outcome.",
    ),
    **_problem(
        422,
        "Unprocessable Entity: a field is invalid (`errors` names each), or the "
        "Idempotency-Key was already used for a different request.",
    ),
}
