"""Header mode: the caller names its user id in `X-User-ID` and is believed.

For development only: anyone who can reach the API can act as any user.
"""

import copy
import re
from typing import Any
from uuid import UUID

from fastapi import Request

from todo.auth.base import add_operation_field
from todo.errors import BadRequestError

USER_ID_HEADER = "X-User-ID"
_CANONICAL_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_DESCRIPTION = "The calling user's id, a UUID (8-4-4-4-12 hex digits)."
_PARAMETER = {
    "name": USER_ID_HEADER,
    "in": "header",
    "required": True,
    "schema": {
        "type": "string",
        "description": _DESCRIPTION,
        "examples": ["123e4567-e89b-12d3-a456-426614174000"],
        "title": "X-User-Id",
        "format": "uuid",
        "pattern": f"^{_CANONICAL_UUID.pattern}$",
    },
    "description": _DESCRIPTION,
}


class InvalidUserIdError(BadRequestError):
    problem_type = "urn:todo:problem:invalid-user-id"
    title = "Invalid X-User-ID header"


def parse_user_id(raw: str | None) -> UUID:
    if raw is None:
        raise InvalidUserIdError(f"The {USER_ID_HEADER} header is required.")
    if not raw.strip():
        raise InvalidUserIdError(f"The {USER_ID_HEADER} header must not be empty.")
    if not _CANONICAL_UUID.fullmatch(raw):
        raise InvalidUserIdError(
            f"The {USER_ID_HEADER} header must be a UUID such as "
            "'123e4567-e89b-12d3-a456-426614174000'."
        )
    return UUID(raw)


class HeaderAuthenticator:
    credential_header = USER_ID_HEADER
    description = f"Every task operation names its user in the `{USER_ID_HEADER}` header."

    async def identify(self, request: Request) -> UUID:
        return parse_user_id(request.headers.get(USER_ID_HEADER))

    def document(self, schema: dict[str, Any], operations: list[dict[str, Any]]) -> None:
        for operation in operations:
            parameters = [*operation.get("parameters", []), copy.deepcopy(_PARAMETER)]
            add_operation_field(operation, "parameters", parameters)
