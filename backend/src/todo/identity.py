"""Who is calling: today the `X-User-ID` header, later a verified JWT.

Only this module knows how the caller is identified; routers depend on
`CurrentUser` and nothing else.
"""

import re
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Header

from todo.db import DatabaseDep, SessionDep
from todo.errors import BadRequestError
from todo.users import service as users_service

USER_ID_HEADER = "X-User-ID"
_CANONICAL_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


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


async def get_current_user(
    x_user_id: Annotated[
        str,
        Header(
            alias=USER_ID_HEADER,
            description="The calling user's id, a UUID (8-4-4-4-12 hex digits).",
            examples=["123e4567-e89b-12d3-a456-426614174000"],
        ),
    ],
    database: DatabaseDep,
    session: SessionDep,
) -> UUID:
    user_id = parse_user_id(x_user_id)
    if user_id not in database.known_users:
        await users_service.ensure_user(session, user_id)
        database.remember_user(user_id)
    return user_id


CurrentUser = Annotated[UUID, Depends(get_current_user)]
