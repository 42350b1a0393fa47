from uuid import UUID, uuid4

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from todo.dbdirect import DirectStatements
from todo.timestamps import utcnow
from todo.users.models import User, UserIdentity


def placeholder_email(user_id: UUID) -> str:
    return f"{user_id}@placeholder.local"


async def ensure_user(session: AsyncSession, user_id: UUID, *, commit: bool = True) -> None:
    """Create the user unless it exists; safe when many first requests race."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(User)
        .values(id=user_id, email=placeholder_email(user_id), created_at=utcnow())
        .on_conflict_do_nothing()
    )
    await session.execute(statement)
    if commit:
        await session.commit()


_ENSURE_USER = (
    "INSERT INTO users (id, email, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
)


async def ensure_user_directly(statements: DirectStatements, user_id: UUID) -> None:
    """`ensure_user` as one autocommitted statement on PostgreSQL (see todo.dbdirect).

    Repeatable: a second run finds the row and does nothing.
    """
    await statements.fetch(_ENSURE_USER, user_id, placeholder_email(user_id), utcnow())


async def user_for_identity(session: AsyncSession, issuer: str, subject: str) -> UUID:
    """The user linked to this issuer's subject, created with the link on first use.

    When first requests race, each inserts a user and then its link in one
    transaction. The link's primary key lets exactly one win; the others insert
    nothing, roll their user back and read the winner's, so one subject never
    has two users.
    """
    linked = select(col(UserIdentity.user_id)).where(
        col(UserIdentity.issuer) == issuer, col(UserIdentity.subject) == subject
    )
    user_id = await session.scalar(linked)
    # End the read before writing: SQLite cannot turn a read transaction into
    # a write once another writer has committed.
    await session.commit()
    if user_id is not None:
        return user_id

    new_user_id = uuid4()
    await ensure_user(session, new_user_id, commit=False)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    link = (
        insert(UserIdentity)
        .values(issuer=issuer, subject=subject, user_id=new_user_id, created_at=utcnow())
        .on_conflict_do_nothing()
        .returning(col(UserIdentity.user_id))
    )
    if await session.scalar(link) is not None:
        await session.commit()
        return new_user_id
    await session.rollback()
    winner = await session.scalar(linked)
    await session.commit()
    assert winner is not None, "a conflicting link exists once its transaction commits"
    return winner
