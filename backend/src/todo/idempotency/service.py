"""Stored outcomes of requests sent with an Idempotency-Key.

The key row is claimed first in the request's own transaction and completed
in it, so a write and its stored outcome commit together or not at all: a
request that fails stores nothing, and its key can be used again.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from uuid import UUID

from sqlalchemy import ColumnElement, and_, delete, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from todo.errors import TodoError
from todo.idempotency.models import IdempotencyRecord
from todo.timestamps import utcnow

PURGE_BATCH_SIZE = 1000
_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: lock_timeout expired


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


def is_lock_timeout(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE


def _key_is(user_id: UUID, key: str) -> ColumnElement[bool]:
    return and_(col(IdempotencyRecord.user_id) == user_id, col(IdempotencyRecord.key) == key)


async def reserve(
    session: AsyncSession,
    user_id: UUID,
    key: str,
    fingerprint: str,
    *,
    ttl: timedelta,
    wait: timedelta,
) -> StoredResponse | None:
    """Claim `key` for this request, or get the response stored for it.

    None means the key is this request's: do the write, then `complete`, then
    commit. A concurrent request with the same key blocks on the claimed row
    until this transaction ends (SQLite serialises writers anyway), then sees
    the stored outcome, or claims the key itself if this one rolled back.
    """
    now = utcnow()
    postgres = session.get_bind().dialect.name == "postgresql"
    insert = postgresql.insert if postgres else sqlite.insert
    new_row = insert(IdempotencyRecord).values(
        user_id=user_id, key=key, fingerprint=fingerprint, expires_at=now + ttl
    )
    # An expired key is taken over, as if it were new.
    claim = new_row.on_conflict_do_update(
        index_elements=[col(IdempotencyRecord.user_id), col(IdempotencyRecord.key)],
        set_={
            "fingerprint": new_row.excluded.fingerprint,
            "expires_at": new_row.excluded.expires_at,
            "status_code": None,
            "response_headers": None,
            "response_body": None,
        },
        where=col(IdempotencyRecord.expires_at) <= now,
    ).returning(col(IdempotencyRecord.key))

    if postgres:
        # Wait for a first request holding the key only so long. The bound
        # stays for the rest of this (short) transaction: the caller answers
        # 409 to any lock wait that outlasts it.
        milliseconds = max(1, int(wait / timedelta(milliseconds=1)))
        await session.execute(text(f"SET LOCAL lock_timeout = {milliseconds}"))
    try:
        claimed = (await session.execute(claim)).first() is not None
    except DBAPIError as error:
        if is_lock_timeout(error):
            raise IdempotencyKeyInFlightError() from error
        raise
    if claimed:
        return None

    record = await session.scalar(select(IdempotencyRecord).where(_key_is(user_id, key)))
    if record is None or record.status_code is None:
        # Purged in between, or never completed: either way, not ours to replay.
        raise IdempotencyKeyInFlightError()
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReusedError()
    return StoredResponse(
        status_code=record.status_code,
        headers=dict(record.response_headers or {}),
        body=record.response_body or b"",
    )


async def complete(
    session: AsyncSession, user_id: UUID, key: str, response: StoredResponse
) -> None:
    """Store the outcome on the claimed row; the caller commits it with the write."""
    await session.execute(
        update(IdempotencyRecord)
        .where(_key_is(user_id, key))
        .values(
            status_code=response.status_code,
            response_headers=response.headers,
            response_body=response.body,
        )
        .execution_options(synchronize_session=False)
    )


async def purge_expired(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    now: datetime | None = None,
    batch_size: int = PURGE_BATCH_SIZE,
) -> int:
    """Delete expired keys in short transactions; how many went."""
    now = now or utcnow()
    expired = (
        select(col(IdempotencyRecord.user_id), col(IdempotencyRecord.key))
        .where(col(IdempotencyRecord.expires_at) <= now)
        .limit(batch_size)
    )
    statement = delete(IdempotencyRecord).where(
        tuple_(col(IdempotencyRecord.user_id), col(IdempotencyRecord.key)).in_(expired)
    )
    total = 0
    while True:
        async with sessionmaker() as session:
            result = await session.execute(statement)
            deleted: int = result.rowcount  # type: ignore[attr-defined]
            await session.commit()
        total += deleted
        if deleted < batch_size:
            return total
