"""Header mode: the caller names its user id in `X-User-ID` and is believed.

For development only: anyone who can reach the API can act as any user.
"""

import copy
import re
from typing import Any
from uuid import UUID

from fastapi import Request

from todo.errors import BadRequestError
from todo.http.openapi import add_operation_field

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
    mode = "header"
    description = f"Every task operation names its user in the `{USER_ID_HEADER}` header."

    async def identify(self, request: Request) -> UUID:
        return parse_user_id(request.headers.get(USER_ID_HEADER))

    def document(
        self, schema: dict[str, Any], operations: list[dict[str, Any]], *, only_mode: bool
    ) -> None:
        parameter = copy.deepcopy(_PARAMETER)
        if not only_mode:
            # A server in another mode ignores it, so a client of every mode may leave it out.
            parameter["required"] = False
            parameter["description"] = (
                f"{_DESCRIPTION} Required in header mode; ignored in JWT mode."
            )
        for operation in operations:
            parameters = [*operation.get("parameters", []), copy.deepcopy(parameter)]
            add_operation_field(operation, "parameters", parameters)
            if not only_mode:
                # Header mode's alternative is no security scheme: the header names the
                # user, it proves nothing.
                add_operation_field(operation, "security", [*operation.get("security", []), {}])
