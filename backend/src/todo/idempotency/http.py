"""The Idempotency-Key header (draft-ietf-httpapi-idempotency-key-header).

A route hands `respond_once` its write and how to answer its outcome. Without
a key the write runs on its own; with one, the first request runs it and
stores its response in the same transaction, and a retry gets that response
back marked `Idempotent-Replayed: true`.
"""

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from fastapi import Request, Response
from pydantic import BaseModel

from todo.auth.current_user import Owner
from todo.db import Runner
from todo.db.outages import is_lock_timeout
from todo.deps import settings_of
from todo.errors import BadRequestError
from todo.idempotency import service
from todo.idempotency.models import KEY_MAX_LENGTH
from todo.idempotency.service import IdempotencyKeyInFlightError, StoredResponse

T = TypeVar("T")

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


# Read straight from the request, like If-Match (see todo.http.conditional).
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


def fingerprint(method: str, path: str, payload: BaseModel | None) -> str:
    """What makes two requests the same: method, path and the body as validated."""
    validated = None if payload is None else payload.model_dump(mode="json")
    body = json.dumps(validated, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method}\n{path}\n{body}".encode()).hexdigest()


def replay(stored: StoredResponse) -> Response:
    return Response(
        stored.body,
        status_code=stored.status_code,
        headers={**stored.headers, REPLAYED_HEADER: "true"},
    )


def _stored(response: Response) -> StoredResponse:
    headers = {name: value for name, value in response.headers.items() if name != "content-length"}
    return StoredResponse(response.status_code, headers, bytes(response.body))


async def respond_once(
    request: Request,
    owner: Owner,
    write: Callable[[Runner], Awaitable[T]],
    respond: Callable[[T], Response],
    *,
    payload: BaseModel | None = None,
) -> Response:
    """Run `write` and answer `respond(outcome)`, at most once per Idempotency-Key.

    Without a key the write runs as it would anywhere. With one, it runs inside
    the key's transaction, which stores the response with the change.
    `payload` is the validated body, part of what makes two requests the same.
    """
    key = idempotency_key(request)
    user_id, database = owner
    if key is None:
        return respond(await write(database))
    settings = settings_of(request)
    request_fingerprint = fingerprint(request.method, request.url.path, payload)
    try:
        # A first request still holding the key (or the task's row) is waited
        # for only so long: past it, 409.
        async with database.transaction(
            lock_timeout=settings.idempotency_wait_seconds
        ) as transaction:
            stored = await service.reserve(
                transaction,
                user_id,
                key,
                request_fingerprint,
                ttl=timedelta(seconds=settings.idempotency_ttl_seconds),
            )
            if stored is not None:
                return replay(stored)
            response = respond(await write(transaction))
            await service.complete(transaction, user_id, key, _stored(response))
    except Exception as error:
        if is_lock_timeout(error):
            raise IdempotencyKeyInFlightError() from error
        raise
    return response
