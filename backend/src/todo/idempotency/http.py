"""The Idempotency-Key header (draft-ietf-httpapi-idempotency-key-header).

A route hands `respond_once` the write to run; the first request with a key
runs it and stores its response in the same transaction, a retry gets that
response back marked `Idempotent-Replayed: true`.
"""

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

from fastapi import Request, Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from todo.db import request_session
from todo.errors import BadRequestError
from todo.idempotency import service
from todo.idempotency.models import KEY_MAX_LENGTH
from todo.idempotency.service import IdempotencyKeyInFlightError, StoredResponse

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

REPLAYED_HEADER_DOC: dict[str, Any] = {
    REPLAYED_HEADER: {
        "description": "`true` when this is the stored response to an earlier request "
        "with the same Idempotency-Key; nothing was written this time.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}

# The draft's form is a structured-field string ("..."); a bare key is accepted too.
_QUOTED = re.compile(r'"((?:[^"\\]|\\["\\])*)"')
_ESCAPE = re.compile(r'\\(["\\])')
# Exactly what `parse_idempotency_key` accepts, for the published schema: a bare key
# (no surrounding space, not starting with a quote) or a quoted one, 1 to 255 characters.
KEY_PATTERN = (
    rf"^(?:[!#-~](?:[ -~]{{0,{KEY_MAX_LENGTH - 2}}}[!-~])?"
    rf'|"(?:[ !#-\[\]-~]|\\["\\]){{1,{KEY_MAX_LENGTH}}}")$'
)


class InvalidIdempotencyKeyError(BadRequestError):
    problem_type = "urn:todo:problem:invalid-idempotency-key"
    title = "Invalid Idempotency-Key header"

    def __init__(self) -> None:
        super().__init__(
            f"The {IDEMPOTENCY_KEY_HEADER} header must be 1 to {KEY_MAX_LENGTH} printable "
            'ASCII characters, bare or as a quoted string, e.g. "8e03978e-40d5-43e8".'
        )


def parse_idempotency_key(raw: str) -> str:
    raw = raw.strip(" \t")  # surrounding whitespace is not part of a field value
    key = raw
    if raw.startswith('"'):
        quoted = _QUOTED.fullmatch(raw)
        if quoted is None:
            raise InvalidIdempotencyKeyError()
        key = _ESCAPE.sub(r"\1", quoted[1])
    if not 1 <= len(key) <= KEY_MAX_LENGTH or not (key.isascii() and key.isprintable()):
        raise InvalidIdempotencyKeyError()
    return key


# Read straight from the request, like If-Match (see todo.conditional).
IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "name": IDEMPOTENCY_KEY_HEADER,
    "in": "header",
    "required": False,
    "description": (
        f"Makes a retry safe: 1 to {KEY_MAX_LENGTH} printable ASCII characters, bare or as a "
        "quoted string, unique per intended change (a UUID is ideal). A retry with the same "
        f"key and body gets the first response back, with `{REPLAYED_HEADER}: true`, and "
        "writes nothing; the same key with another body is a 422. Keys are kept for "
        "IDEMPOTENCY_TTL_SECONDS (24 h by default)."
    ),
    "schema": {"type": "string", "pattern": KEY_PATTERN},
    "example": "8e03978e-40d5-43e8-bc93-6894a57f9324",
}


def idempotency_key(request: Request) -> str | None:
    raw = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    return None if raw is None else parse_idempotency_key(raw)


def fingerprint(method: str, path: str, payload: object) -> str:
    """What makes two requests the same: method, path and the body as validated."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method}\n{path}\n{body}".encode()).hexdigest()


def to_response(stored: StoredResponse) -> Response:
    """`stored` as the response it was when first given."""
    return Response(stored.body, status_code=stored.status_code, headers=stored.headers)


def replay(stored: StoredResponse) -> Response:
    return Response(
        stored.body,
        status_code=stored.status_code,
        headers={**stored.headers, REPLAYED_HEADER: "true"},
    )


async def respond_once(
    request: Request,
    user_id: UUID,
    key: str,
    payload: object,
    write: Callable[[AsyncSession], Awaitable[StoredResponse]],
) -> Response:
    """Run `write` once per key, storing its response with it in one transaction.

    `write` makes its change on the session it is given and must not commit.
    """
    settings = request.app.state.settings
    async with request_session(request) as session:
        stored = await service.reserve(
            session,
            user_id,
            key,
            fingerprint(request.method, request.url.path, payload),
            ttl=timedelta(seconds=settings.idempotency_ttl_seconds),
            wait=timedelta(seconds=settings.idempotency_wait_seconds),
        )
        if stored is not None:
            return replay(stored)
        try:
            outcome = await write(session)
            await service.complete(session, user_id, key, outcome)
            await session.commit()
        except DBAPIError as error:
            if service.is_lock_timeout(error):
                raise IdempotencyKeyInFlightError() from error
            raise
    return to_response(outcome)
