"""The committed contract matches the app, and documents what clients need."""

from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI

CONTRACT = Path(__file__).resolve().parents[2] / "specs/001-backend-api-data/contracts/openapi.yaml"
TASK_OPERATIONS = [
    ("/api/tasks", "get"),
    ("/api/tasks", "post"),
    ("/api/tasks/{task_id}", "get"),
    ("/api/tasks/{task_id}", "put"),
    ("/api/tasks/{task_id}", "delete"),
    ("/api/tasks/{task_id}/complete", "patch"),
]


def test_committed_contract_matches_the_app(app: FastAPI) -> None:
    committed = yaml.safe_load(CONTRACT.read_text())
    assert committed == app.openapi(), "run `make openapi` and commit the result"


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
