"""The OpenAPI document tells clients what each task operation needs and may answer."""

from typing import Any

from fastapi import FastAPI

TASK_OPERATIONS = [
    ("/api/tasks", "get"),
    ("/api/tasks", "post"),
    ("/api/tasks/{task_id}", "get"),
    ("/api/tasks/{task_id}", "put"),
    ("/api/tasks/{task_id}", "delete"),
    ("/api/tasks/{task_id}/complete", "patch"),
]


def test_every_task_operation_documents_the_user_header_and_problems(app: FastAPI) -> None:
    paths: dict[str, Any] = app.openapi()["paths"]
    for path, method in TASK_OPERATIONS:
        operation = paths[path][method]
        [user_header] = [p for p in operation["parameters"] if p["name"] == "X-User-ID"]
        assert user_header["in"] == "header"
        assert user_header["required"] is True
        for status in ("400", "422", "500"):
            content = operation["responses"][status]["content"]
            assert content == {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            }


def test_problem_schema_is_published(app: FastAPI) -> None:
    schemas = app.openapi()["components"]["schemas"]
    assert {"type", "title", "status", "detail"} <= set(schemas["Problem"]["properties"])
