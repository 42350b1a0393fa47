"""Users: created on first use, race-free, and linked to token subjects."""

from uuid import UUID, uuid4

from sqlalchemy import bindparam, select

from todo.db import Database, Runner
from todo.db.statements import insert_on_conflict
from todo.db.types import UTCDateTime, utcnow
from todo.users.models import User, UserIdentity

KNOWN_USERS_LIMIT = 100_000

_USERS = User.__table__  # type: ignore[attr-defined]
_IDENTITIES = UserIdentity.__table__  # type: ignore[attr-defined]


_UPSERT_USER = (
    insert_on_conflict(_USERS)
    .values(
        id=bindparam("new_user_id"),
        email=bindparam("new_email"),
        created_at=bindparam("now", type_=UTCDateTime()),
    )
    .on_conflict_do_nothing()
)
_LINKED_USER = select(_IDENTITIES.c.user_id).where(
    _IDENTITIES.c.issuer == bindparam("token_issuer"),
    _IDENTITIES.c.subject == bindparam("token_subject"),
)
_LINK = (
    insert_on_conflict(_IDENTITIES)
    .values(
        issuer=bindparam("token_issuer"),
        subject=bindparam("token_subject"),
        user_id=bindparam("new_user_id"),
        created_at=bindparam("now", type_=UTCDateTime()),
    )
    .on_conflict_do_nothing()
    .returning(_IDENTITIES.c.user_id)
)


def placeholder_email(user_id: UUID) -> str:
    return f"{user_id}@placeholder.local"


async def ensure_user(db: Runner, user_id: UUID) -> None:
    """Create the user unless it exists; safe when many first requests race.

    Repeatable: a second run finds the row and does nothing.
    """
    params = {"new_user_id": user_id, "new_email": placeholder_email(user_id), "now": utcnow()}
    await db.fetch(_UPSERT_USER, params, repeatable=True)


class _LinkTakenError(Exception):
    """Another request linked the subject first: roll this one's user back."""


async def user_for_identity(db: Database, issuer: str, subject: str) -> UUID:
    """The user linked to this issuer's subject, created with the link on first use.

    When first requests race, each inserts a user and then its link in one
    transaction. The link's primary key lets exactly one win; the others insert
    nothing, roll their user back and read the winner's, so one subject never
    has two users.
    """
    subject_params = {"token_issuer": issuer, "token_subject": subject}
    linked = await db.fetch(_LINKED_USER, subject_params)
    if linked:
        user_id: UUID = linked[0][0]
        return user_id
    new_user_id = uuid4()
    try:
        async with db.transaction() as transaction:
            await ensure_user(transaction, new_user_id)
            params = {**subject_params, "new_user_id": new_user_id, "now": utcnow()}
            if not await transaction.fetch(_LINK, params):
                raise _LinkTakenError
    except _LinkTakenError:
        [(winner,)] = await db.fetch(_LINKED_USER, subject_params)
        winner_id: UUID = winner
        return winner_id
    return new_user_id


class Users:
    """The users of one database, and those this process has already made sure of.

    Only a user's first request in a process pays for the upsert; users are
    never deleted by the service, so what is known stays true.
    """

    def __init__(self, database: Database) -> None:
        self._database = database
        self._known: set[UUID] = set()
        self._identities: dict[tuple[str, str], UUID] = {}

    async def ensure(self, user_id: UUID) -> None:
        if user_id in self._known:
            return
        await ensure_user(self._database, user_id)
        if len(self._known) >= KNOWN_USERS_LIMIT:
            self._known.clear()
        self._known.add(user_id)

    async def for_identity(self, issuer: str, subject: str) -> UUID:
        user_id = self._identities.get((issuer, subject))
        if user_id is None:
            user_id = await user_for_identity(self._database, issuer, subject)
            if len(self._identities) >= KNOWN_USERS_LIMIT:
                self._identities.clear()
            self._identities[issuer, subject] = user_id
        return user_id

    def forget(self) -> None:
        """Forget every user known to exist (after the tables were emptied)."""
        self._known.clear()
        self._identities.clear()
