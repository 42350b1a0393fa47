from uuid import UUID

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from todo.timestamps import utcnow
from todo.users.models import User


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
