"""How the OpenAPI document is written, where FastAPI and pydantic would write it otherwise."""

from typing import Any

# The order FastAPI writes an operation's fields in, kept for a stable contract.
_OPERATION_FIELDS = ("security", "parameters", "requestBody", "callbacks", "responses")


def add_operation_field(operation: dict[str, Any], field: str, value: Any) -> None:
    """Set `field` on an OpenAPI operation where FastAPI would have put it."""
    later = _OPERATION_FIELDS[_OPERATION_FIELDS.index(field) + 1 :]
    moved = {key: operation.pop(key) for key in list(operation) if key in later}
    operation[field] = value
    operation.update(moved)


def no_default(schema: dict[str, Any]) -> None:
    """`json_schema_extra` for a member that may be left out: its schema has no `default`.

    Generators read a default as "always present": openapi-typescript makes such a
    member required, in a request body as in a response. The field's description says
    what leaving it out means.
    """
    schema.pop("default", None)
