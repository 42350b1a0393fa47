"""Stored outcomes of requests sent with an Idempotency-Key.

The key row is claimed first in the request's own transaction and completed
in it, so a write and its stored outcome commit together or not at all: a
request that fails stores nothing, and its key can be used again.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from uuid import UUID

from sqlalchemy import ColumnElement, and_, bindparam, delete, select, tuple_, update

from todo.db import Database, Runner
from todo.db.statements import insert_on_conflict
from todo.db.types import UTCDateTime, utcnow
from todo.errors import TodoError
from todo.idempotency.models import IdempotencyRecord

PURGE_BATCH_SIZE = 1000

_KEYS = IdempotencyRecord.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    headers: dict[str, str]
    body: bytes


class IdempotencyKeyReusedError(TodoError):
    status_code = HTTPStatus.UNPROCESSABLE_ENTITY
    problem_type = "urn:todo:problem:idempotency-key-reused"
    title = "Idempotency-Key already used for another request"

    def __init__(self) -> None:
        super().__init__(
            "This Idempotency-Key was first sent with a different method, path or body; "
            "use a new key for a new request."
        )


class IdempotencyKeyInFlightError(TodoError):
    status_code = HTTPStatus.CONFLICT
    problem_type = "urn:todo:problem:idempotency-key-in-flight"
    title = "A request with this Idempotency-Key is still being processed"

    def __init__(self) -> None:
        super().__init__(
            "The first request sent with this Idempotency-Key (or another change to the same "
            "task) has not finished; nothing was written. Retry later to get the outcome."
        )


def _key_is() -> ColumnElement[bool]:
    return and_(
        _KEYS.c.user_id == bindparam("owner_id"), _KEYS.c.key == bindparam("idempotency_key")
    )


_NEW_KEY = insert_on_conflict(_KEYS).values(
    user_id=bindparam("owner_id"),
    key=bindparam("idempotency_key"),
    fingerprint=bindparam("new_fingerprint"),
    expires_at=bindparam("expires_at", type_=UTCDateTime()),
)
# An expired key is taken over, as if it were new.
_CLAIM = _NEW_KEY.on_conflict_do_update(
    index_elements=[_KEYS.c.user_id, _KEYS.c.key],
    set_={
        "fingerprint": _NEW_KEY.excluded.fingerprint,
        "expires_at": _NEW_KEY.excluded.expires_at,
        "status_code": None,
        "response_headers": None,
        "response_body": None,
    },
    where=_KEYS.c.expires_at <= bindparam("now", type_=UTCDateTime()),
).returning(_KEYS.c.key)
_STORED = select(
    _KEYS.c.fingerprint, _KEYS.c.status_code, _KEYS.c.response_headers, _KEYS.c.response_body
).where(_key_is())
_COMPLETE = (
    update(_KEYS)
    .where(_key_is())
    .values(
        status_code=bindparam("new_status_code"),
        response_headers=bindparam("new_response_headers"),
        response_body=bindparam("new_response_body"),
    )
)
_PURGE = (
    delete(_KEYS)
    .where(
        tuple_(_KEYS.c.user_id, _KEYS.c.key).in_(
            select(_KEYS.c.user_id, _KEYS.c.key)
            .where(_KEYS.c.expires_at <= bindparam("now", type_=UTCDateTime()))
            .limit(bindparam("batch_size"))
        )
    )
    .returning(_KEYS.c.key)
)


async def reserve(
    transaction: Runner, user_id: UUID, key: str, fingerprint: str, *, ttl: timedelta
) -> StoredResponse | None:
    """Claim `key` for this request, or get the response stored for it.

    None means the key is this request's: do the write, then `complete`, then
    commit. A concurrent request with the same key blocks on the claimed row
    until this transaction ends (SQLite serialises writers anyway), then sees
    the stored outcome, or claims the key itself if this one rolled back. The
    transaction's lock timeout bounds that wait.
    """
    now = utcnow()
    key_params = {"owner_id": user_id, "idempotency_key": key}
    claim = {**key_params, "new_fingerprint": fingerprint, "expires_at": now + ttl, "now": now}
    if await transaction.fetch(_CLAIM, claim):
        return None
    stored = await transaction.fetch(_STORED, key_params)
    if not stored or stored[0][1] is None:
        # Purged in between, or never completed: either way, not ours to replay.
        raise IdempotencyKeyInFlightError()
    stored_fingerprint, status_code, headers, body = stored[0]
    if stored_fingerprint != fingerprint:
        raise IdempotencyKeyReusedError()
    return StoredResponse(status_code=status_code, headers=dict(headers or {}), body=body or b"")


async def complete(transaction: Runner, user_id: UUID, key: str, response: StoredResponse) -> None:
    """Store the outcome on the claimed row; the caller commits it with the write."""
    await transaction.fetch(
        _COMPLETE,
        {
            "owner_id": user_id,
            "idempotency_key": key,
            "new_status_code": response.status_code,
            "new_response_headers": response.headers,
            "new_response_body": response.body,
        },
    )


async def purge_expired(
    database: Database, *, now: datetime | None = None, batch_size: int = PURGE_BATCH_SIZE
) -> int:
    """Delete expired keys in short transactions; how many went."""
    params = {"now": now or utcnow(), "batch_size": batch_size}
    total = 0
    while True:
        deleted = len(await database.fetch(_PURGE, params, repeatable=True))
        total += deleted
        if deleted < batch_size:
            return total
